"""What many tests share: paths, running shadow as a subprocess, the fake servers, and the
checks that nothing was lost and nothing was left behind.

The fake servers are scripts in tests/helpers/, each a real process on 127.0.0.1:

    fake_pair.py      items, slow answers, in-order lanes, a death or a hang on request K
    fake_server.py    a managed server's behaviours: slow start, ignored TERM, grandchildren
    noisy_server.py   a legacy service with clocks and ids, and a candidate with known bugs
    fault_server.py   broken HTTP of every kind, on a raw socket
    counter_server.py a counter kept in a file, which a reset (a command or a request) zeroes
    sigv4_server.py   refuses a request whose AWS SigV4 signature it cannot verify (403)
    crashing_shadow.py  not a server: starts one through the supervisor, then crashes, to
                      prove the atexit hook kills what was left running
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "replay_logs"
CONFIGS = ROOT / "config"
HELPERS = Path(__file__).resolve().parent / "helpers"
FAKE_PAIR = HELPERS / "fake_pair.py"
FAKE_SERVER = HELPERS / "fake_server.py"
NOISY_SERVER = HELPERS / "noisy_server.py"
FAULT_SERVER = HELPERS / "fault_server.py"
CRASHING_SHADOW = HELPERS / "crashing_shadow.py"


EVENTS_SCHEMA = ROOT / "shadow" / "schemas" / "events.schema.json"
_EVENTS_VALIDATOR = jsonschema.Draft202012Validator(orjson.loads(EVENTS_SCHEMA.read_bytes()))


def valid_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event`, after checking it against the events schema shipped in the package."""
    errors = sorted(_EVENTS_VALIDATOR.iter_errors(event), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path))
        raise AssertionError(
            f"{event.get('event')} event does not match the events schema at /{where}: "
            f"{errors[0].message}"
        )
    return event


def event_of(line: bytes | str) -> dict[str, Any]:
    """One line of shadow's stdout (or an events file) as an event, checked by the schema."""
    return valid_event(orjson.loads(line))


def events_of(data: bytes) -> list[dict[str, Any]]:
    """Every event of shadow's stdout or of an events file, each checked by the schema."""
    return [event_of(line) for line in data.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float = 15.0) -> None:
    """Poll `url` until it answers (a server started by the test is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout_s}s")


@contextlib.contextmanager
def serving(
    argv: Sequence[str], health_url: str, env: dict[str, str] | None = None
) -> Iterator[None]:
    """A server process started by the test: up (its health url answers) while inside, killed
    and reaped on the way out."""
    proc = subprocess.Popen(
        list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(health_url)
        yield
    finally:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def fake_pair_running(tag: str) -> Iterator[tuple[str, str]]:
    """A primary and a candidate fake_pair.py on free ports, attached-mode style."""
    with contextlib.ExitStack() as stack:
        urls = []
        for variant in ("primary", "candidate"):
            port = free_port()
            argv = [sys.executable, str(FAKE_PAIR), "--port", str(port), "--variant", variant]
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(serving([*argv, "--tag", tag], url + "/health"))
            urls.append(url)
        yield urls[0], urls[1]


@contextlib.contextmanager
def demo_servers_running(secrets: dict[str, str]) -> Iterator[dict[str, str]]:
    """The demo's legacy and rewrite servers on 127.0.0.1 and free ports, by flavour name."""
    env = {**os.environ, **secrets}
    with contextlib.ExitStack() as stack:
        urls = {}
        for flavour in ("legacy", "rewrite"):
            port = free_port()
            argv = [sys.executable, "-m", f"shadow.demo.{flavour}", "--host", "127.0.0.1"]
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(
                serving([*argv, "--port", str(port)], url + "/internal/embed/weights", env)
            )
            urls[flavour] = url
        yield urls


@dataclass
class Shadow:
    """A finished `shadow` subprocess: exit code, stdout (events) and stderr."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return events_of(self.stdout)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def summary(self) -> dict[str, Any]:
        last = self.events[-1]
        assert last["event"] == "run_finished", last
        return last


def shadow_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "shadow", *args]


def run_shadow(
    *args: str,
    stdin: bytes | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Shadow:
    """shadow as a subprocess; `env` adds to (or overrides) this process's environment."""
    proc = subprocess.run(
        shadow_cmd(*args),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env={**os.environ, **env} if env is not None else None,
        check=False,
    )
    return Shadow(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Screen:
    """A finished `shadow` subprocess that wrote to a pseudo-terminal (stdout and stderr)."""

    returncode: int
    raw: str  # as the terminal received it, escape sequences included

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw).replace("\r\n", "\n")

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def run_on_terminal(
    *args: str,
    columns: int = 80,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 60,
    stdout_path: Path | None = None,
) -> Screen:
    """Run shadow with stdout and stderr on a pseudo-terminal `columns` wide (stdout to
    `stdout_path` instead when given), stdin closed; read everything it writes to the
    terminal until it exits (bounded by `timeout_s`)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    environ.pop("FORCE_COLOR", None)
    environ["TERM"] = "xterm-256color"
    with contextlib.ExitStack() as files:
        stdout = child if stdout_path is None else files.enter_context(open(stdout_path, "wb"))
        proc = subprocess.Popen(
            shadow_cmd(*args),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=child,
            cwd=cwd or ROOT,
            env={**environ, **(env or {})},
        )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: every writer closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    return Screen(code, b"".join(chunks).decode("utf-8", "replace"))


def assert_accounted(summary: dict[str, Any]) -> None:
    """Every record read is counted exactly once."""
    assert summary["requests"] == summary["matched"] + summary["mismatched"] + summary["errors"]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def managed_config(
    tmp_path: Path, tag: str, extra: str = "", primary_args: str = "", candidate_args: str = ""
) -> Path:
    """A config whose two fake targets shadow starts itself, on free ports."""

    def target(name: str, variant: str, more: str) -> str:
        return f"""
[targets.{name}]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{FAKE_PAIR}", "--port", "{{port}}", "--variant", "{variant}",
           "--tag", "{tag}"{more}]
health = {{ path = "/health", timeout_s = 15 }}
shutdown_grace_s = 2
"""

    text = (
        target("primary", "primary", primary_args)
        + target("candidate", "candidate", candidate_args)
        + extra
    )
    path = tmp_path / "shadow.toml"
    path.write_text(text)
    return path


# --- nothing left behind -------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie holds nothing and does not count)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def assert_gone(pids: Iterable[int | None], timeout_s: float = 5.0) -> None:
    """Every one of `pids` ends within `timeout_s` (a KILL takes the kernel a moment); any
    survivor is killed, so one failing test cannot leave processes to the next, and fails it."""
    wanted = list(pids)
    assert wanted and all(pid is not None for pid in wanted), wanted
    deadline = time.monotonic() + timeout_s
    left = [pid for pid in wanted if pid is not None and alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [pid for pid in left if alive(pid)]
    for pid in left:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    assert not left, f"processes left behind: {left}"


def processes_tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose command line holds `tag` (each test's servers carry one)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if (
                tag in " ".join(proc.info["cmdline"] or ())
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def assert_no_orphans(tag: str, timeout_s: float = 5.0) -> None:
    """No process carrying `tag` outlives the run that started it."""
    deadline = time.monotonic() + timeout_s
    while processes_tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = processes_tagged(tag)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert not left, f"processes left behind: {[p.pid for p in left]}"
