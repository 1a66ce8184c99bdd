"""`--workers N`: real child processes, one merged event stream, one summary, no orphan."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support import (
    ROOT,
    Shadow,
    assert_accounted,
    assert_gone,
    assert_no_orphans,
    managed_config,
    run_shadow,
    shadow_cmd,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

WAIT_S = 30.0  # the longest any wait for output may take before the test fails
# What a `progress` event holds (README, Events): a merged one is no different.
PROGRESS_FIELDS = {
    "event", "ts", "run_id", "elapsed_s", "sent", "requests", "matched", "mismatched",
    "errors", "warmup", "rate", "target_rate", "backlog", "lag_s", "in_flight", "latency_ms",
    "servers", "shadow", "statuses",
}  # fmt: skip


def workers_log(path: Path, lanes_prefix: str) -> tuple[Path, set[tuple[int, str]]]:
    """Items and in-order lane writes; the (seq, event) each must give on the fake pair."""
    records: list[dict[str, Any]] = []
    expected: set[tuple[int, str]] = set()
    for n in range(60):
        if n % 3 == 0:  # lane writes: the fake answers 409 to one out of its lane's order
            lane, i = f"{lanes_prefix}{n % 4}", n // 12
            records.append({"method": "POST", "path": f"/lane/{lane}/{i}", "lane": lane})
            expected.add((n, "match"))
        else:
            records.append({"method": "GET", "path": f"/items/{n}", "id": f"r{n}"})
            expected.add((n, "mismatch" if n % 5 == 0 else "match"))
    write_jsonl(path, records)
    return path, expected


def child_pids(parent: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(parent).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def test_workers_merge_into_one_stream_and_one_summary(
    tmp_path: Path, fake_pair: tuple[str, str]
) -> None:
    primary, candidate = fake_pair
    log, expected = workers_log(tmp_path / "log.jsonl", "w")
    result = run_shadow(
        "run", str(log), "--primary", primary, "--candidate", candidate,
        "--workers", "3", "--emit", "all", "--progress-interval", "0.5",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    events = result.events
    assert events[0]["event"] == "run_started" and events[0]["settings"]["workers"] == 3
    assert [e["event"] for e in events].count("run_started") == 1
    assert {e["run_id"] for e in events} == {events[0]["run_id"]}
    assert {(e["seq"], e["event"]) for e in events if "seq" in e} == expected
    for event in events:
        if event.get("request", {}).get("method") == "POST":
            assert event["status"] == {"primary": 200, "candidate": 200}, event  # order held
    summary = result.summary
    assert_accounted(summary)
    assert (summary["requests"], summary["mismatched"]) == (60, 8)
    assert summary["latency_ms"]["primary"]["p50"] > 0
    assert "shard" not in summary  # a whole run, not a shard of one
    workers = summary["workers"]
    assert [w["shard"] for w in workers] == ["0/3", "1/3", "2/3"]
    assert sum(w["requests"] for w in workers) == 60
    assert all(w["exit_code"] == 1 or w["requests"] == 0 for w in workers)
    by_endpoint = summary["by_endpoint"]
    assert sum(ep["requests"] for ep in by_endpoint.values()) == 60
    assert "60 requests over 3 workers" in result.stderr


def test_workers_of_a_shard_cover_that_shard(tmp_path: Path, fake_pair: tuple[str, str]) -> None:
    primary, candidate = fake_pair
    log, _ = workers_log(tmp_path / "log.jsonl", "s")
    attach = ("--primary", primary, "--candidate", candidate, "--emit", "all", "-q")
    whole = run_shadow("run", str(log), *attach, "--shard", "1/2", "--workers", "2")
    assert whole.events[0]["settings"]["shard"] == "1/2"
    assert whole.summary["shard"]["index"] == 1 and whole.summary["shard"]["latency_hdr"]
    assert [w["shard"] for w in whole.summary["workers"]] == ["1/4", "3/4"]
    other = run_shadow("run", str(log), *attach, "--shard", "0/2")
    seqs = [{e["seq"] for e in r.events if "seq" in e} for r in (whole, other)]
    assert not seqs[0] & seqs[1] and seqs[0] | seqs[1] == set(range(60))


def test_workers_refuse_stdin_and_learn_noise(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    attach = ("--primary", url, "--candidate", url, "--workers", "2")
    result = run_shadow("run", "-", *attach, stdin=b'{"method": "GET", "path": "/"}\n')
    assert result.returncode == 2 and "can be read only once" in result.stderr
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": "/"}])
    result = run_shadow("run", str(log), *attach, "--learn-noise", str(tmp_path / "n.toml"))
    assert result.returncode == 2 and "--learn-noise" in result.stderr


def start(args: list[str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as stdout:  # the child has its own copy of the descriptor
        return subprocess.Popen(shadow_cmd(*args), cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE)


def stopped_with_stderr(proc: subprocess.Popen[bytes]) -> str:
    """The stderr of `proc`, killed first if it still runs (for a failure message)."""
    proc.kill()
    _, stderr = proc.communicate(timeout=10)
    return stderr.decode("utf-8", "replace")


def wait_for_event(
    proc: subprocess.Popen[bytes], path: Path, kind: bytes, timeout_s: float = WAIT_S
) -> None:
    """Poll the events file until it has a `kind` event; fail at once, with shadow's stderr,
    if shadow ends first, and at the deadline."""
    deadline, wanted = time.monotonic() + timeout_s, b'{"event":"' + kind + b'"'
    while wanted not in path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.returncode is not None else "hung"
            stderr = stopped_with_stderr(proc)
            raise AssertionError(f"no {kind!r} event, shadow {state}; stderr:\n{stderr}")
        time.sleep(0.05)  # polling the file shadow writes


def wait_for_workers(proc: subprocess.Popen[bytes], count: int) -> set[int]:
    """The pids of the `count` worker processes, once all of them are running."""
    deadline = time.monotonic() + WAIT_S
    while len(children := child_pids(proc.pid)) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            stderr = stopped_with_stderr(proc)
            raise AssertionError(f"workers: {children}, not {count}; stderr:\n{stderr}")
        time.sleep(0.02)  # polling the process table
    assert len(children) == count, children
    return children


def slow_log(path: Path) -> Path:
    return write_jsonl(path, [{"method": "GET", "path": "/slow/300"} for _ in range(200)])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_every_worker_and_the_summary_adds_up(
    tmp_path: Path, fake_pair: tuple[str, str], signum: signal.Signals
) -> None:
    primary, candidate = fake_pair
    out = tmp_path / "events.jsonl"
    args = ["run", str(slow_log(tmp_path / "log.jsonl")), "--primary", primary,
            "--candidate", candidate, "--workers", "2", "--concurrency", "2", "--emit", "all"]  # fmt: skip
    proc = start(args, out)
    try:
        wait_for_event(proc, out, b"match")
        children = wait_for_workers(proc, 2)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    result = Shadow(proc.returncode, out.read_bytes(), stderr.decode())
    summary = result.summary
    assert summary["interrupted"] is True and result.returncode == 0, result.stderr
    assert_accounted(summary)
    assert 0 < summary["requests"] < 200
    assert summary["requests"] == len(result.of("match"))  # each finished record: one event
    assert all(w["requests"] is not None for w in summary["workers"])
    assert_gone(children, timeout_s=15)


def test_children_die_with_a_killed_parent(tmp_path: Path, fake_pair: tuple[str, str]) -> None:
    primary, candidate = fake_pair
    out = tmp_path / "events.jsonl"
    args = ["run", str(slow_log(tmp_path / "log.jsonl")), "--primary", primary,
            "--candidate", candidate, "--workers", "2", "--timeout", "1"]  # fmt: skip
    proc = start([*args, "--emit", "all"], out)
    try:
        wait_for_event(proc, out, b"match")
        children = wait_for_workers(proc, 2)
        proc.kill()  # no handler runs: the children notice their stdin closing
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert_gone(children, timeout_s=15)


def test_managed_servers_started_once_and_a_dying_one_ends_the_run(
    tmp_path: Path, tag: str
) -> None:
    config = managed_config(tmp_path, tag, candidate_args=', "--die-after", "40"')
    log = write_jsonl(
        tmp_path / "log.jsonl",
        [{"method": "GET", "path": f"/items/{n}"} for n in range(400)],
    )
    result = run_shadow(
        "run", "-c", str(config), str(log), "--workers", "2", "--concurrency", "2",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    events = result.events
    assert [e["target"] for e in result.of("server_ready")].count("candidate") == 1
    exited = result.of("server_exited")
    assert any(e["target"] == "candidate" and e["expected"] is False for e in exited)
    assert events[-1]["event"] == "run_finished" and events[-1]["exit_code"] == 3
    assert_accounted(events[-1])
    assert events[-1]["errors"] > 0
    assert_no_orphans(tag)


def test_progress_is_one_merged_event_per_interval(
    tmp_path: Path, fake_pair: tuple[str, str]
) -> None:
    primary, candidate = fake_pair
    log = write_jsonl(
        tmp_path / "log.jsonl", [{"method": "GET", "path": "/slow/50"} for _ in range(120)]
    )
    result = run_shadow(
        "run", str(log), "--primary", primary, "--candidate", candidate, "--workers", "2",
        "--concurrency", "2", "--progress-interval", "0.5", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert (summary["requests"], summary["matched"]) == (120, 120)
    assert summary["statuses"]["primary"] == {"2xx": 120, "200": 120}  # added up
    parent = result.events[0]["pid"]
    progress = result.of("progress")
    assert progress, "no progress event"
    for p in progress:
        # A plain progress event, the parent's: no `worker` field, no per-worker nesting.
        assert set(p) == PROGRESS_FIELDS and p["run_id"] == summary["run_id"], p
        assert_accounted(p)  # counts summed over the workers still add up
        answers = p["statuses"].get("candidate", {})
        assert answers.get("2xx", 0) + answers.get("failed", 0) == p["requests"], p
        # Measured by the parent over itself and its live workers.
        assert p["shadow"]["pid"] == parent and 1 <= p["shadow"]["processes"] <= 3, p
    counts = [p["requests"] for p in progress]
    assert counts == sorted(counts) and counts[-1] <= 120
    # One per interval, not one per worker report (workers report twice per interval).
    stamps = [datetime.fromisoformat(p["ts"]) for p in progress]
    assert all((b - a).total_seconds() >= 0.49 for a, b in itertools.pairwise(stamps)), stamps
