"""No orphan, ever: whatever ends shadow, and however a server detaches, nothing it started
outlives it.

Each row starts `shadow run` on two fault servers, the primary behind tests/helpers/
daemonizing.py (it leaves a daemon that double-forked and called setsid(), out of the
server's group and session). The servers' pids come from `server_ready`, the daemon's from
the primary's log; each is polled until gone within a bounded wait.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest

from tests.faults.helpers import FAULTSERVER, check_run, log_of, run_faults
from tests.support import HELPERS, ROOT, assert_gone, assert_no_orphans, free_port, shadow_cmd

pytestmark = pytest.mark.e2e

DAEMONIZING = str(HELPERS / "daemonizing.py")
WAIT_S = 30.0


def fixed_port_config(tmp_path: Path, tag: str) -> Path:
    """Two fault servers on fixed ports (not 0): a second run needs the same ports free."""
    text = ""
    for name in ("primary", "candidate"):
        port = free_port()
        server = [sys.executable, FAULTSERVER, "--port", str(port), "--variant", name]
        argv = [*server, "--tag", tag]
        if name == "primary":
            argv = ["{python}", DAEMONIZING, tag, "--", *argv]
        text += (
            f"[targets.{name}]\n"
            f'url = "http://127.0.0.1:{port}"\n'
            f"command = {json.dumps(argv)}\n"
            'health = { path = "/health", timeout_s = 15 }\n'
            "shutdown_grace_s = 2\n\n"
        )
    path = tmp_path / "fixed.toml"
    path.write_text(text)
    return path


def daemon_pid(log: Path) -> int:
    deadline = time.monotonic() + WAIT_S
    while not (found := re.search(rb"^daemon (\d+)$", log.read_bytes(), re.MULTILINE)):
        assert time.monotonic() < deadline, "the daemon never said its pid"
        time.sleep(0.02)  # polling the server's log
    return int(found.group(1))


def wait_events(proc: subprocess.Popen[bytes], path: Path, kind: str, count: int) -> list[dict]:
    """Poll the events file until it holds `count` events of `kind`; fail if shadow ends."""
    deadline = time.monotonic() + WAIT_S
    while True:
        data = path.read_bytes() if path.exists() else b""
        events = [orjson.loads(x) for x in data.splitlines() if x.endswith(b"}")]
        found = [e for e in events if e["event"] == kind]
        if len(found) >= count:
            return found
        assert proc.poll() is None, f"shadow ended with {proc.returncode} before {kind}"
        assert time.monotonic() < deadline, f"no {count} {kind} events"
        time.sleep(0.02)  # polling the file shadow writes


def start_run(tmp_path: Path, config: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    events = tmp_path / "events.jsonl"
    log = log_of(tmp_path, ["/slow/300"] * 400)
    argv = shadow_cmd(
        "run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all",
        "--output", str(events), *args, str(log),
    )  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    return proc, events


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_of_shadow_mid_run_ends_every_server_and_the_port_is_free_again(
    tmp_path: Path, tag: str, workers: int
) -> None:
    config = fixed_port_config(tmp_path, tag)
    proc, events = start_run(tmp_path, config, *(["--workers", str(workers)] * (workers > 1)))
    try:
        servers = [e["pid"] for e in wait_events(proc, events, "server_ready", 2)]
        wait_events(proc, events, "match", 2)  # mid-run: records are being replayed
        pids = [*servers, daemon_pid(tmp_path / "run" / "primary.log")]
        shadow = psutil.Process(proc.pid)
        pids += [p.pid for p in shadow.children(recursive=True) if p.pid not in pids]
        assert len(pids) >= 3 + workers * (workers > 1)  # servers, daemon, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_gone(pids, timeout_s=WAIT_S)
    assert_no_orphans(tag)
    # The same fixed ports serve the next run.
    again = run_faults(config, tmp_path, log_of(tmp_path, ["/ok/1", "/ok/2"], "again.jsonl"))
    check_run(again, tag, 0)
    assert again.summary["matched"] == 2


def test_a_daemon_that_left_the_group_is_ended_at_teardown(tmp_path: Path, tag: str) -> None:
    config = fixed_port_config(tmp_path, tag)
    result = run_faults(config, tmp_path, log_of(tmp_path, ["/ok/1", "/ok/2", "/ok/3"]))
    daemon = daemon_pid(tmp_path / "run" / "primary.log")
    # Gone by the time shadow has exited: the teardown waited for it.
    assert_gone([daemon], timeout_s=0)
    summary = check_run(result, tag, 0)
    assert summary["matched"] == 3


def test_signals_sent_to_a_keeper_do_not_leave_its_server_behind(tmp_path: Path, tag: str) -> None:
    """A stray signal to a keeper (all of those that would end a process by default) leaves
    it keeping its server: SIGKILL of shadow afterwards still ends everything."""
    config = fixed_port_config(tmp_path, tag)
    proc, events = start_run(tmp_path, config)
    try:
        servers = [e["pid"] for e in wait_events(proc, events, "server_ready", 2)]
        pids = [*servers, daemon_pid(tmp_path / "run" / "primary.log")]
        keepers = [
            p for p in psutil.Process(proc.pid).children() if "keeper.py" in " ".join(p.cmdline())
        ]
        assert len(keepers) == 2
        for keeper in keepers:
            for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGUSR2, signal.SIGALRM):
                keeper.send_signal(signum)
        wait_events(proc, events, "match", 2)
        assert all(keeper.is_running() for keeper in keepers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert_gone([*pids, *(k.pid for k in keepers)], timeout_s=WAIT_S)
    assert_no_orphans(tag)
