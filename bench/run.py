"""Benchmark `shadow run` against the floor of its own stack, in one run, on this machine.

Both contenders replay the same log to the same two static servers with the same concurrency,
each in a fresh process, alternating (floor, shadow, floor, shadow, ...) so that noise from the
machine hits both alike; the medians are compared. Then shadow alone replays a log ten times as
long, to show that its memory does not grow with the log, and once against a candidate whose
every answer differs, to price the mismatch path (diff + one event per pair).

    .venv/bin/python bench/run.py [--records 20000] [--concurrency 16] [--big 200000]

Peak RSS comes from the kernel (`wait4` rusage of the child, exact) with a psutil sample every
50 ms as a cross-check; CPU time from the same rusage. Results go to stdout and to
bench/results-latest.md.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import functools
import hashlib
import importlib.util
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import psutil
from servers import ServerPair

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def _shadow_bin() -> str:
    """The `shadow` script next to this interpreter, else the checkout's venv, else PATH."""
    for candidate in (Path(sys.executable).parent / "shadow", ROOT / ".venv" / "bin" / "shadow"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("shadow") or "shadow"


SHADOW = _shadow_bin()
TARGET_RATIO = 0.8
_HEX = "0123456789abcdef"


# --- logs --------------------------------------------------------------------------------------


def _address(rng: random.Random) -> str:
    return "0x" + "".join(rng.choices(_HEX, k=40))


_PATHS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"/registry/v2/score/{r.randint(1, 400)}/{_address(r)}",
    lambda r: f"/internal/score/v2/{r.randint(1, 400)}/{_address(r)}",
    lambda r: f"/internal/stake/gtc/{_address(r)}",
    lambda r: f"/internal/check-bans?address={_address(r)}&round={r.randint(1, 90)}",
    lambda r: f"/internal/check-revocations?proof={r.getrandbits(64):016x}",
    lambda r: f"/ceramic-cache/stamp?address={_address(r)}",
    lambda r: f"/ceramic-cache/score/{_address(r)}",
    lambda r: f"/registry/v2/stamps/{_address(r)}?limit={r.choice((10, 50, 100))}",
    lambda r: f"/cgrants/contributor_statistics?handle=user{r.randint(1, 99999)}",
    lambda r: f"/embed/stamps/{_address(r)}",
    lambda r: "/registry/weights",
    lambda r: f"/internal/allow-list/{r.choice(('gtc', 'op', 'arb'))}/{_address(r)}",
)


def write_log(path: Path, records: int, seed: int) -> Path:
    """A native JSONL log of `records` GET requests over a dozen endpoints, varied paths."""
    rng = random.Random(seed)
    with path.open("wb") as out:
        for i in range(records):
            record = {
                "method": "GET",
                "path": rng.choice(_PATHS)(rng),
                "id": f"r-{i}",
                "headers": {"Accept": "application/json"},
            }
            out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    return path


# --- measuring one process ---------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    argv: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    maxrss_bytes: int  # kernel's high-water mark (wait4 rusage)
    sampled_rss_bytes: int  # highest psutil sample, every 50 ms
    stderr: str


@functools.cache
def _compiled() -> None:
    """shadow's modules as bytecode, written once before the first run is measured, as pip
    leaves an installed package: where PYTHONDONTWRITEBYTECODE is set (this project's
    machines), each start would otherwise compile every module again, about 0.15 s of CPU
    counted as start-up."""
    compileall.compile_dir(str(ROOT / "shadow"), quiet=1)


def measure(argv: list[str], stdout: Path) -> Measured:
    """Run argv to completion; its wall time, CPU time and peak RSS."""
    _compiled()
    with stdout.open("wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        watched = psutil.Process(proc.pid)
        sampled = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):  # it may end between wait4 and here
                sampled = max(sampled, watched.memory_info().rss)
            time.sleep(0.05)
        wall_s = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return Measured(
        argv,
        proc.returncode,
        wall_s,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss * 1024,
        sampled,
        stderr,
    )


@dataclass(frozen=True)
class Result:
    name: str
    records: int
    measured: Measured
    pairs_per_s: float  # from the tool's own clock
    summary: dict[str, Any]  # floor's result or shadow's run_finished event

    @property
    def wall_pairs_per_s(self) -> float:
        return self.records / self.measured.wall_s


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, urls: dict[str, str]) -> None:
        self.args = args
        self.work = work
        self.urls = urls
        self.failures: list[str] = []
        self._runs = 0

    def fail(self, message: str, measured: Measured | None = None) -> None:
        detail = ""
        if measured is not None:
            detail = (
                f"\n  command: {' '.join(measured.argv)}\n  exit: {measured.returncode}"
                f"\n  stderr (tail):\n    " + "\n    ".join(measured.stderr.splitlines()[-20:])
            )
        self.failures.append(message + detail)
        print(f"\n!!!!! BENCH CHECK FAILED: {message}{detail}\n", file=sys.stderr, flush=True)

    def floor(self, log: Path, records: int) -> Result:
        out = self.work / f"floor-{self._next()}.json"
        argv = [
            sys.executable,
            str(BENCH / "floor.py"),
            "--json",
            str(log),
            "--primary",
            self.urls["primary"],
            "--candidate",
            self.urls["candidate"],
            "--concurrency",
            str(self.args.concurrency),
        ]
        measured = measure(argv, out)
        try:
            summary = orjson.loads(out.read_bytes())
        except orjson.JSONDecodeError:
            self.fail("floor printed no result", measured)
            return Result("floor", records, measured, 0.0, {})
        if measured.returncode != 0 or summary["pairs"] != records or summary["failed"]:
            self.fail(f"floor: {summary} for {records} records", measured)
        elif summary["equal"] != records:
            self.fail(f"floor: only {summary['equal']} of {records} pairs equal", measured)
        return Result("floor", records, measured, summary["pairs_per_s"], summary)

    def shadow(self, log: Path, records: int, candidate: str = "candidate") -> Result:
        n = self._next()
        events = self.work / f"shadow-{n}.jsonl"
        argv = [
            SHADOW,
            "run",
            "-q",
            str(log),
            "--primary",
            self.urls["primary"],
            "--candidate",
            self.urls[candidate],
            "--concurrency",
            str(self.args.concurrency),
            "--output",
            str(events),
            "--run-dir",
            str(self.work / f"run-dir-{n}"),
        ]
        measured = measure(argv, self.work / f"shadow-{n}.stdout")
        summary = last_event(events)
        if summary.get("event") != "run_finished":
            self.fail("shadow: no run_finished event at the end of its output", measured)
            return Result("shadow", records, measured, 0.0, summary)
        expect_mismatch = candidate != "candidate"
        problems = []
        if summary["requests"] != records:
            problems.append(f"requests={summary['requests']}, expected {records}")
        if summary["errors"] != 0:
            problems.append(f"errors={summary['errors']}, expected 0")
        key = "mismatched" if expect_mismatch else "matched"
        if summary[key] != records:
            problems.append(f"{key}={summary[key]}, expected {records}")
        if measured.returncode != (1 if expect_mismatch else 0):
            problems.append(f"exit code {measured.returncode}")
        if problems:
            self.fail("shadow run: " + "; ".join(problems), measured)
        duration_s = float(summary["duration_s"])
        pairs_per_s = int(summary["requests"]) / duration_s if duration_s else 0.0
        summary["events_bytes"] = events.stat().st_size
        events.unlink()
        return Result("shadow", records, measured, pairs_per_s, summary)

    def _next(self) -> int:
        self._runs += 1
        return self._runs


def last_event(path: Path) -> dict[str, Any]:
    if not path.exists() or path.stat().st_size == 0:
        return {}
    with path.open("rb") as events:
        events.seek(max(0, path.stat().st_size - 65536))
        tail = events.read().splitlines()
    try:
        event: dict[str, Any] = orjson.loads(tail[-1])
    except orjson.JSONDecodeError:
        return {}
    return event


def note(result: Result, label: str) -> None:
    m = result.measured
    print(
        f"  {label:<22} {result.pairs_per_s:8.0f} pairs/s  wall {m.wall_s:6.1f}s  "
        f"cpu {m.cpu_s:6.1f}s  rss {m.maxrss_bytes / 2**20:6.1f} MiB",
        file=sys.stderr,
        flush=True,
    )


# --- report ------------------------------------------------------------------------------------


def shadow_package() -> Path:
    """Where `import shadow` finds the package (the checkout, or a copy named by PYTHONPATH)."""
    spec = importlib.util.find_spec("shadow")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench: the shadow package cannot be imported by this interpreter")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def source_digest() -> str:
    """A short hash of shadow's sources, to tell which code a result belongs to."""
    package = shadow_package()
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def code_version() -> str:
    package = shadow_package()
    if package != ROOT / "shadow":
        return f"copy at {package}"
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        check=False,
        capture_output=True,
        text=True,
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "shadow"],
        check=False,
        capture_output=True,
        text=True,
    )
    state = " with uncommitted changes in shadow/" if dirty.stdout.strip() else ""
    return "git " + (head.stdout.strip() or "no commit yet") + state


def machine(server: str) -> list[str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = psutil.virtual_memory().total / 2**30
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("aiohttp", "uvloop", "orjson"))
    python = f"{platform.python_implementation()} {platform.python_version()}"
    system = f"{platform.system()} {platform.release()}"
    return [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- nproc: {len(os.sched_getaffinity(0))} (CPU model: {model}), RAM {mem_gib:.1f} GiB",
        f"- {python} on {system}; {versions}",
        f"- servers: {server}",
        f"- shadow: {code_version()}; sources sha256 {source_digest()}",
    ]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines; every column but the first is right-aligned."""
    align = ["---", *["---:"] * (len(header) - 1)]
    return ["| " + " | ".join(cells) + " |" for cells in (header, align, *rows)]


def _median(results: list[Result], get: Callable[[Result], float]) -> float:
    return statistics.median(get(r) for r in results) if results else 0.0


def _mib(value: float) -> str:
    return f"{value / 2**20:.1f}"


def _pairs(r: Result) -> float:
    return r.pairs_per_s


def _rss(r: Result) -> float:
    return r.measured.maxrss_bytes


def _sampled(r: Result) -> float:
    return r.measured.sampled_rss_bytes


def _cpu_us(r: Result) -> float:
    return r.measured.cpu_s / r.records * 1e6


def _per_cpu_s(r: Result) -> float:
    return r.records / r.measured.cpu_s if r.measured.cpu_s else 0.0


def throughput_section(
    args: argparse.Namespace, floors: list[Result], shadows: list[Result]
) -> list[str]:
    def row(label: str, get: Callable[[Result], float], fmt: str) -> list[str]:
        f, s = _median(floors, get), _median(shadows, get)
        return [label, f"{f:{fmt}}", f"{s:{fmt}}", f"{s / f:.2f}" if f else ""]

    ratio = _median(shadows, _pairs) / (_median(floors, _pairs) or 1)
    verdict = "meets" if ratio >= TARGET_RATIO else "is BELOW"
    cpu_ratio = _median(shadows, _per_cpu_s) / (_median(floors, _per_cpu_s) or 1)
    verdict_line = (
        f"shadow / floor = **{ratio:.2f}**: {verdict} the {TARGET_RATIO} target "
        f"(by CPU cost per pair: {cpu_ratio:.2f})."
    )
    each = [", ".join(f"{r.pairs_per_s:.0f}" for r in rs) for rs in (floors, shadows)]
    title = (
        f"## Throughput: {args.records} records, concurrency {args.concurrency}, "
        f"{args.body_bytes}-byte bodies, identical answers"
    )
    how = (
        f"Alternating runs, {len(floors)} of each; medians. pairs/s is measured by each "
        "tool's own clock (shadow: `requests / run_finished.duration_s`)."
    )
    rows = [
        row("**pairs/s**", _pairs, ".0f"),
        ["pairs/s, each run", *each, ""],
        row("pairs/s by wall time (incl. start-up)", lambda r: r.wall_pairs_per_s, ".0f"),
        row("wall time, s", lambda r: r.measured.wall_s, ".2f"),
        row("CPU time (user+sys), s", lambda r: r.measured.cpu_s, ".2f"),
        row("CPU per pair, µs", _cpu_us, ".0f"),
        row("pairs per CPU-second (less sensitive to other load)", _per_cpu_s, ".0f"),
        row("peak RSS, MiB", lambda r: _rss(r) / 2**20, ".1f"),
    ]
    header = ["", "floor (bench/floor.py)", "shadow run", "shadow / floor"]
    return [
        title,
        "",
        how,
        "",
        *table(header, rows),
        "",
        verdict_line,
    ]


def memory_section(args: argparse.Namespace, shadows: list[Result], big: Result) -> list[str]:
    small_rss, small_sampled = _median(shadows, _rss), _median(shadows, _sampled)
    rows = [
        [
            f"{args.records} records (median)",
            f"{_median(shadows, _pairs):.0f}",
            f"{_median(shadows, lambda r: r.measured.wall_s):.1f}",
            _mib(small_rss),
            _mib(small_sampled),
        ],
        [
            f"{big.records} records",
            f"{big.pairs_per_s:.0f}",
            f"{big.measured.wall_s:.1f}",
            _mib(_rss(big)),
            _mib(_sampled(big)),
        ],
        [
            f"ratio {big.records} / {args.records}",
            "",
            "",
            f"**{_rss(big) / (small_rss or 1):.2f}**",
            f"{_sampled(big) / (small_sampled or 1):.2f}",
        ],
    ]
    header = [
        "shadow run, log of",
        "pairs/s",
        "wall time, s",
        "peak RSS, MiB (kernel)",
        "peak RSS, MiB (psutil, 50 ms)",
    ]
    return ["## shadow memory: peak RSS against log length", "", *table(header, rows)]


def mismatch_section(floors: list[Result], mismatch: Result) -> list[str]:
    events_bytes = float(mismatch.summary.get("events_bytes", 0))
    rows = [
        [
            str(mismatch.records),
            f"{mismatch.pairs_per_s:.0f}",
            f"{mismatch.pairs_per_s / (_median(floors, _pairs) or 1):.2f}",
            f"{mismatch.measured.wall_s:.1f}",
            f"{_cpu_us(mismatch):.0f}",
            _mib(events_bytes),
            _mib(_rss(mismatch)),
        ]
    ]
    header = [
        "records",
        "pairs/s",
        "vs floor",
        "wall time, s",
        "CPU per pair, µs",
        "events, MiB",
        "peak RSS, MiB",
    ]
    return [
        "## shadow, every pair a mismatch (candidate serves variant b), events to a file",
        "",
        *table(header, rows),
    ]


def report(
    args: argparse.Namespace,
    server: str,
    floors: list[Result],
    shadows: list[Result],
    big: Result | None,
    mismatch: Result | None,
    failures: list[str],
) -> str:
    lines = ["# shadow benchmark: latest results", "", *machine(server), ""]
    lines += throughput_section(args, floors, shadows)
    if big is not None:
        lines += ["", *memory_section(args, shadows, big)]
    if mismatch is not None:
        lines += ["", *mismatch_section(floors, mismatch)]
    lines += ["", "## Checks", ""]
    if failures:
        lines += [f"- **FAILED**: {f.splitlines()[0]}" for f in failures]
    else:
        lines.append(
            "- every shadow run: `requests` == records, `errors` == 0, matched (or "
            "mismatched) == records, expected exit code; every floor run: all pairs equal"
        )
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--big", type=int, default=200_000, help="long log for RSS; 0 skips")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each")
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--nginx", metavar="PATH", help="nginx binary (default: $NGINX, PATH)")
    parser.add_argument("--no-mismatch", action="store_true", help="skip the all-mismatch run")
    parser.add_argument("--results", type=Path, default=BENCH / "results-latest.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp,
        ServerPair(args.body_bytes, args.server, args.nginx) as servers,
    ):
        work = Path(tmp)
        server = servers.description
        print(f"servers: {servers.kind} — {server}", file=sys.stderr, flush=True)
        servers.start("primary", "a")
        servers.start("candidate", "a")
        if not args.no_mismatch:
            servers.start("candidate_b", "b")
        log = write_log(work / "small.jsonl", args.records, seed=1)
        warm = write_log(work / "warm.jsonl", min(2000, args.records), seed=3)
        bench = Bench(args, work, servers.urls)
        digest = source_digest()
        print("warm-up", file=sys.stderr, flush=True)
        bench.floor(warm, min(2000, args.records))
        bench.shadow(warm, min(2000, args.records))
        floors: list[Result] = []
        shadows: list[Result] = []
        for i in range(args.repeats):
            floors.append(bench.floor(log, args.records))
            note(floors[-1], f"floor #{i + 1}")
            shadows.append(bench.shadow(log, args.records))
            note(shadows[-1], f"shadow #{i + 1}")
        mismatch = None
        if not args.no_mismatch:
            mismatch = bench.shadow(log, args.records, candidate="candidate_b")
            note(mismatch, "shadow, all mismatch")
        big = None
        if args.big:
            big_log = write_log(work / "big.jsonl", args.big, seed=2)
            big = bench.shadow(big_log, args.big)
            note(big, f"shadow, {args.big} records")
        if source_digest() != digest:
            bench.fail("shadow's sources changed while the benchmark ran: results mix versions")
        table = report(
            args, f"{servers.kind}: {server}", floors, shadows, big, mismatch, bench.failures
        )
    print(table)
    args.results.write_text(table)
    print(f"written to {args.results}", file=sys.stderr)
    if bench.failures:
        print(f"!!!!! {len(bench.failures)} BENCH CHECK(S) FAILED, see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
