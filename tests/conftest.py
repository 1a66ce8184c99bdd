"""Shared test fixtures: free ports, fake servers as real subprocesses, running the CLI."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKES = str(Path(__file__).with_name("fakes.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout_s}s")


@dataclass
class Shadow:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stdout.splitlines() if line.strip()]

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
    *args: str, stdin: bytes | None = None, timeout: float = 60, cwd: Path | None = None
) -> Shadow:
    proc = subprocess.run(
        shadow_cmd(*args),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        check=False,
    )
    return Shadow(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def processes_tagged(tag: str) -> list[psutil.Process]:
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
    deadline = time.monotonic() + timeout_s
    while processes_tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = processes_tagged(tag)
    for proc in left:
        proc.kill()
    assert not left, f"processes left behind: {[p.pid for p in left]}"


def assert_accounted(summary: dict[str, Any]) -> None:
    assert summary["requests"] == summary["matched"] + summary["mismatched"] + summary["errors"]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@pytest.fixture
def tag(tmp_path: Path) -> str:
    return f"shadowtest-{tmp_path.name}-{os.getpid()}"


@pytest.fixture
def fake_pair(tag: str) -> Iterator[tuple[str, str]]:
    """A primary and a candidate fake server, attached-mode style (started by the test)."""
    procs, urls = [], []
    for variant in ("primary", "candidate"):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, FAKES, "--port", str(port), "--variant", variant, "--tag", tag],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_http(url + "/health")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=5)


def managed_config(
    tmp_path: Path, tag: str, extra: str = "", primary_args: str = "", candidate_args: str = ""
) -> Path:
    """A config whose two fake targets shadow starts itself, on free ports."""

    def target(name: str, variant: str, more: str) -> str:
        return f"""
[targets.{name}]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{FAKES}", "--port", "{{port}}", "--variant", "{variant}",
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


@contextlib.contextmanager
def demo_servers_running(secrets: dict[str, str]) -> Iterator[dict[str, str]]:
    """The demo's legacy and rewrite servers on 127.0.0.1 and free ports, by flavour name."""
    env = {**os.environ, **secrets}
    procs, urls = [], {}
    for flavour in ("legacy", "rewrite"):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    f"shadow.demo.{flavour}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls[flavour] = f"http://127.0.0.1:{port}"
    try:
        for url in urls.values():
            wait_http(url + "/internal/embed/weights")
        yield urls
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=5)
