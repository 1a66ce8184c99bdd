"""Soak benchmarks: shadow's memory over a long looped replay, and a long paced soak.

    .venv/bin/python bench/bench_soak.py memory [--records 10000] [--limits 10000,100000,1000000]
    .venv/bin/python bench/bench_soak.py soak [--rate 50] [--duration 1h] [--out DIR]
    .venv/bin/python bench/bench_soak.py summarize EVENTS.jsonl

`memory` replays a log of `--records` records with `--loop` against two local static servers
(bench/servers.py), once per limit, each run a fresh process; shadow's peak RSS is the
kernel's (`wait4` rusage of the child), and the progress events (every second) give its RSS
along the way. The runs match (both servers answer the same body) unless `--mismatch`: then
every pair differs and the events go to /dev/null, pricing the aggregation of mismatches.

`soak` runs `shadow demo --rate R --duration D --loop` with progress events to DIR/events.jsonl
(run it in the background; `summarize` reads the file, also while the run is going on).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from servers import ServerPair

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHADOW = [sys.executable, "-m", "shadow"]


def write_log(path: Path, records: int, seed: int = 7) -> None:
    """A varied read-only log: a dozen endpoint shapes, random ids and addresses."""
    rng = random.Random(seed)
    shapes = [
        "/internal/score/v2/{n}/0x{h}",
        "/internal/stake/gtc/0x{h}",
        "/internal/allow-list/{n}/0x{h}",
        "/internal/cgrants/statistics?handle=h{n}",
        "/ceramic-cache/stamp?address=0x{h}",
        "/registry/v2/score/{n}/0x{h}",
        "/registry/stamps/0x{h}?limit={n}",
        "/items/{n}",
        "/weights",
        "/health",
    ]
    with open(path, "wb") as out:
        for i in range(records):
            path_ = rng.choice(shapes).format(
                n=rng.randrange(1, 500), h=f"{rng.getrandbits(160):040x}"
            )
            out.write(orjson.dumps({"method": "GET", "path": path_, "id": f"r{i}"}) + b"\n")


def run_measured(argv: list[str], stdout: Any) -> tuple[int, int, float]:
    """Run to completion; (returncode, peak RSS in bytes from rusage, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024, time.perf_counter() - started


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_bytes().splitlines():
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # a line still being written
    return events


def memory(args: argparse.Namespace) -> None:
    limits = [int(x) for x in args.limits.split(",")]
    with tempfile.TemporaryDirectory(prefix="shadow-soak-") as tmp, ServerPair(1024) as servers:
        log = Path(tmp) / "log.jsonl"
        write_log(log, args.records)
        primary = servers.start("primary", "a")
        candidate = servers.start("candidate", "b" if args.mismatch else "a")
        print(f"servers: {servers.description}; log: {args.records} records, looped")
        rows = []
        for limit in limits:
            events = Path(tmp) / f"events-{limit}.jsonl"
            argv = [
                *SHADOW,
                *("run", "--primary", primary, "--candidate", candidate, "--loop"),
                *("--limit", str(limit), "--concurrency", str(args.concurrency)),
                *("--progress-interval", "1", str(log)),
                *("--output", os.devnull if args.mismatch else str(events)),
            ]
            code, peak, wall = run_measured(argv, subprocess.DEVNULL)
            summary = _last(events, "run_finished")
            progress = [e for e in read_events(events) if e["event"] == "progress"]
            first = progress[0]["shadow"]["rss_mb"] if progress else None
            rows.append((limit, peak / (1 << 20), first, wall, code, summary.get("requests")))
            print(
                f"limit {limit:>9,}: peak RSS {peak / (1 << 20):6.1f} MB"
                f" (first progress sample {first} MB), {wall:6.1f} s,"
                f" {limit / wall:7.0f} records/s, exit {code}, requests {summary.get('requests')}"
            )
        peaks = [row[1] for row in rows]
        spread = (max(peaks) - min(peaks)) / min(peaks)
        print(f"peak RSS spread: {spread:.1%} (target: within 20%), max {max(peaks):.1f} MB")


def _last(path: Path, kind: str) -> dict[str, Any]:
    found = [e for e in read_events(path) if e["event"] == kind]
    return found[-1] if found else {}


def soak(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        *SHADOW,
        *("demo", "--rate", str(args.rate), "--duration", args.duration, "--loop"),
        *("--progress-interval", str(args.progress_interval)),
        *("--output", str(out / "events.jsonl"), "--run-dir", str(out / "run")),
    ]
    print(" ".join(argv))
    code, peak, wall = run_measured(argv, subprocess.DEVNULL)
    print(f"exit {code}, {wall:.0f} s, shadow peak RSS {peak / (1 << 20):.1f} MB")
    summarize_file(out / "events.jsonl")


def summarize_file(path: Path) -> None:
    events = read_events(path)
    progress = [e for e in events if e["event"] == "progress"]
    if not progress:
        print("no progress events yet")
        return
    first, last = progress[0], progress[-1]
    print(f"progress samples: {len(progress)}, elapsed {last['elapsed_s'] / 60:.1f} min")
    print(
        f"records sent {last['sent']:,}, finished {last['requests']:,}, "
        f"mismatched {last['mismatched']:,}, errors {last['errors']:,}"
    )
    print(
        f"achieved rate {last['sent'] / last['elapsed_s']:.2f}/s "
        f"(target {last['target_rate']}), max lag {max(e['lag_s'] for e in progress):.3f} s"
    )
    for who in ("shadow", *sorted(last["servers"])):

        def rss(e: dict[str, Any], who: str = who) -> float:
            return float(e["shadow"]["rss_mb"] if who == "shadow" else e["servers"][who]["rss_mb"])

        values = [rss(e) for e in progress]
        print(
            f"{who:>10} RSS: start {rss(first):.1f} MB, end {rss(last):.1f} MB, "
            f"min {min(values):.1f}, max {max(values):.1f}"
        )
    finished = [e for e in events if e["event"] == "run_finished"]
    if finished:
        done = finished[-1]
        print(
            f"run_finished: requests {done['requests']:,}, matched {done['matched']:,}, "
            f"mismatched {done['mismatched']:,}, errors {done['errors']:,}, "
            f"pacing {done['pacing']}, exit {done['exit_code']}"
        )
    else:
        print("run not finished yet (figures so far)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    mem = commands.add_parser("memory")
    mem.add_argument("--records", type=int, default=10_000)
    mem.add_argument("--limits", default="10000,100000,1000000")
    mem.add_argument("--concurrency", type=int, default=16)
    mem.add_argument("--mismatch", action="store_true")
    run = commands.add_parser("soak")
    run.add_argument("--rate", type=float, default=50)
    run.add_argument("--duration", default="1h")
    run.add_argument("--progress-interval", type=float, default=10)
    run.add_argument("--out", default="soak-out")
    summary = commands.add_parser("summarize")
    summary.add_argument("events")
    args = parser.parse_args()
    if args.command == "memory":
        memory(args)
    elif args.command == "soak":
        soak(args)
    else:
        summarize_file(Path(args.events))


if __name__ == "__main__":
    main()
