"""The cost of noise calibration: pairs per second with it off, repeating reads, and a secondary.

    .venv/bin/python bench/bench_noise.py [--records 10000] [--concurrency 16] [--rounds 3]

Three static servers (bench/servers.py; nginx when found) answer the same JSON body: the
primary, the candidate and a secondary. Each round runs `shadow run` once per mode, each in a
fresh process, alternating so that machine noise hits every mode alike:

  off        `[noise] enabled = false`: primary and candidate only
  default    no `[noise]` table: calibration by default, every read of an endpoint repeated to
             the primary until it has 20 pairs (`full_pairs`), then one in ten (`sample`)
  repeat-all `sample = 1.0`: every record (all GET) is sent to the primary again
  secondary  `--secondary URL`: every record also goes to the secondary (the default sample)

pairs/s is shadow's own measure (`requests / run_finished.duration_s`); CPU time per pair is
the child's user+sys time from the kernel (`wait4`). Medians of the rounds are reported, to
stdout and to bench/results-noise.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from servers import ServerPair

BENCH = Path(__file__).resolve().parent
SHADOW = [sys.executable, "-m", "shadow"]
MODES = ("off", "default", "repeat-all", "secondary")


def write_log(path: Path, records: int, seed: int = 11) -> None:
    """GET records over a few endpoint shapes with random ids."""
    rng = random.Random(seed)
    shapes = ("/internal/score/v2/{n}/0x{h}", "/internal/stake/gtc/0x{h}", "/items/{n}")
    with path.open("wb") as out:
        for i in range(records):
            shape = rng.choice(shapes)
            where = shape.format(n=rng.randrange(1, 500), h=f"{rng.getrandbits(160):040x}")
            out.write(orjson.dumps({"method": "GET", "path": where, "id": f"r{i}"}) + b"\n")


@dataclass(frozen=True)
class Run:
    mode: str
    pairs_per_s: float
    cpu_us_per_pair: float
    requests: int
    calibration: object


def run_once(mode: str, urls: dict[str, str], log: Path, work: Path, concurrency: int) -> Run:
    config = work / f"{mode}.toml"
    text = f'[targets.primary]\nurl = "{urls["primary"]}"\n'
    text += f'[targets.candidate]\nurl = "{urls["candidate"]}"\n'
    if mode == "off":
        text += "[noise]\nenabled = false\n"
    if mode == "repeat-all":
        text += "[noise]\nsample = 1.0\n"
    config.write_text(text)
    argv = [*SHADOW, "run", "-c", str(config), "--concurrency", str(concurrency), "-q"]
    if mode == "secondary":
        argv += ["--secondary", urls["secondary"]]
    argv += ["--run-dir", str(work / "runs"), str(log)]
    out = work / f"{mode}.jsonl"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(argv, stdout=stdout, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    summary = orjson.loads(out.read_bytes().splitlines()[-1])
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or summary["matched"] != summary["requests"]:
        raise SystemExit(f"{mode}: exit {code}, {summary['matched']}/{summary['requests']} matched")
    requests = summary["requests"]
    return Run(
        mode,
        requests / summary["duration_s"],
        (usage.ru_utime + usage.ru_stime) / requests * 1e6,
        requests,
        summary["calibration"],
    )


def report(args: argparse.Namespace, runs: list[Run], servers: str) -> str:
    by_mode = {mode: [r for r in runs if r.mode == mode] for mode in MODES}
    base = statistics.median(r.pairs_per_s for r in by_mode["off"])
    lines = [
        "# shadow benchmark: the cost of noise calibration",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- nproc: {os.cpu_count()}, CPython {platform.python_version()} on {platform.system()}",
        f"- servers: {servers}",
        (
            f"- {args.records} GET records, concurrency {args.concurrency}, 1024-byte bodies, "
            f"identical answers; {args.rounds} alternating rounds, medians"
        ),
        "",
        (
            "| mode | pairs/s | vs off | CPU per pair, µs | CPU vs off | calibration pairs "
            "| pairs/s, each round |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base_cpu = statistics.median(r.cpu_us_per_pair for r in by_mode["off"])
    for mode, group in by_mode.items():
        rate = statistics.median(r.pairs_per_s for r in group)
        cpu = statistics.median(r.cpu_us_per_pair for r in group)
        each = ", ".join(f"{r.pairs_per_s:.0f}" for r in group)
        calibration = group[0].calibration
        pairs = calibration.get("pairs", 0) if isinstance(calibration, dict) else 0
        lines.append(
            f"| {mode} | {rate:.0f} | {rate / base:.2f} | {cpu:.0f} | {cpu / base_cpu:.2f} "
            f"| {pairs} | {each} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="shadow-bench-noise-") as tmp,
        ServerPair(1024, args.server) as servers,
    ):
        work = Path(tmp)
        urls = {name: servers.start(name, "a") for name in ("primary", "candidate", "secondary")}
        log = work / "log.jsonl"
        write_log(log, args.records)
        runs = [
            run_once(mode, urls, log, work, args.concurrency)
            for _ in range(args.rounds)
            for mode in MODES
        ]
        text = report(args, runs, servers.description)
    print(text)
    (BENCH / "results-noise.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
