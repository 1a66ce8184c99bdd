"""`make bench`: every headline figure of shadow's speed in one run, printed as one table of ratios.

- replay: `shadow run` pairs/s against the floor of its stack (bench/floor.py: aiohttp + uvloop
  fetching both answers and comparing bytes) and against the servers' limit (`wrk` on both
  servers at once, requests/s summed and halved to pairs/s), for JSON bodies of 1, 10 and 100
  KB, the two answers equal and differing (every pair a mismatch, its event written);
- the compare engine alone against DeepDiff (bench/bench_compare.py), and the check that
  identical answers are compared without parsing;
- start-up: `shadow --help`, and a one-record run with two managed servers;
- `--workers 2` against one process on the same log.

Each shadow, floor and wrk run is a fresh process, the contenders alternating round by round
so that noise from the machine hits them alike; medians. The servers are nginx (Debian's
package) when found, else bench/servers.py's aiohttp server (see there). Results go to stdout
and to bench/results-suite.md.

    .venv/bin/python bench/suite.py [--rounds 2] [--quick]
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from run import BENCH, SHADOW, last_event, machine, measure, table, write_log
from servers import ServerPair

SIZES = {1024: 4000, 10240: 3000, 102400: 1500}  # body bytes: records replayed
CONCURRENCY = 16
WRK_SECONDS = 4


@dataclass
class Cell:
    """One comparison: shadow's figure, the reference's, and what is wanted of the ratio."""

    label: str
    shadow: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    reference_name: str = ""
    unit: str = "pairs/s"
    target: str = ""
    wanted: Callable[[float], bool] | None = None

    @property
    def ratio(self) -> float:
        """shadow / reference: a share of a rate, or how many times a duration."""
        s, r = statistics.median(self.shadow), statistics.median(self.reference or [0.0])
        return s / r if r else 0.0


class Suite:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.failures: list[str] = []
        self.runs = 0

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.note(f"!!!!! CHECK FAILED: {text}")

    # --- the contenders --------------------------------------------------------------------

    def floor(self, log: Path, primary: str, candidate: str) -> float:
        out = self.work / "floor.json"
        argv = [sys.executable, str(BENCH / "floor.py"), "--json", str(log), "--primary",
                primary, "--candidate", candidate, "--concurrency", str(CONCURRENCY)]  # fmt: skip
        measured = measure(argv, out)
        result = orjson.loads(out.read_bytes() or b"{}")
        if measured.returncode or result.get("failed") or not result.get("pairs"):
            self.fail(f"floor run failed: {result} {measured.stderr[-500:]}")
            return 0.0
        return float(result["pairs_per_s"])

    def shadow(self, log: Path, records: int, urls: tuple[str, str], *extra: str) -> dict[str, Any]:
        self.runs += 1
        events = self.work / f"events-{self.runs}.jsonl"
        argv = [SHADOW, "run", "-q", str(log), "--primary", urls[0], "--candidate", urls[1],
                "--concurrency", str(CONCURRENCY), "--output", str(events),
                "--run-dir", str(self.work / "run"), *extra]  # fmt: skip
        measured = measure(argv, self.work / "shadow.stdout")
        summary = last_event(events)
        events.unlink(missing_ok=True)
        if summary.get("event") != "run_finished" or summary.get("requests") != records:
            self.fail(f"shadow {' '.join(extra)}: {summary.get('requests')} of {records} "
                      f"records, exit {measured.returncode}: {measured.stderr[-500:]}")  # fmt: skip
            return {"pairs_per_s": 0.0, "summary": summary}
        if summary.get("errors"):
            self.fail(f"shadow: {summary['errors']} errors")
        duration = float(summary["duration_s"])  # type: ignore[arg-type]
        return {
            "pairs_per_s": records / duration,
            "cpu_us": measured.cpu_s / records * 1e6,
            "summary": summary,
            "wall_s": measured.wall_s,
        }

    def wrk(self, urls: tuple[str, str]) -> float:
        """Both servers loaded at once by wrk, as a replay loads them: pairs/s at their limit."""
        procs = [
            subprocess.Popen(
                ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{WRK_SECONDS}s", url + "/score"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for url in urls
        ]
        total = 0.0
        for proc in procs:
            out, _ = proc.communicate(timeout=WRK_SECONDS + 30)
            rates = [
                line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")
            ]
            if proc.returncode or not rates or "Non-2xx" in out or "Socket errors" in out:
                self.fail(f"wrk: {out[-400:]}")
                return 0.0
            total += float(rates[0])
        return total / 2

    # --- the parts --------------------------------------------------------------------------

    def replay(self, kind: str) -> tuple[list[Cell], str]:
        cells: list[Cell] = []
        description = ""
        for size, records in self.sizes().items():
            with ServerPair(size, kind) as servers:
                description = f"{servers.kind}: {servers.description}"
                servers.start("primary", "a")
                servers.start("candidate", "a")
                servers.start("candidate_b", "b")
                log = write_log(self.work / f"log-{size}.jsonl", records, seed=size)
                for variant, other in (("equal", "candidate"), ("differing", "candidate_b")):
                    urls = (servers.urls["primary"], servers.urls[other])
                    cells += self.replay_cell(size, variant, log, records, urls)
        return cells, description

    def replay_cell(
        self, size: int, variant: str, log: Path, records: int, urls: tuple[str, str]
    ) -> list[Cell]:
        label = f"replay, {size // 1024} KB bodies, {variant}"
        floor = Cell(label + ": vs floor", reference_name="floor", target=">= 0.8",
                     wanted=lambda r: r >= 0.8)  # fmt: skip
        limit = Cell(label + ": vs servers' limit", reference_name="wrk / 2")
        for _ in range(self.args.rounds):
            floor.reference.append(self.floor(log, *urls))
            run = self.shadow(log, records, urls)
            floor.shadow.append(run["pairs_per_s"])
            limit.shadow.append(run["pairs_per_s"])
            want = "mismatched" if variant == "differing" else "matched"
            if run["summary"].get(want) != records:
                self.fail(f"{label}: {want} = {run['summary'].get(want)}, expected {records}")
            limit.reference.append(self.wrk(urls) if self.has_wrk else 0.0)
        self.note(f"  {label}: shadow {statistics.median(floor.shadow):.0f}, floor "
                  f"{statistics.median(floor.reference):.0f}, wrk/2 "
                  f"{statistics.median(limit.reference):.0f} pairs/s")  # fmt: skip
        return [floor, limit] if self.has_wrk else [floor]

    def compare_engine(self) -> list[Cell]:
        argv = [sys.executable, str(BENCH / "bench_compare.py"), "--json", "--seconds",
                str(self.args.compare_seconds)]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, check=False, cwd=BENCH)
        result = orjson.loads(proc.stdout or b"{}")
        if not result:
            self.fail(f"bench_compare.py: {proc.stderr.decode()[-500:]}")
            return []
        if result["disagreements"]:
            self.fail(f"compare engine and DeepDiff disagree: {result['disagreements'][:3]}")
        if result["parses_for_identical"]:
            self.fail(f"{result['parses_for_identical']} parses for identical bodies")
        engine = Cell("compare engine, diffs per CPU second", [result["shadow_per_s"]],
                      [result["deepdiff_per_s"]], "DeepDiff", "diffs/s", ">= 50",
                      lambda r: r >= 50)  # fmt: skip
        same = Cell("identical 100 KB bodies: compared vs parsed once",
                    [result["identical_100kb_per_s"]], [result["parse_100kb_per_s"]],
                    "parse only", "pairs/s", "> 1 (no parse)", lambda r: r > 1)  # fmt: skip
        return [engine, same]

    def startup(self) -> list[Cell]:
        def wall(argv: list[str]) -> float:
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False, cwd=self.work)
            return time.perf_counter() - started

        bare = [wall([sys.executable, "-c", "pass"]) for _ in range(5)]
        help_s = [wall([SHADOW, "--help"]) for _ in range(5)]
        config = self.work / "managed.toml"
        server = [sys.executable, str(BENCH / "servers.py"), "--port", "{port}"]
        command = ", ".join(f'"{a}"' for a in server)
        config.write_text(
            "".join(
                f'[targets.{name}]\nurl = "http://127.0.0.1:0"\ncommand = [{command}]\n'
                'health = { path = "/ready", interval_s = 0.02 }\n'
                for name in ("primary", "candidate")
            )
        )
        one = write_log(self.work / "one.jsonl", 1, seed=1)
        managed = [wall([SHADOW, "run", "-q", "-c", str(config), str(one), "--run-dir",
                         str(self.work / "run")]) for _ in range(3)]  # fmt: skip
        return [
            Cell("start-up: shadow --help", help_s, bare, "python -c pass", "s"),
            Cell("start-up: a 1-record run, 2 managed servers", managed, help_s,
                 "shadow --help", "s"),
        ]  # fmt: skip

    def workers(self, kind: str) -> list[Cell]:
        records = self.args.workers_records
        with ServerPair(1024, kind) as servers:
            servers.start("primary", "a")
            servers.start("candidate", "a")
            urls = (servers.urls["primary"], servers.urls["candidate"])
            log = write_log(self.work / "workers.jsonl", records, seed=5)
            total = Cell("--workers 2 vs 1 process (incl. start-up)", reference_name="1 process")
            steady = Cell("--workers 2 vs 1 process (replay only)", reference_name="1 process")
            for _ in range(self.args.rounds):
                one = self.shadow(log, records, urls)
                two = self.shadow(log, records, urls, "--workers", "2")
                total.reference.append(one["pairs_per_s"])
                total.shadow.append(two["pairs_per_s"])
                steady.reference.append(one["pairs_per_s"])
                workers = two["summary"].get("workers") or [{"duration_s": 0}]
                slowest = max(float(w.get("duration_s") or 0) for w in workers)
                steady.shadow.append(records / slowest if slowest else 0.0)
        return [total, steady]

    def sizes(self) -> dict[int, int]:
        if self.args.quick:
            return {size: records // 10 for size, records in SIZES.items()}
        return SIZES

    @property
    def has_wrk(self) -> bool:
        return shutil.which("wrk") is not None


def render(cells: list[Cell], header: list[str], rounds: int) -> list[str]:
    rows = []
    for cell in cells:
        fmt = ".2f" if cell.unit == "s" else ".0f"
        s = statistics.median(cell.shadow)
        r = statistics.median(cell.reference) if cell.reference else 0.0
        met = ""
        if cell.wanted is not None:
            met = "met" if cell.wanted(cell.ratio) else "**missed**"
        each = ", ".join(f"{v:{fmt}}" for v in cell.shadow) if len(cell.shadow) > 1 else ""
        rows.append([cell.label, f"{s:{fmt}} {cell.unit}", f"{r:{fmt}} ({cell.reference_name})",
                     f"**{cell.ratio:.2f}**", cell.target, met, each])  # fmt: skip
    return table(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--compare-seconds", type=float, default=5.0)
    parser.add_argument("--workers-records", type=int, default=8000)
    parser.add_argument("--quick", action="store_true", help="a tenth of the records")
    parser.add_argument("--results", type=Path, default=BENCH / "results-suite.md")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shadow-suite-") as tmp:
        suite = Suite(args, Path(tmp))
        if not suite.has_wrk:
            suite.note("wrk not found: the servers' limit is left out (apt-get install wrk)")
        suite.note("replay: floor, shadow and wrk per body size and variant")
        replay, servers = suite.replay(args.server)
        suite.note("compare engine vs DeepDiff")
        engine = suite.compare_engine()
        suite.note("start-up")
        startup = suite.startup()
        suite.note("--workers 2")
        workers = suite.workers(args.server)
    cells = [*replay, *engine, *startup, *workers]
    header = ["measure", "shadow", "reference", "ratio", "target", "", "shadow, each round"]
    lines = [
        "# shadow benchmark suite (`make bench`)",
        "",
        *machine(servers),
        (
            f"- concurrency {CONCURRENCY}; {args.rounds} alternating rounds, medians; "
            f"wrk {WRK_SECONDS} s per server; suite took {time.monotonic() - started:.0f} s"
        ),
        "",
        *render(cells, header, args.rounds),
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
