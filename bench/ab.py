"""Two versions of shadow side by side: the same log, the same servers, runs alternating.

For a change that should not move the hot path (a reorganisation, a refactor), this measures
that it did not: version A (a git revision, checked out to a temporary folder) and version B
(this checkout) replay the same log to the same two static servers, A, B, A, B, ..., each run
a fresh `python -m shadow run` process, and the medians are compared: pairs per second (by
the run's own `duration_s`) and CPU seconds per thousand pairs (the child's rusage). Every run
is checked: all records counted, all matched.

    .venv/bin/python bench/ab.py REV [--b REV] [--records 20000] [--concurrency 16]
        [--repeats 5] [--body-bytes 1024] [--differing]

`--b REV` measures a second revision instead of this checkout; `--differing` has the
candidate serve a body that differs in one field, so every pair is a `mismatch` (parsed,
walked, written); `--floor` adds bench/floor.py to each round (A, B, floor), and each
version's share of it. The ratio is B / A: above 1, B is faster (or, for CPU, spends more).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
from run import measure, write_log
from servers import ServerPair

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def checkout(rev: str, into: Path) -> Path:
    """The package of `rev`, exported (no working tree of its own) into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "shadow"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    # Bytecode written now, as for this checkout (run.measure): otherwise, where
    # PYTHONDONTWRITEBYTECODE is set, every run of A would compile its modules again.
    compileall.compile_dir(str(into / "shadow"), quiet=1)
    return into


def one_run(
    package_root: Path, log: Path, urls: dict[str, str], args: argparse.Namespace, out: Path
) -> tuple[float, float]:
    """(pairs per second, CPU seconds per 1000 pairs) of one replay by the shadow in
    `package_root`."""
    # The package is put first on sys.path, ahead of the installed (editable) one.
    boot = "import sys; sys.path.insert(0, sys.argv.pop(1)); from shadow.cli import main; "
    env_python = [sys.executable, "-c", boot + "sys.exit(main())", str(package_root)]
    argv = [
        *env_python,
        "run",
        "--primary",
        urls["primary"],
        "--candidate",
        urls["candidate"],
        "--concurrency",
        str(args.concurrency),
        "--progress-interval",
        "0",
        "-q",
        str(log),
    ]
    measured = measure(argv, out)
    last = orjson.loads(out.read_bytes().splitlines()[-1])
    expected = ("mismatched", 1) if args.differing else ("matched", 0)
    if measured.returncode != expected[1] or last.get(expected[0]) != args.records:
        raise SystemExit(
            f"bench: a run is not {expected[0]} on every record: {measured.stderr[-2000:]}"
        )
    duration_s = float(last["duration_s"])
    return args.records / duration_s, measured.cpu_s * 1000 / args.records


def floor_run(
    log: Path, urls: dict[str, str], args: argparse.Namespace, out: Path
) -> tuple[float, float]:
    """(pairs per second, CPU seconds per 1000 pairs) of one floor.py replay."""
    argv = [sys.executable, str(BENCH / "floor.py"), "--json", str(log), "--primary",
            urls["primary"], "--candidate", urls["candidate"], "--concurrency",
            str(args.concurrency)]  # fmt: skip
    measured = measure(argv, out)
    result = orjson.loads(out.read_bytes() or b"{}")
    if measured.returncode or result.get("pairs") != args.records:
        raise SystemExit(f"bench: a floor run failed: {result} {measured.stderr[-2000:]}")
    return float(result["pairs_per_s"]), measured.cpu_s * 1000 / args.records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the git revision to compare this checkout with")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--b", help="a git revision for B (default: this checkout)")
    parser.add_argument("--differing", action="store_true", help="every pair differs")
    parser.add_argument("--floor", action="store_true", help="bench/floor.py in each round too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shadow-ab-") as tmp:
        work = Path(tmp)
        version_b = ROOT if args.b is None else checkout(args.b, Path(tempfile.mkdtemp(dir=work)))
        versions = {"A": checkout(args.rev, Path(tempfile.mkdtemp(dir=work))), "B": version_b}
        log = write_log(work / "log.jsonl", args.records, seed=7)
        results: dict[str, list[tuple[float, float]]] = {"A": [], "B": [], "floor": []}
        with ServerPair(args.body_bytes) as servers:
            variants = {"primary": "a", "candidate": "b" if args.differing else "a"}
            urls = {name: servers.start(name, variants[name]) for name in variants}
            for round_ in range(args.repeats):
                for name, root in versions.items():
                    result = one_run(root, log, urls, args, work / f"{name}{round_}.ndjson")
                    results[name].append(result)
                    print(
                        f"  {name} round {round_}: {result[0]:8.0f} pairs/s  "
                        f"{result[1]:6.3f} cpu s / 1000 pairs",
                        file=sys.stderr,
                        flush=True,
                    )
                if args.floor:
                    result = floor_run(log, urls, args, work / f"floor{round_}.json")
                    results["floor"].append(result)
                    print(f"  floor round {round_}: {result[0]:8.0f} pairs/s  "
                          f"{result[1]:6.3f} cpu s / 1000 pairs", file=sys.stderr, flush=True)  # fmt: skip
            server = servers.description
    pairs = {name: statistics.median(r[0] for r in runs) for name, runs in results.items() if runs}
    cpu = {name: statistics.median(r[1] for r in runs) for name, runs in results.items() if runs}
    print(
        f"A = {args.rev}, B = {args.b or 'this checkout'}; {args.records} records of "
        f"{args.body_bytes} B{', differing' if args.differing else ''}, "
        f"concurrency {args.concurrency}, {args.repeats} alternating runs each, {server}; "
        f"{os.cpu_count()} CPUs"
    )
    print("| | A | B | B / A |")
    print("| --- | --- | --- | --- |")
    print(
        f"| pairs/s (median) | {pairs['A']:.0f} | {pairs['B']:.0f} | {pairs['B'] / pairs['A']:.2f} |"
    )
    print(
        f"| CPU s per 1000 pairs (median) | {cpu['A']:.3f} | {cpu['B']:.3f} | {cpu['B'] / cpu['A']:.2f} |"
    )
    if args.floor:
        print(
            f"| floor: pairs/s (median), A / floor, B / floor | {pairs['floor']:.0f} | "
            f"{pairs['A'] / pairs['floor']:.2f} | {pairs['B'] / pairs['floor']:.2f} |"
        )
        print(
            f"| floor: CPU s per 1000 pairs, floor / A, floor / B | {cpu['floor']:.3f} | "
            f"{cpu['floor'] / cpu['A']:.2f} | {cpu['floor'] / cpu['B']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
