"""What the operator (or the machine) does to a run: signals, a closed stdout or stderr, a full
disk, a run dir that cannot be written.

SIGINT and SIGTERM mid-run, a second signal, and `| head` are in tests/test_cli.py; these add
SIGHUP, signals while the servers are still starting, streams closed before the start, and the
disk. A full disk is simulated two ways, neither needing a mount: `/dev/full`, where every write
fails with ENOSPC as on a full disk, for an events file full from the start; and RLIMIT_FSIZE
set on shadow's process (with SIGXFSZ ignored, as a child inherits both), where every write past
the limit fails with EFBIG, for a disk that fills up during the run and for server logs that
cannot be written at all.
"""

from __future__ import annotations

import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.faults.helpers import (
    check_run,
    fault_config,
    log_of,
    run_faults,
    stderr_counts,
    target,
)
from tests.support import ROOT, assert_accounted, assert_no_orphans, shadow_cmd

pytestmark = pytest.mark.e2e


def _start(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        **kwargs,  # type: ignore[call-overload]
    )


def _wait_for(proc: subprocess.Popen[bytes], event: str, count: int = 1) -> list[bytes]:
    assert proc.stdout is not None
    lines: list[bytes] = []
    while sum(f'"event":"{event}"'.encode() in x for x in lines) < count:
        line = proc.stdout.readline()
        assert line, f"shadow ended before {count} {event} event(s)"
        lines.append(line)
    return lines


def test_sighup_mid_run_drains_and_writes_the_summary(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag)
    log = log_of(tmp_path, ["/slow/200"] * 500)
    proc = _start(
        shadow_cmd(
            "run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all", str(log)
        )
    )
    lines = _wait_for(proc, "match", 4)
    proc.send_signal(signal.SIGHUP)
    rest, stderr = proc.communicate(timeout=60)
    events = [orjson.loads(x) for x in [*lines, *rest.splitlines()]]
    summary = events[-1]
    assert summary["event"] == "run_finished" and summary["interrupted"] is True
    assert summary["requests"] < 500 and summary["errors"] == 0  # admitted ones finished
    assert_accounted(summary)
    assert proc.returncode == 0 and b"Traceback" not in stderr
    assert b"stopping (SIGHUP)" in stderr
    assert_no_orphans(tag)


def test_interrupted_exit_code_replaces_the_verdict_of_a_stopped_run_only(
    tmp_path: Path, tag: str
) -> None:
    # A Kubernetes shard stopped by SIGTERM must not end as a pass (docker/k8s/job.yaml).
    config = fault_config(tmp_path, tag)
    argv = ["run", "-c", str(config), "--emit", "all", "--interrupted-exit-code", "143"]
    log = log_of(tmp_path, ["/slow/200"] * 500)
    proc = _start(shadow_cmd(*argv, "--run-dir", str(tmp_path / "run"), str(log)))
    lines = _wait_for(proc, "match", 4)
    proc.send_signal(signal.SIGTERM)
    rest, stderr = proc.communicate(timeout=60)
    summary = orjson.loads([*lines, *rest.splitlines()][-1])
    assert summary["interrupted"] is True and summary["mismatched"] == 0
    assert proc.returncode == summary["exit_code"] == 143, stderr
    assert_accounted(summary)
    # A run that reads its whole input keeps its verdict.
    whole = _start(
        shadow_cmd(*argv, "--run-dir", str(tmp_path / "r2"), str(log_of(tmp_path, ["/ok/1"])))
    )
    out, stderr = whole.communicate(timeout=60)
    assert whole.returncode == orjson.loads(out.splitlines()[-1])["exit_code"] == 0, stderr
    assert_no_orphans(tag)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_a_server_starts_stops_at_once(
    tmp_path: Path, tag: str, sig: signal.Signals
) -> None:
    # The primary never answers its health check (60 s deadline): the signal must not wait.
    never_ready = target("primary", tag, health='{ path = "/hang", timeout_s = 60 }')
    config = tmp_path / "c.toml"
    config.write_text(never_ready + target("candidate", tag))
    log = log_of(tmp_path, ["/ok/1"])
    proc = _start(shadow_cmd("run", "-c", str(config), "--run-dir", str(tmp_path / "r"), str(log)))
    lines = _wait_for(proc, "server_ready")  # the candidate is up; the primary never will be
    proc.send_signal(sig)
    rest, stderr = proc.communicate(timeout=20)  # far less than the 60 s health deadline
    events = [orjson.loads(x) for x in [*lines, *rest.splitlines()]]
    summary = events[-1]
    assert summary["event"] == "run_finished" and summary["interrupted"] is True
    # Nothing was compared: never a pass, even when asked to stop.
    assert summary["requests"] == 0 and proc.returncode == 1 == summary["exit_code"]
    assert b"stopped before any record was sent" in stderr
    assert b"while the servers were starting" in stderr and b"Traceback" not in stderr
    assert_no_orphans(tag)


@pytest.mark.parametrize("closed", ["stdout", "stderr", "both"])
def test_streams_closed_before_the_start(tmp_path: Path, tag: str, closed: str) -> None:
    config = fault_config(tmp_path, tag)
    log = log_of(tmp_path, ["/ok/1", "/ok/2"])
    redirect = {"stdout": ">&-", "stderr": "2>&-", "both": ">&- 2>&-"}[closed]
    argv = " ".join(
        shadow_cmd("run", "-c", str(config), "--run-dir", str(tmp_path / "r"), str(log))
    )
    proc = subprocess.run(
        ["sh", "-c", f"exec {argv} {redirect}"],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    if closed == "stderr":  # events unharmed; nothing of stderr leaks into them
        assert proc.returncode == 0
        assert [orjson.loads(x)["event"] for x in proc.stdout.splitlines()][-1] == "run_finished"
    else:  # a reader gone before the first event: the run ends at once, cleanly, unproven
        assert proc.returncode == 1 and proc.stdout == b""
        if closed == "stdout":
            assert b"nothing was compared (stopped before any record was sent)" in proc.stderr
        assert b"Traceback" not in proc.stderr
    assert_no_orphans(tag)


def _file_size_limit(limit_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_events_file_on_a_full_disk_is_exit_2_before_anything_starts(
    tmp_path: Path, tag: str
) -> None:
    config = fault_config(tmp_path, tag)
    result = run_faults(config, tmp_path, "--output", "/dev/full", str(log_of(tmp_path, ["/ok/1"])))
    assert result.returncode == 2
    assert "cannot write events to /dev/full: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert stderr_counts(result.stderr) == (0, 0, 0, 0, 0, 2)
    assert_no_orphans(tag)


def test_disk_filling_up_mid_run_stops_the_run_and_fails_it(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag)
    log = log_of(tmp_path, [f"/ok/{n}" for n in range(400)])
    events = tmp_path / "events.jsonl"
    argv = shadow_cmd(
        "run",
        "-c",
        str(config),
        "--run-dir",
        str(tmp_path / "run"),
        "--emit",
        "all",
        "--rate",
        "200",
        "--output",
        str(events),
        str(log),
    )
    proc = subprocess.run(
        argv,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        preexec_fn=_file_size_limit(16 << 10),
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    assert f"cannot write events to {events}: File too large; the run was stopped" in stderr
    assert "Traceback" not in stderr
    requests, matched, mismatched, errors, _, exit_code = stderr_counts(stderr)
    assert requests == matched + mismatched + errors and 0 < requests < 400 and exit_code == 1
    assert events.stat().st_size <= 16 << 10
    assert_no_orphans(tag)


def test_server_logs_that_cannot_be_written_do_not_stop_the_run(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag)
    log = log_of(tmp_path, ["/ok/1", "/ok/2"])
    argv = shadow_cmd("run", "-c", str(config), "--run-dir", str(tmp_path / "run"), str(log))
    proc = subprocess.run(
        argv, capture_output=True, cwd=ROOT, timeout=60, check=False, preexec_fn=_file_size_limit(0)
    )
    assert proc.returncode == 0, proc.stderr.decode()
    summary = orjson.loads(proc.stdout.splitlines()[-1])
    assert summary["matched"] == 2
    assert (tmp_path / "run" / "primary.log").stat().st_size == 0  # the servers' writes failed
    assert_no_orphans(tag)


@pytest.mark.parametrize("where", ["under-a-file", "config-under-a-file"])
def test_a_run_dir_that_cannot_be_written_is_exit_2_before_any_server_starts(
    tmp_path: Path, tag: str, where: str
) -> None:
    blocker = tmp_path / "somefile"
    blocker.write_text("a file, not a folder")
    extra = 'run_dir = "somefile/runs"\n' if where == "config-under-a-file" else ""
    config = tmp_path / "c.toml"
    config.write_text(extra + target("primary", tag) + target("candidate", tag))
    args = ["run", "-c", str(config), str(log_of(tmp_path, ["/ok/1"]))]
    if where == "under-a-file":
        args[1:1] = ["--run-dir", str(blocker / "sub")]
    proc = subprocess.run(shadow_cmd(*args), capture_output=True, cwd=ROOT, timeout=60, check=False)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert f"run dir {blocker}/" in stderr and "Not a directory" in stderr
    assert "Traceback" not in stderr
    kinds = [orjson.loads(x)["event"] for x in proc.stdout.splitlines()]
    assert kinds == ["run_started", "run_finished"]  # no server was started
    assert_no_orphans(tag)


def test_the_run_dir_and_logs_are_owner_only(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag)
    result = run_faults(config, tmp_path, str(log_of(tmp_path, ["/ok/1"])))
    check_run(result, tag, 0)
    run_dir = tmp_path / "run"
    assert run_dir.stat().st_mode & 0o777 == 0o700
    for log in ("primary.log", "candidate.log"):
        assert (run_dir / log).stat().st_mode & 0o777 == 0o600
