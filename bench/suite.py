"""`make bench`: shadow's speed in one run, as one table of ratios to the floor of its stack.

For JSON bodies of 1, 10 and 100 KB, the two answers equal and differing in one field (every
pair a `mismatch`, its event written to a file), on the same two static servers:

- the floor (bench/floor.py: aiohttp + uvloop fetching both answers and comparing bytes);
- `shadow run` with the reference transport (aiohttp), and with the transport it chooses
  (`--transport auto`; a column only when `shadow run --help` lists `--transport`);
- `shadow run --workers 2`, with the transport shadow chooses (as the memory and scaling runs);
- wrk on both servers at once, requests/s summed and halved to pairs/s (the servers' limit);
- bench/naive.py, what a Python user writes by hand (requests, a loop, DeepDiff);

each as a ratio to the floor, with shadow's CPU per pair (`run_finished.cpu_s` / pairs), which
predicts its pairs/s per core on another machine. Then shadow's peak RSS for a short and a
ten times longer log (flat when memory does not grow with the log), and `--workers 1` against
`--workers 2` with the servers pinned to one core (`taskset`).

Every run is a fresh process, the contenders alternating round by round so that noise from
the machine hits them alike; medians. Every run is checked: all records counted, each matched
(or mismatched), no error. Results go to stdout and bench/results-suite.md.

    .venv/bin/python bench/suite.py [--rounds 2] [--quick] [--server auto|nginx|aiohttp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from run import BENCH, SHADOW, last_event, machine, measure, write_log
from servers import ServerPair
from suite_report import render, render_memory, render_scaling

SIZES = {1024: 2500, 10240: 2500, 102400: 1200}  # body bytes: records replayed
VARIANTS = (("equal", "candidate"), ("differing", "candidate_b"))
CONCURRENCY = 16


@dataclass
class Cell:
    """One body size and variant: each contender's runs (pairs/s, CPU µs per pair)."""

    size: int
    variant: str
    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, rate: float, cpu_us: float) -> None:
        self.rates.setdefault(name, []).append(rate)
        self.cpu_us.setdefault(name, []).append(cpu_us)

    def rate(self, name: str) -> float:
        return statistics.median(self.rates.get(name) or [0.0])

    def cpu(self, name: str) -> float:
        return statistics.median(self.cpu_us.get(name) or [0.0])


class Suite:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.failures: list[str] = []
        self.runs = 0
        self.transport = (
            "--transport"
            in subprocess.run(
                [SHADOW, "run", "--help"], capture_output=True, text=True, check=False
            ).stdout
        )
        self.reference = ["--transport", "aiohttp"] if self.transport else []
        # What a user gets without the flag: the workers, memory and scaling runs use it.
        self.default = ["--transport", "auto"] if self.transport else []
        self.chosen: set[str] = set()  # run_started.transport of the `auto` runs
        # CPU seconds of a one-record run, per contender: start-up, left out of CPU per pair.
        self.startup_cpu_s: dict[str, float] = {}

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.note(f"!!!!! CHECK FAILED: {text}")

    def scaled(self, records: int) -> int:
        return max(200, records // 10) if self.args.quick else records

    # --- the contenders --------------------------------------------------------------------

    def script(self, name: str, log: Path, urls: tuple[str, str], *extra: str) -> dict[str, Any]:
        """floor.py or naive.py: its result, with CPU µs per pair from the kernel."""
        out = self.work / f"{name}.json"
        argv = [sys.executable, str(BENCH / f"{name}.py"), "--json", str(log),
                "--primary", urls[0], "--candidate", urls[1], *extra]  # fmt: skip
        measured = measure(argv, out)
        result: dict[str, Any] = orjson.loads(out.read_bytes() or b"{}")
        if measured.returncode or result.get("failed") or not result.get("pairs"):
            self.fail(f"{name} run failed: {result} {measured.stderr[-500:]}")
            return {"pairs_per_s": 0.0, "cpu_us": 0.0, "pairs": 0, "equal": 0}
        return {**result, "cpu_us": measured.cpu_s / result["pairs"] * 1e6}

    def shadow(self, log: Path, records: int, urls: tuple[str, str], *extra: str) -> dict[str, Any]:
        """One `shadow run`: pairs/s by its own clock, CPU per pair by its own `cpu_s`."""
        self.runs += 1
        events = self.work / f"events-{self.runs}.jsonl"
        argv = [SHADOW, "run", "-q", str(log), "--primary", urls[0], "--candidate", urls[1],
                "--concurrency", str(CONCURRENCY), "--output", str(events),
                "--run-dir", str(self.work / "run"), *extra]  # fmt: skip
        measured = measure(argv, self.work / "shadow.stdout")
        summary = last_event(events)
        with events.open("rb") as lines:
            started = orjson.loads(lines.readline() or b"{}")
        events.unlink(missing_ok=True)
        if summary.get("event") != "run_finished" or summary.get("requests") != records:
            self.fail(f"shadow {' '.join(extra)}: {summary.get('requests')} of {records} "
                      f"records, exit {measured.returncode}: {measured.stderr[-500:]}")  # fmt: skip
            return {"pairs_per_s": 0.0, "cpu_us": 0.0, "summary": summary, "measured": measured}
        if summary.get("errors"):
            self.fail(f"shadow {' '.join(extra)}: {summary['errors']} errors")
        cpu_s = float(summary["cpu_s"])
        if not 0.8 * measured.cpu_s <= cpu_s <= measured.cpu_s:  # the kernel's, exit included
            self.fail(f"run_finished.cpu_s {cpu_s:.2f} against the kernel's {measured.cpu_s:.2f}")
        if "transport" in started:
            self.chosen.add(f"{' '.join(extra) or 'default'}: {started['transport']}")
        return {
            "pairs_per_s": records / float(summary["duration_s"]),
            "cpu_us": cpu_s / records * 1e6,
            "summary": summary,
            "measured": measured,
        }

    def wrk(self, urls: tuple[str, str]) -> float:
        """Both servers loaded at once by wrk, as a replay loads them: pairs/s at their limit."""
        seconds = 1 if self.args.quick else 3
        procs = [
            subprocess.Popen(
                ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", url + "/score"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for url in urls
        ]
        total = 0.0
        for proc in procs:
            out, _ = proc.communicate(timeout=seconds + 30)
            rates = [
                line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")
            ]
            if proc.returncode or not rates or "Non-2xx" in out or "Socket errors" in out:
                self.fail(f"wrk: {out[-400:]}")
                return 0.0
            total += float(rates[0])
        return total / 2

    # --- the parts --------------------------------------------------------------------------

    def replay(self) -> tuple[list[Cell], str]:
        cells: list[Cell] = []
        description = ""
        for size, records in SIZES.items():
            records = self.scaled(records)
            with ServerPair(size, self.args.server) as servers:
                description = f"{servers.kind}: {servers.description}"
                servers.start("primary", "a")
                servers.start("candidate", "a")
                servers.start("candidate_b", "b")
                if not self.startup_cpu_s:
                    self.startup((servers.urls["primary"], servers.urls["candidate"]))
                log = write_log(self.work / f"log-{size}.jsonl", records, seed=size)
                for variant, other in VARIANTS:
                    urls = (servers.urls["primary"], servers.urls[other])
                    cells.append(self.replay_cell(Cell(size, variant), log, records, urls))
        return cells, description

    def contenders(self) -> list[tuple[str, tuple[str, ...]]]:
        """The shadow runs of a cell: a name and the flags it adds."""
        contenders: list[tuple[str, tuple[str, ...]]] = [("shadow", tuple(self.reference))]
        if self.transport:
            contenders.append(("chosen", ("--transport", "auto")))
        contenders.append(("workers", (*self.default, "--workers", "2")))
        return contenders

    def startup(self, urls: tuple[str, str]) -> None:
        """What each contender's CPU is without pairs: one-record runs, medians."""
        log = write_log(self.work / "one.jsonl", 1, seed=1)
        spent: dict[str, list[float]] = {}
        for _ in range(self.args.rounds + 1):
            for name, extra in self.contenders():
                run = self.shadow(log, 1, urls, *extra)
                spent.setdefault(name, []).append(run["cpu_us"] / 1e6)
            for name in ("floor", "naive"):
                spent.setdefault(name, []).append(self.script(name, log, urls)["cpu_us"] / 1e6)
        self.startup_cpu_s = {name: statistics.median(v) for name, v in spent.items()}
        self.note("  start-up CPU: " + ", ".join(
            f"{name} {cpu_s:.2f} s" for name, cpu_s in self.startup_cpu_s.items()))  # fmt: skip

    def per_pair_us(self, name: str, cpu_us: float, pairs: int) -> float:
        """CPU µs per pair without the contender's start-up."""
        return max(0.0, cpu_us - self.startup_cpu_s.get(name, 0.0) * 1e6 / max(pairs, 1))

    def replay_cell(self, cell: Cell, log: Path, records: int, urls: tuple[str, str]) -> Cell:
        want = "mismatched" if cell.variant == "differing" else "matched"
        naive_s = "1" if self.args.quick else "4"
        for _ in range(self.args.rounds):
            floor = self.script("floor", log, urls, "--concurrency", str(CONCURRENCY))
            cell.add(
                "floor", floor["pairs_per_s"], self.per_pair_us("floor", floor["cpu_us"], records)
            )
            for name, extra in self.contenders():
                run = self.shadow(log, records, urls, *extra)
                rate = run["pairs_per_s"] if name != "workers" else replay_rate(run)
                cell.add(name, rate, self.per_pair_us(name, run["cpu_us"], records))
                if run["summary"].get(want) != records:
                    self.fail(f"{cell.size} B {cell.variant} {name}: {want} = "
                              f"{run['summary'].get(want)}, expected {records}")  # fmt: skip
            naive = self.script("naive", log, urls, "--max-seconds", naive_s)
            naive_us = self.per_pair_us("naive", naive["cpu_us"], naive["pairs"])
            cell.add("naive", naive["pairs_per_s"], naive_us)
            if (naive["equal"] == naive["pairs"]) != (cell.variant == "equal"):
                self.fail(f"naive.py: {naive['equal']} of {naive['pairs']} pairs equal")
        if self.has_wrk:
            cell.add("wrk", self.wrk(urls), 0.0)
        self.note(f"  {cell.size // 1024} KB {cell.variant}: " + ", ".join(
            f"{name} {cell.rate(name):.0f}" for name in cell.rates) + " pairs/s")  # fmt: skip
        return cell

    def memory(self) -> list[tuple[int, float, float]]:
        """Peak RSS (kernel) of one shadow run per log length: (records, MiB, pairs/s)."""
        rows = []
        with ServerPair(1024, self.args.server) as servers:
            servers.start("primary", "a")
            servers.start("candidate", "a")
            urls = (servers.urls["primary"], servers.urls["candidate"])
            for records in (self.scaled(20000), self.scaled(200000)):
                log = write_log(self.work / f"memory-{records}.jsonl", records, seed=7)
                run = self.shadow(log, records, urls, *self.default)
                rss_mib = run["measured"].maxrss_bytes / 2**20
                rows.append((records, rss_mib, run["pairs_per_s"]))
                self.note(f"  {records} records: peak RSS {rss_mib:.1f} MiB")
                log.unlink()
        return rows

    def scaling(self) -> dict[int, list[dict[str, Any]]]:
        """`--workers 1` and `2`, alternating, the servers pinned to the last CPU."""
        records = self.scaled(6000)
        pinned = str(max(os.sched_getaffinity(0)))
        runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        with ServerPair(1024, self.args.server, cpus=pinned) as servers:
            servers.start("primary", "a")
            servers.start("candidate", "a")
            urls = (servers.urls["primary"], servers.urls["candidate"])
            log = write_log(self.work / "scaling.jsonl", records, seed=5)
            for _ in range(self.args.rounds + 1):
                for workers in (1, 2):
                    run = self.shadow(log, records, urls, *self.default, "--workers", str(workers))
                    name = "shadow" if workers == 1 else "workers"
                    run["cpu_us"] = self.per_pair_us(name, run["cpu_us"], records)
                    runs[workers].append(run)
        self.note("  " + ", ".join(f"{w} worker(s) {median(r, 'pairs_per_s'):.0f} pairs/s"
                                   for w, r in runs.items()))  # fmt: skip
        return runs

    @property
    def has_wrk(self) -> bool:
        return shutil.which("wrk") is not None


def replay_rate(run: dict[str, Any]) -> float:
    """A `--workers` run's pairs/s over its replay alone: the records over the slowest
    worker's own duration (the workers' start-up, about a second each, left out)."""
    summary = run["summary"]
    slowest = max(
        (float(w.get("duration_s") or 0) for w in summary.get("workers") or []), default=0
    )
    return int(summary.get("requests") or 0) / slowest if slowest else 0.0


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs) if runs else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--quick", action="store_true", help="a tenth of the records, 1 round")
    parser.add_argument("--results", type=Path, default=BENCH / "results-suite.md")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    started, load = time.monotonic(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="shadow-suite-") as tmp:
        suite = Suite(args, Path(tmp))
        if not suite.has_wrk:
            suite.note("wrk not found: the servers' limit is left out (apt-get install wrk)")
        suite.note("replay: each contender per body size and variant")
        cells, servers = suite.replay()
        suite.note("peak RSS")
        memory = suite.memory()
        suite.note("--workers 1 and 2, servers pinned to one CPU")
        scaling = suite.scaling()
    took = f"suite took {time.monotonic() - started:.0f} s"
    loads = f"load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    lines = [
        "# shadow benchmark suite (`make bench`)",
        "",
        *machine(servers),
        (
            f"- concurrency {CONCURRENCY} (per worker); {args.rounds} alternating rounds, "
            f"medians; {took}; {loads}"
        ),
        *(f"- transport chosen: {t}" for t in sorted(suite.chosen)),
        "",
        *render(cells, suite.transport, suite.has_wrk),
        "",
        *render_memory(memory),
        "",
        *render_scaling(scaling),
        "",
        "Checks: " + ("; ".join(suite.failures) if suite.failures else "all passed"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.results.write_text(text)
    return 1 if suite.failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
