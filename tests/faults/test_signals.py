"""Every signal whose default would end shadow: handled (the run stops as on SIGTERM, with its
summary) or, for the fault signals, left to end it, and in every case no process left.

Each row starts `shadow run` on two fault servers (the primary leaving a daemon outside its
group, tests/helpers/daemonizing.py), waits for records to be answered, sends the signal
and checks the summary, the exit code, the stderr line and that nothing it started is left.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.faults.helpers import FAULTSERVER, log_of
from tests.support import (
    HELPERS,
    ROOT,
    assert_accounted,
    assert_gone,
    assert_no_orphans,
    shadow_cmd,
)

pytestmark = pytest.mark.e2e

DAEMONIZING = str(HELPERS / "daemonizing.py")
STOPPING = [
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGQUIT,
    signal.SIGXCPU,
    signal.SIGIO,
    signal.SIGPWR,
    signal.SIGRTMIN + 3,
]
FAULTS = [signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS]


def config(tmp_path: Path, tag: str) -> Path:
    text = ""
    for name in ("primary", "candidate"):
        argv = ["{python}", FAULTSERVER, "--port", "{port}", "--variant", name, "--tag", tag]
        if name == "primary":
            argv = ["{python}", DAEMONIZING, tag, "--", sys.executable, *argv[1:]]
        text += (
            f'[targets.{name}]\nurl = "http://127.0.0.1:0"\ncommand = {json.dumps(argv)}\n'
            'health = { path = "/health", timeout_s = 15 }\nshutdown_grace_s = 2\n\n'
        )
    path = tmp_path / "signals.toml"
    path.write_text(text)
    return path


def start(tmp_path: Path, tag: str, *args: str) -> subprocess.Popen[bytes]:
    log = log_of(tmp_path, ["/slow/200"] * 500)
    argv = shadow_cmd(
        "run", "-c", str(config(tmp_path, tag)), "--run-dir", str(tmp_path / "run"),
        "--emit", "all", *args, str(log),
    )  # fmt: skip
    # Unbuffered: communicate() reads the pipe itself, past what a buffer would have held.
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, bufsize=0
    )


def read_until(proc: subprocess.Popen[bytes], event: str, count: int) -> list[bytes]:
    """Lines of stdout up to the `count`th `event` (readline: bounded by shadow's output)."""
    assert proc.stdout is not None
    lines: list[bytes] = []
    while sum(f'"event":"{event}"'.encode() in x for x in lines) < count:
        line = proc.stdout.readline()
        assert line, f"shadow ended before {count} {event} event(s)"
        lines.append(line)
    return lines


def pids_of(lines: list[bytes], tmp_path: Path) -> list[int]:
    """The servers' pids (from `server_ready`) and the daemon's (from the primary's log)."""
    ready = [orjson.loads(x) for x in lines if b'"event":"server_ready"' in x]
    log = (tmp_path / "run" / "primary.log").read_bytes()
    found = re.search(rb"^daemon (\d+)$", log, re.MULTILINE)
    assert found and len(ready) == 2
    return [*(e["pid"] for e in ready), int(found.group(1))]


def name(signum: int) -> str:
    if signal.SIGRTMIN < signum < signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    return signal.Signals(signum).name


# Every one in one process; a few through a fleet (`--workers 2`).
CASES = [(s, 1) for s in STOPPING] + [(s, 2) for s in (signal.SIGUSR1, signal.SIGRTMIN + 3)]


@pytest.mark.parametrize(
    ("signum", "workers"), CASES, ids=[f"{name(s)}-workers{w}" for s, w in CASES]
)
def test_a_terminating_signal_stops_the_run_with_its_summary(
    tmp_path: Path, tag: str, signum: int, workers: int
) -> None:
    proc = start(tmp_path, tag, *(["--workers", str(workers)] * (workers > 1)))
    lines = read_until(proc, "match", 4)
    pids = pids_of(lines, tmp_path)
    proc.send_signal(signum)
    rest, stderr = proc.communicate(timeout=60)
    events = [orjson.loads(x) for x in [*lines, *rest.splitlines()]]
    summary = events[-1]
    assert summary["event"] == "run_finished" and summary["interrupted"] is True
    assert 4 <= summary["requests"] < 500 and summary["errors"] == 0  # admitted ones finished
    assert_accounted(summary)
    assert [e["event"] for e in events].count("match") == summary["matched"]
    assert proc.returncode == 0 == summary["exit_code"]
    assert b"Traceback" not in stderr
    if workers == 1:  # a fleet's parent says only the summary line
        assert f"stopping ({name(signum)})".encode() in stderr, stderr
    assert_gone(pids, timeout_s=0)  # the teardown waited for them all
    assert_no_orphans(tag)


@pytest.mark.parametrize("signum", FAULTS, ids=name)
def test_a_fault_signal_ends_shadow_and_takes_every_server_with_it(
    tmp_path: Path, tag: str, signum: int
) -> None:
    proc = start(tmp_path, tag)
    pids = pids_of(read_until(proc, "match", 2), tmp_path)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signum, stderr
    assert_gone(pids, timeout_s=30)
    assert_no_orphans(tag)
