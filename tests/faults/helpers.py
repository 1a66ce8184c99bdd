"""Shared pieces of the fault matrix: configs that start tests/helpers/fault_server.py, the checks every
row makes (exit code, no traceback, exact counts, no orphan), and a listener that must stay idle.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import (
    FAULT_SERVER,
    Shadow,
    assert_accounted,
    assert_no_orphans,
    free_port,
    run_shadow,
    wait_http,
    write_jsonl,
)

FAULTSERVER = str(FAULT_SERVER)
SUMMARY_LINE = re.compile(
    r"(\d+) requests: (\d+) matched, (\d+) mismatched, (\d+) errors, (\d+) input errors; exit (\d)"
)


def target(
    name: str,
    tag: str,
    args: Sequence[str] = (),
    health: str = '{ path = "/health", timeout_s = 15 }',
) -> str:
    """A `[targets.NAME]` table that starts a fault server on a free port."""
    variant = "candidate" if name == "candidate" else "primary"
    argv = ["{python}", FAULTSERVER, "--port", "{port}", "--variant", variant, "--tag", tag]
    return (
        f"[targets.{name}]\n"
        'url = "http://127.0.0.1:0"\n'
        f"command = {json.dumps([*argv, *args])}\n"
        f"health = {health}\n"
        "shutdown_grace_s = 2\n\n"
    )


def fault_config(
    tmp_path: Path,
    tag: str,
    primary: Sequence[str] = (),
    candidate: Sequence[str] = (),
    extra: str = "",
) -> Path:
    path = tmp_path / "faults.toml"
    text = target("primary", tag, primary) + target("candidate", tag, candidate) + extra
    path.write_text(text)
    return path


def log_of(tmp_path: Path, paths: Sequence[str], name: str = "log.jsonl") -> Path:
    return write_jsonl(tmp_path / name, [{"method": "GET", "path": p} for p in paths])


def run_faults(config: Path, tmp_path: Path, *args: str, timeout_s: str = "1") -> Shadow:
    """`shadow run` with every exchange as an event, short timeouts and its own run dir."""
    return run_shadow(
        "run",
        "-c",
        str(config),
        "--run-dir",
        str(tmp_path / "run"),
        "--timeout",
        timeout_s,
        "--emit",
        "all",
        *args,
        timeout=120,
    )


def check_run(result: Shadow, tag: str, exit_code: int) -> dict[str, Any]:
    """What every row asserts: its exit code, no traceback, `run_finished` last with exact
    counts (one event per exchange), and no process left behind."""
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    summary = result.summary
    assert summary["exit_code"] == exit_code
    assert_accounted(summary)
    kinds = [e["event"] for e in result.events]
    assert kinds.count("match") == summary["matched"]
    assert kinds.count("mismatch") == summary["mismatched"]
    assert kinds.count("error") == summary["errors"]
    assert kinds.count("input_error") == summary["input_errors"]
    assert_no_orphans(tag)
    return summary


def stderr_counts(stderr: str) -> tuple[int, ...]:
    """The summary line on stderr, for runs whose `run_finished` could not be written."""
    found = SUMMARY_LINE.search(stderr)
    assert found, stderr
    return tuple(int(n) for n in found.groups())


@contextmanager
def idle_listener(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fault server that must receive nothing: yields its url and its record file."""
    port = free_port()
    record = tmp_path / "canary.record"
    proc = subprocess.Popen(
        [sys.executable, FAULTSERVER, "--port", str(port), "--record", str(record)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        record.write_text("")  # the health check above is the test's own
        yield f"http://127.0.0.1:{port}", record
    finally:
        proc.kill()
        proc.wait(timeout=5)


def received(record: Path) -> list[dict[str, Any]]:
    """The connections and requests a fault server recorded (its start line left out)."""
    if not record.exists():
        return []
    entries = [json.loads(line) for line in record.read_text().splitlines() if line]
    return [e for e in entries if "argv" not in e]
