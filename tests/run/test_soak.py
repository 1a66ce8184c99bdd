"""Soak runs end to end: pacing, looping, progress, faults and the live view, with real servers."""

from __future__ import annotations

import itertools
import os
import select
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    ROOT,
    Shadow,
    assert_accounted,
    assert_no_orphans,
    events_of,
    managed_config,
    run_shadow,
    shadow_cmd,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

ITEMS = [{"method": "GET", "path": f"/items/{n}"} for n in range(1, 101)]


def _run(config: Path, tmp_path: Path, *args: str) -> Shadow:
    log = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    return run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "run"), *args, str(log))


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def test_rate_is_kept_over_a_looped_run_that_ends_on_time(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag)
    result = _run(config, tmp_path, "--rate", "200", "--duration", "5s", "--loop")
    assert result.returncode == 1, result.stderr  # the candidate's type differences
    summary = result.summary
    pacing = summary["pacing"]
    assert pacing["mode"] == "rate" and pacing["target_rate"] == 200
    assert abs(pacing["achieved_rate"] - 200) <= 10, pacing  # within 5%
    assert 4.99 <= pacing["elapsed_s"] < 5.5 and pacing["passes"] >= 9  # 100 records a pass
    assert summary["interrupted"] is False
    assert summary["requests"] == pacing["sent"] and 950 <= pacing["sent"] <= 1010
    assert summary["errors"] == 0
    assert summary["mismatched"] == len(result.of("mismatch"))
    assert_accounted(summary)
    assert "duration reached" in result.stderr
    assert_no_orphans(tag)


def test_recorded_timing_keeps_order_and_scaled_gaps(tmp_path: Path, tag: str) -> None:
    # recorded seconds; 5.0 is capped by --max-wait. The first record opens the connections,
    # so that the gaps measured after it are not skewed by a connection set-up.
    gaps = [0.0, 0.4, 0.4, 0.2, 5.0, 0.4]
    ts, records = 1_700_000_000.0, []
    for n, gap in enumerate(gaps):
        ts += gap
        records.append({"method": "GET", "path": f"/items/{n + 1}", "ts": ts, "id": f"r{n}"})
    log = write_jsonl(tmp_path / "timed.jsonl", records)
    config = managed_config(tmp_path, tag)
    result = run_shadow(
        *("run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all"),
        *("--speed", "2", "--max-wait", "300ms", "--concurrency", "4", str(log)),
    )
    exchanges = [e for e in result.events if e["event"] in ("match", "mismatch")]
    assert [e["id"] for e in exchanges] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    seen = [_when(e) for e in exchanges[1:]]
    got = [b - a for a, b in itertools.pairwise(seen)]
    for actual, expected in zip(got, [0.2, 0.1, 0.3, 0.2], strict=True):
        assert abs(actual - expected) < 0.06, (got, result.stderr)
    assert result.summary["pacing"]["mode"] == "recorded"
    assert_no_orphans(tag)


def test_ramp_raises_the_rate_as_scheduled(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag)
    result = _run(
        config,
        tmp_path,
        *("--rate", "20:100:2s", "--duration", "3s", "--loop", "--progress-interval", "0.5"),
    )
    pacing = result.summary["pacing"]
    assert pacing["mode"] == "ramp"
    # 2 s ramp: (20 + 100) / 2 * 2 = 120 records, then 100 a second for 1 s
    assert 210 <= pacing["sent"] <= 222, pacing
    targets = [e["target_rate"] for e in result.of("progress")]
    assert len(targets) >= 4 and targets == sorted(targets) and targets[-1] == 100
    assert_accounted(result.summary)
    assert_no_orphans(tag)


def test_progress_events_carry_counts_pace_latency_and_server_resources(
    tmp_path: Path, tag: str
) -> None:
    config = managed_config(tmp_path, tag)
    result = _run(
        config, tmp_path, "--rate", "50", "--duration", "2s", "--progress-interval", "0.5"
    )
    progress = result.of("progress")
    assert len(progress) >= 3
    last = progress[-1]
    assert 0 < last["sent"] <= 100 and last["requests"] <= last["sent"]
    assert last["matched"] + last["mismatched"] + last["errors"] == last["requests"]
    assert last["target_rate"] == 50 and 40 <= last["rate"] <= 60
    assert last["backlog"] in (0, 1) and last["lag_s"] < 1 and last["in_flight"] >= 0
    assert set(last["latency_ms"]) == {"primary", "candidate"}
    assert set(last["latency_ms"]["primary"]) == {"p50", "p90", "p99", "max"}
    for name in ("primary", "candidate"):
        server = last["servers"][name]
        assert server["processes"] == 1 and server["pid"] > 0
        assert server["rss_mb"] > 5 and server["cpu_percent"] >= 0
    assert last["shadow"]["rss_mb"] > 5
    assert_no_orphans(tag)


def test_behind_schedule_is_reported_and_latency_counts_from_the_due_time(
    tmp_path: Path, tag: str
) -> None:
    config = managed_config(tmp_path, tag, extra="[replay]\nbehind_warning_s = 0.5\n")
    log = write_jsonl(tmp_path / "slow.jsonl", [{"method": "GET", "path": "/slow/200"}] * 60)
    result = run_shadow(
        *("run", "-c", str(config), "--run-dir", str(tmp_path / "run")),
        *("--rate", "40", "--concurrency", "2", "--progress-interval", "0.5", str(log)),
    )
    behind = result.of("behind_schedule")
    assert len(behind) == 1 and behind[0]["lag_s"] > 0.5 and behind[0]["backlog"] > 0
    assert max(e["backlog"] for e in result.of("progress")) > 10
    summary = result.summary
    # 2 at a time, 200 ms each: ~10 a second for a schedule of 40; the wait is in the latency
    assert summary["latency_ms"]["primary"]["p50"] > 600
    assert summary["pacing"]["max_lag_s"] > 1
    assert summary["requests"] == 60 and summary["errors"] == 0
    assert_no_orphans(tag)


def test_a_crashed_server_is_restarted_and_the_run_goes_on(tmp_path: Path, tag: str) -> None:
    once = tmp_path / "died-once"
    config = managed_config(
        tmp_path, tag, candidate_args=f', "--die-after", "60", "--once", "{once}"'
    )
    text = config.read_text().replace(
        "[targets.candidate]\n",
        '[targets.candidate]\nrestart = "on-failure"\nmax_restarts = 1\nrestart_backoff_s = 0.1\n',
    )
    config.write_text(text)
    log = write_jsonl(
        tmp_path / "l.jsonl", [{"method": "GET", "path": f"/items/{n % 7 + 1}"} for n in range(400)]
    )
    result = run_shadow(
        *("run", "-c", str(config), "--run-dir", str(tmp_path / "run")),
        *("--rate", "100", str(log)),
    )
    assert result.returncode == 1, result.stderr  # errors while it was down; not exit 3
    kinds = [e["event"] for e in result.events if e["event"].startswith("server_")]
    died = kinds.index("server_exited")
    assert kinds[:died].count("server_ready") == 2 and "server_ready" in kinds[died:]
    exited = result.of("server_exited")[0]
    assert exited["target"] == "candidate" and exited["expected"] is False
    summary = result.summary
    assert summary["restarts"]["candidate"]["restarts"] == 1
    assert summary["restarts"]["candidate"]["down_s"] > 0.1
    assert "shadow: candidate exited unexpectedly" in result.stderr  # the summary explains
    down_s = summary["restarts"]["candidate"]["down_s"]
    assert f"shadow: candidate was restarted 1 time(s), down {down_s} s in all" in result.stderr
    errors = result.of("error")
    assert errors and all(e["side"] == "candidate" for e in errors)
    assert {e["error"] for e in errors} <= {"server_down", "disconnected", "reset", "refused"}
    assert summary["requests"] == 400 and summary["matched"] > 0
    assert max(e["seq"] for e in result.of("mismatch")) > max(e["seq"] for e in errors)
    assert_accounted(summary)
    assert_no_orphans(tag)


def test_a_hung_server_times_out_and_is_reported_unresponsive(tmp_path: Path, tag: str) -> None:
    config = managed_config(
        tmp_path,
        tag,
        extra="[replay]\nunresponsive_after = 3\n",
        candidate_args=', "--hang-after", "8"',
    )
    result = _run(config, tmp_path, "--limit", "16", "--timeout", "0.4", "--concurrency", "4")
    unresponsive = result.of("server_unresponsive")
    assert [(e["target"], e["timeouts"], e["timeout_s"]) for e in unresponsive] == [
        ("candidate", 3, 0.4)
    ]
    timeouts = [e for e in result.of("error") if e["error"] == "timeout"]
    assert len(timeouts) >= 3 and all(e["side"] == "candidate" for e in timeouts)
    assert result.summary["requests"] == 16
    assert_accounted(result.summary)
    assert_no_orphans(tag)


def test_exchanges_in_warmup_are_kept_out_of_the_verdict(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag)
    config.write_text(
        config.read_text().replace("[targets.candidate]\n", "[targets.candidate]\nwarmup_s = 1\n")
    )
    result = _run(config, tmp_path, "--rate", "50", "--emit", "all")
    summary = result.summary
    warmup = summary["warmup"]
    assert 35 <= warmup["requests"] <= 60, warmup
    assert warmup["requests"] == warmup["matched"] + warmup["mismatched"] + warmup["errors"]
    assert summary["requests"] + warmup["requests"] == 100
    exchanges = [e for e in result.events if e["event"] in ("match", "mismatch")]
    assert len(exchanges) == summary["requests"]
    assert min(e["seq"] for e in exchanges) == warmup["requests"]  # the first ones were warm-up
    assert_accounted(summary)


def _read_until_exit(proc: subprocess.Popen[bytes], fd: int, limit_s: float) -> bytes:
    chunks, deadline = [], time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the pty closed: the child is gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)


def test_live_view_only_on_a_terminal_and_never_on_stdout(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag)
    log = write_jsonl(tmp_path / "items.jsonl", ITEMS[:40])
    args = shadow_cmd(
        *("run", "-c", str(config), "--run-dir", str(tmp_path / "run")),
        *("--rate", "40", "--progress-interval", "0", str(log)),
    )
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    master, slave = os.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, env=env)
    os.close(slave)
    try:
        terminal = _read_until_exit(proc, master, 30).decode("utf-8", "replace")
        stdout, _ = proc.communicate(timeout=30)
    finally:
        os.close(master)
    assert "top mismatching endpoints" in terminal and "p99" in terminal, terminal[-2000:]
    assert "GET /items/{int}" in terminal and "\x1b[" in terminal
    events = events_of(stdout)
    assert events[-1]["event"] == "run_finished" and events[-1]["requests"] == 40
    piped = run_shadow(*args[3:], timeout=30)
    assert piped.events[-1]["requests"] == 40
    assert "top mismatching" not in piped.stderr and "\x1b[" not in piped.stderr
    assert_no_orphans(tag)


def test_loop_cannot_reread_stdin_and_bad_pacing_is_a_usage_error(tmp_path: Path) -> None:
    attach = ("run", "--primary", "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:9")
    looped = run_shadow(*attach, "--loop", "-", stdin=b"")
    assert looped.returncode == 2 and "--loop" in looped.stderr and looped.stdout == b""
    log = str(write_jsonl(tmp_path / "l.jsonl", ITEMS[:1]))
    both = run_shadow(*attach, "--rate", "5", "--speed", "2", log)
    assert both.returncode == 2 and "--speed" in both.stderr
    for bad in (("--rate", "10:20"), ("--duration", "soon"), ("--speed", "0")):
        result = run_shadow(*attach, *bad, log)
        assert result.returncode == 2 and bad[0] in result.stderr, result.stderr


def test_a_crashed_server_without_restart_ends_the_run_with_exit_3(
    tmp_path: Path, tag: str
) -> None:
    config = managed_config(tmp_path, tag, candidate_args=', "--die-after", "30"')
    log = write_jsonl(tmp_path / "l.jsonl", [{"method": "GET", "path": "/slow/50"}] * 300)
    result = run_shadow(
        *("run", "-c", str(config), "--run-dir", str(tmp_path / "run")),
        *("--rate", "100", "--concurrency", "8", str(log)),
    )
    assert result.returncode == 3, result.stderr
    summary = result.summary
    assert summary["exit_code"] == 3 and summary["restarts"] == {}
    errors = result.of("error")
    assert errors and all(e["side"] == "candidate" for e in errors)
    assert summary["errors"] == len(errors) and summary["requests"] < 300
    assert_accounted(summary)
    assert_no_orphans(tag)
