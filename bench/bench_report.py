"""Benchmark `shadow report` on large event files: wall time and peak memory, per size.

Writes synthetic event files shaped like a long `--emit all` run (run_started, server_ready,
then match, mismatch and error events over 40 endpoints with a progress event every 1,000
exchanges, and a run_finished whose counts agree), then times `shadow report` on each in a
fresh process, as text, as JSON and as HTML. Memory is flat when the peak RSS for the big
file matches the small one's.

    .venv/bin/python bench/bench_report.py [--events 1000000] [--small 100000] [--keep DIR]

Peak RSS is the child's `ru_maxrss` from `wait4` (exact, from the kernel), CPU time its user
plus system time from the same rusage (steadier than wall time on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = 40
PROGRESS_EVERY = 1000


def _shadow() -> list[str]:
    return [sys.executable, "-m", "shadow"]


def _exchange(rng: random.Random, seq: int, run_id: str, ts: str) -> tuple[str, str, dict]:
    ep = rng.randrange(ENDPOINTS)
    name = f"GET /api/v1/resource-{ep}/{{int}}"
    roll = rng.random()
    kind = "match" if roll < 0.94 else "mismatch" if roll < 0.99 else "error"
    primary = rng.lognormvariate(2.5, 0.5)
    event: dict = {
        "event": kind,
        "ts": ts,
        "run_id": run_id,
        "seq": seq,
        "id": f"r-{seq}",
        "endpoint": name,
        "request": {
            "method": "GET",
            "path": f"/api/v1/resource-{ep}/{rng.randrange(10**6)}?page={seq % 7}",
            "headers": [["Accept", "application/json"], ["Authorization", "[REDACTED]"]],
            "name": name,
            "id": f"r-{seq}",
        },
        "status": {"primary": 200, "candidate": 200},
        "latency_ms": {
            "primary": round(primary, 3),
            "candidate": round(primary * rng.uniform(0.6, 1.3), 3),
        },
    }
    if kind == "mismatch":
        event["diffs"] = [
            {
                "path": f"/items/{i}/updated_at",
                "kind": "value",
                "primary": "2025-06-01T10:02:39.584Z",
                "candidate": "2025-06-01T10:02:39.584855Z",
            }
            for i in range(rng.randint(1, 3))
        ]
    elif kind == "error":
        event["status"] = {"primary": 200, "candidate": None}
        event["side"], event["error"] = "candidate", "timeout"
        event["message"] = "candidate: no complete answer within 10s"
    return kind, name, event


def generate(path: Path, events: int, seed: int = 7) -> None:
    """An events file of exactly `events` lines."""
    rng = random.Random(seed)
    run_id = f"bench{seed:07d}"
    ts = "2026-01-01T00:00:00.000Z"
    head = [
        {
            "event": "run_started",
            "ts": ts,
            "run_id": run_id,
            "schema": 1,
            "targets": {
                "primary": {"url": "http://127.0.0.1:8002", "managed": False},
                "candidate": {"url": "http://127.0.0.1:3000", "managed": False},
            },
            "sources": ["traffic.jsonl"],
            "settings": {"emit": "all", "concurrency": 16},
        },
    ]
    counts = {"requests": 0, "matched": 0, "mismatched": 0, "errors": 0}
    by_endpoint: dict[str, dict] = {}
    key = {"match": "matched", "mismatch": "mismatched", "error": "errors"}
    exchanges = events - len(head) - 1
    with path.open("wb") as out:
        for event in head:
            out.write(orjson.dumps(event) + b"\n")
        for seq in range(exchanges):
            if seq and seq % PROGRESS_EVERY == 0:
                out.write(orjson.dumps(_progress(run_id, ts, seq, counts)) + b"\n")
                continue
            kind, name, event = _exchange(rng, seq, run_id, ts)
            ep = by_endpoint.setdefault(
                name, {"requests": 0, "matched": 0, "mismatched": 0, "errors": 0, "diffs": {}}
            )
            for tally in (counts, ep):
                tally["requests"] += 1
                tally[key[kind]] += 1
            for diff in event.get("diffs", ()):
                ep["diffs"][diff["path"]] = ep["diffs"].get(diff["path"], 0) + 1
            out.write(orjson.dumps(event) + b"\n")
        finished = {
            "event": "run_finished",
            "ts": ts,
            "run_id": run_id,
            **counts,
            "input_errors": 0,
            "skipped": 0,
            "noise": 0,
            "by_endpoint": by_endpoint,
            "duration_s": exchanges / 1000,
            "interrupted": False,
            "exit_code": 1,
        }
        out.write(orjson.dumps(finished) + b"\n")


def _progress(run_id: str, ts: str, seq: int, counts: dict) -> dict:
    return {
        "event": "progress",
        "ts": ts,
        "run_id": run_id,
        "elapsed_s": seq / 1000,
        "sent": counts["requests"],
        **counts,
        "rate": 1000.0,
        "servers": {"primary": {"rss_mb": 120.0 + seq / 10**5}, "candidate": {"rss_mb": 40.0}},
    }


def measure(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `shadow` run, output discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen([*_shadow(), *args], stdout=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"shadow {' '.join(args)} exited {proc.returncode}")
    return took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--keep", metavar="DIR", help="keep (and reuse) the event files in DIR")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="shadow-bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        rows = []
        for events in (args.small, args.events):
            path = folder / f"events-{events}.ndjson"
            started = time.perf_counter()
            if not path.exists():  # with --keep, a second run reuses the files
                generate(path, events)
            made = time.perf_counter() - started
            size_mb = path.stat().st_size / 2**20
            print(f"{path.name}: {size_mb:.0f} MiB, generated in {made:.1f} s", file=sys.stderr)
            for label, extra in (
                ("text", []),
                ("--json", ["--json"]),
                ("--html", ["--html", str(folder / "report.html")]),
            ):
                took, cpu, rss = measure(["report", str(path), *extra])
                rows.append((events, size_mb, label, took, cpu, rss))
                print(f"  {label}: {took:.1f} s ({cpu:.1f} s CPU), {rss:.0f} MiB", file=sys.stderr)
        print("| events | file | output | wall time | CPU time | peak RSS |")
        print("| ---: | ---: | --- | ---: | ---: | ---: |")
        for events, size_mb, label, took, cpu, rss in rows:
            print(
                f"| {events:,} | {size_mb:.0f} MiB | {label} | {took:.1f} s | {cpu:.1f} s "
                f"| {rss:.0f} MiB |"
            )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
