"""The transports side by side: the floor loop, `shadow run --transport aiohttp` and
`--transport httptools`, at several concurrencies, on the same two static servers, in one run.

Each concurrency alternates floor, aiohttp, httptools (fresh processes) `--repeats` times;
medians are compared as ratios to the floor: pairs/s (higher is better) and CPU per pair
(lower is better). Then, in this process, the fast transport with one deadline timer
(shadow.replay.deadlines) against the same transport with a timer handle per request, to price
the sweeper alone.

    .venv/bin/python bench/bench_transport.py [--records 20000] [--concurrency 8,32,128]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from multidict import CIMultiDict
from run import SHADOW, Bench, Result, last_event, measure, write_log
from servers import ServerPair
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.replay import transport_fast
from shadow.replay.budget import BodyBudget
from shadow.replay.transport import Request

CONTENDERS = ("floor", "aiohttp", "httptools")


def shadow_with(bench: Bench, log: Path, records: int, concurrency: int, transport: str) -> Result:
    """`shadow run` with this transport; checks that every pair matched."""
    n = bench._next()
    events = bench.work / f"shadow-{n}.jsonl"
    argv = [
        SHADOW,
        "run",
        "-q",
        str(log),
        "--primary",
        bench.urls["primary"],
        "--candidate",
        bench.urls["candidate"],
        "--concurrency",
        str(concurrency),
        "--transport",
        transport,
        "--output",
        str(events),
        "--run-dir",
        str(bench.work / f"run-dir-{n}"),
    ]
    measured = measure(argv, bench.work / f"shadow-{n}.stdout")
    summary = last_event(events)
    if summary.get("event") != "run_finished" or summary.get("matched") != records:
        bench.fail(f"shadow --transport {transport}: {summary}", measured)
    duration_s = float(summary.get("duration_s") or 0)
    pairs_per_s = records / duration_s if duration_s else 0.0
    events.unlink(missing_ok=True)
    return Result(transport, records, measured, pairs_per_s, summary)


def side_by_side(
    bench: Bench, log: Path, records: int, concurrency: int, repeats: int
) -> dict[str, list[Result]]:
    bench.args.concurrency = concurrency
    results: dict[str, list[Result]] = {name: [] for name in CONTENDERS}
    for i in range(repeats):
        results["floor"].append(bench.floor(log, records))
        for transport in CONTENDERS[1:]:
            results[transport].append(shadow_with(bench, log, records, concurrency, transport))
        line = ", ".join(f"{k} {v[-1].pairs_per_s:,.0f}/s" for k, v in results.items())
        print(f"c={concurrency} #{i + 1}: {line}", file=sys.stderr, flush=True)
    return results


def _median(results: list[Result], get: Callable[[Result], float]) -> float:
    return statistics.median(get(r) for r in results)


def _cpu_us(r: Result) -> float:
    return r.measured.cpu_s / r.records * 1e6


def throughput_rows(by_concurrency: dict[int, dict[str, list[Result]]]) -> list[str]:
    rows = [
        (
            "| c | floor pairs/s | aiohttp pairs/s | httptools pairs/s | aiohttp / floor | "
            "httptools / floor | floor CPU µs/pair | aiohttp CPU / floor | httptools CPU / floor |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c, results in by_concurrency.items():
        pairs = {k: _median(v, lambda r: r.pairs_per_s) for k, v in results.items()}
        cpu = {k: _median(v, _cpu_us) for k, v in results.items()}
        rows.append(
            f"| {c} | {pairs['floor']:,.0f} | {pairs['aiohttp']:,.0f} | {pairs['httptools']:,.0f} "
            f"| {pairs['aiohttp'] / pairs['floor']:.2f} | {pairs['httptools'] / pairs['floor']:.2f} "
            f"| {cpu['floor']:.0f} | {cpu['aiohttp'] / cpu['floor']:.2f} "
            f"| {cpu['httptools'] / cpu['floor']:.2f} |"
        )
    return rows


# --- the deadline sweeper alone -----------------------------------------------------------------


class TimerPerRequest:
    """The alternative to shadow.replay.deadlines: one loop.call_at handle per request."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def start(self, on_expire: Callable[[], None]) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_at(loop.time() + self.timeout_s, on_expire)

    def done(self, handle: asyncio.TimerHandle) -> None:
        handle.cancel()

    def close(self) -> None:
        return


async def _drive(url: str, requests: int, concurrency: int, per_request: bool) -> float:
    """CPU seconds per request of the fast transport alone over `requests` GETs."""
    settings = ReplayConfig(timeout_s=10.0)
    fast = transport_fast.FastTransport(settings, fallback=None)  # type: ignore[arg-type]
    if per_request:
        fast._deadlines = TimerPerRequest(settings.timeout_s)  # type: ignore[assignment]
    budget = BodyBudget(settings.max_bodies_bytes)
    target = URL(url + "/item", encoded=True)
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            request = Request("GET", "primary", target, CIMultiDict(), None, time.perf_counter())
            answer: Any = await fast.send(request, budget)
            budget.give(len(answer.body))

    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm the pool
    left = requests
    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu_s = time.process_time() - started
    await fast.aclose()
    return cpu_s / requests


def sweeper_rows(url: str, requests: int, repeats: int) -> list[str]:
    rows = [
        "| c | timer per request, CPU µs/request | one sweeper, CPU µs/request | sweeper / per request |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for c in (8, 32, 128):
        per: list[float] = []
        one: list[float] = []
        for _ in range(repeats):
            per.append(uvloop.run(_drive(url, requests, c, per_request=True)))
            one.append(uvloop.run(_drive(url, requests, c, per_request=False)))
        a, b = statistics.median(per) * 1e6, statistics.median(one) * 1e6
        rows.append(f"| {c} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", default="8,32,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--nginx", metavar="PATH")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp,
        ServerPair(args.body_bytes, args.server, args.nginx) as servers,
    ):
        servers.start("primary", "a")
        servers.start("candidate", "a")
        work = Path(tmp)
        log = write_log(work / "log.jsonl", args.records, seed=1)
        bench = Bench(args, work, servers.urls)
        by_concurrency = {
            c: side_by_side(bench, log, args.records, c, args.repeats)
            for c in (int(x) for x in args.concurrency.split(","))
        }
        sweeper = sweeper_rows(servers.urls["primary"], args.records, args.repeats)
        lines = [
            (
                f"servers: {servers.kind}: {servers.description}; {args.records} records of "
                f"{args.body_bytes} B bodies, equal; medians of {args.repeats} alternating runs"
            ),
            "",
            *throughput_rows(by_concurrency),
            "",
            "The fast transport alone (one process, one server), its deadlines:",
            "",
            *sweeper,
        ]
    print("\n".join(lines))
    for failure in bench.failures:
        print(f"!!!!! {failure}", file=sys.stderr)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
