"""The cost of correlation per exchange, and what it changes in the stateful scenario.

    .venv/bin/python bench/bench_correlate.py [--lanes 400] [--rounds 5] [--scenario-lanes 20]
        [--run-lanes 300] [--run-rounds 3]

1. CPU per exchange, in-process. The same lane traffic (per lane: create, read, update with
   If-Match, read, delete, read; the answers a pair of stateful servers gives, ids 1001.. on
   the primary and 1.. on the candidate, an ETag each, order objects with a few line items)
   goes through what a run does per exchange around the network: the route and the
   correlator's `prepare`, then its `learn` and the comparison (`diff_responses`) with the
   exchange's rules. Modes: `off` (no correlator: what every run paid before), `rules` (two
   `[[replay.capture]]`: the id and the ETag) and `auto`. CPU time is `time.process_time`,
   the modes alternate round by round, medians reported.

2. The same through a whole `shadow run` (CPU of the child process, start-up included)
   against two stateful servers that hand out the same ids, so the answers, and all the
   work but correlation, are the same with `correlate = "off"` and `"rules"`.

3. False positives and false negatives of the stateful scenario: `shadow run` against
   tests/helpers/stateful_server.py twice (ids from 1001 and from 1; the candidate with
   `--bug-total`: an update answers a wrong `total`), the CRUD lanes above replayed with
   `correlate = "off"`, `"rules"` and `"auto"`. Ground truth per exchange: the update and
   the read after it differ for real (the wrong `total`); nothing else does. A false
   positive is a mismatch on an exchange that does not differ for real; a false negative an
   exchange that does whose `/total` difference is not reported (a 404 against 200 hides it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shadow.compare.diff import diff_responses
from shadow.config.correlate import Capture, CorrelateConfig
from shadow.config.load import attach_config
from shadow.config.replay import LaneRule
from shadow.model import Exchange, Record, Response, json_body_bytes
from shadow.replay.correlate import Correlator
from shadow.replay.routes import Router
from tests.support import free_port, wait_http

CAPTURES = (
    Capture("order_id", method="POST", route="/orders", pointer="/id"),
    Capture("order_etag", route="/*", header="ETag"),
)
CAPTURE_TABLES = """
[[replay.capture]]
name = "order_id"
method = "POST"
path = "/orders"
pointer = "/id"

[[replay.capture]]
name = "order_etag"
path = "/*"
header = "ETag"
"""
MODES = {
    "off": None,
    "rules": CorrelateConfig(captures=CAPTURES),
    "auto": CorrelateConfig(mode="auto"),
}


def etag(number: int, version: int) -> str:
    return '"' + hashlib.sha1(f"{number}:{version}".encode()).hexdigest() + '"'


def order(number: int, total: int, version: int) -> dict[str, Any]:
    items = [{"sku": f"sku-{i}", "qty": i + 1, "price": 9.5} for i in range(5)]
    return {"id": number, "item": "book", "total": total, "version": version, "lines": items}


def answer(status: int, body: Any, tag: str | None = None) -> Response:
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    if tag is not None:
        headers.append(("ETag", tag))
    return Response(status, tuple(headers), b"" if body is None else orjson.dumps(body), 1.0)


def lane_traffic(lane: str, p: int, c: int) -> list[tuple[Record, Response, Response]]:
    """One lane's records as recorded against the primary (id `p`), with both answers."""

    def rec(
        method: str, path: str, body: Any = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> Record:
        if body is None:
            return Record(method, path, headers, lane=lane)
        return Record(method, path, headers, body, json_body_bytes(body), "json", lane=lane)

    path = f"/orders/{p}"
    return [
        (
            rec("POST", "/orders", {"item": "book", "total": 10}),
            answer(201, order(p, 10, 1), etag(p, 1)),
            answer(201, order(c, 10, 1), etag(c, 1)),
        ),
        (
            rec("GET", path),
            answer(200, order(p, 10, 1), etag(p, 1)),
            answer(200, order(c, 10, 1), etag(c, 1)),
        ),
        (
            rec("PATCH", path, {"total": 12}, (("If-Match", etag(p, 1)),)),
            answer(200, order(p, 12, 2), etag(p, 2)),
            answer(200, order(c, 12, 2), etag(c, 2)),
        ),
        (
            rec("GET", path + "?fields=all"),
            answer(200, order(p, 12, 2)),
            answer(200, order(c, 12, 2)),
        ),
        (rec("DELETE", path), answer(204, None), answer(204, None)),
        (
            rec("GET", path),
            answer(404, {"error": "not found"}),
            answer(404, {"error": "not found"}),
        ),
    ]


def traffic(lanes: int) -> list[tuple[Record, Response, Response]]:
    per_lane = [lane_traffic(f"client-{i}", 1001 + i, 1 + i) for i in range(lanes)]
    return [exchange for step in zip(*per_lane, strict=True) for exchange in step]


def cpu_per_exchange(mode: str, exchanges: list[tuple[Record, Response, Response]]) -> float:
    """CPU microseconds per exchange of route + correlation + compare, in `mode`."""
    router = Router(attach_config({"primary": "http://p", "candidate": "http://c"}))
    config = MODES[mode]
    correlator = Correlator(config, LaneRule()) if config is not None else None
    started = time.process_time()
    for seq, (record, primary, candidate) in enumerate(exchanges):
        route = router.route(record)
        if correlator is not None:
            correlator.prepare(record)
        exchange = Exchange(
            seq, record, route.endpoint, route.rules, {"primary": primary, "candidate": candidate}
        )
        if correlator is not None:
            correlator.learn(exchange)
        diff_responses(primary, candidate, exchange.rules)
    return (time.process_time() - started) / len(exchanges) * 1e6


# --- the scenario against real servers -----------------------------------------------------


def scenario_records(lanes: int) -> list[dict[str, Any]]:
    """The lanes interleaved as recorded against the primary (its ids, 1001 on), no answers:
    replayed one at a time (`--concurrency 1`), the fresh primary hands out the same ids."""
    return [record.to_dict() for record, _, _ in traffic(lanes)]


@contextlib.contextmanager
def stateful_pair(same_ids: bool = False) -> Iterator[tuple[str, str]]:
    helper = ROOT / "tests" / "helpers" / "stateful_server.py"
    procs, urls = [], []
    pair = ((1001, []), (1001, [])) if same_ids else ((1001, []), (1, ["--bug-total"]))
    try:
        for first_id, bug in pair:
            port = free_port()
            argv = [sys.executable, str(helper), "--port", str(port), "--first-id", str(first_id)]
            procs.append(subprocess.Popen([*argv, *bug, "--lifetime", "300"]))
            urls.append(f"http://127.0.0.1:{port}")
            wait_http(urls[-1] + "/health")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=5)


def run_cpu_s(mode: str, lanes: int, work: Path) -> float:
    """A whole `shadow run`'s CPU seconds (user + sys) over the lanes, against two servers
    that hand out the same ids: the same answers whether correlation is on or off."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, result = replay(mode, lanes, work, same_ids=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0, result.stderr.decode()[-400:]
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def replay(
    mode: str, lanes: int, work: Path, same_ids: bool = False
) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[bytes]]:
    records = scenario_records(lanes)
    log = work / f"{mode}.jsonl"
    log.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    with stateful_pair(same_ids) as (primary, candidate):
        config = work / f"{mode}.toml"
        config.write_text(
            f'[targets.primary]\nurl = "{primary}"\n[targets.candidate]\nurl = "{candidate}"\n'
            f'[replay]\ncorrelate = "{mode}"\n' + (CAPTURE_TABLES if mode != "auto" else "")
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "shadow",
                "run",
                "-c",
                str(config),
                "--no-calibration",
                "--concurrency",
                "1",
                str(log),
            ],
            capture_output=True,
            check=False,
            cwd=ROOT,
            timeout=300,
        )
    return records, result


def scenario(mode: str, lanes: int, work: Path) -> dict[str, int]:
    records, result = replay(mode, lanes, work)
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    # The update and the read after it, in each lane (records interleave the lanes by step).
    real = {i for i in range(len(records)) if i // lanes in (2, 3)}
    flagged = {e["seq"] for e in events if e["event"] == "mismatch"}
    found = {
        e["seq"]
        for e in events
        if e["event"] == "mismatch"
        if any(d["path"] == "/total" and d["kind"] == "value" for d in e["diffs"])
    }
    errors = sum(1 for e in events if e["event"] == "error")
    return {
        "exchanges": len(records),
        "real": len(real),
        "mismatched": len(flagged),
        "false_positives": len(flagged - real),
        "false_negatives": len(real - found),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenario-lanes", type=int, default=20)
    parser.add_argument("--run-lanes", type=int, default=300)
    parser.add_argument("--run-rounds", type=int, default=3)
    args = parser.parse_args()
    exchanges = traffic(args.lanes)
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            cpu[mode].append(cpu_per_exchange(mode, exchanges))
    print(
        f"CPython {platform.python_version()}, {len(exchanges)} exchanges per round, "
        f"{args.rounds} rounds, medians"
    )
    print("| mode | CPU per exchange | vs off |\n| --- | ---: | ---: |")
    off = statistics.median(cpu["off"])
    for mode in MODES:
        value = statistics.median(cpu[mode])
        print(f"| {mode} | {value:.1f} µs | {value / off:.2f} |")
    with tempfile.TemporaryDirectory() as tmp:
        whole: dict[str, list[float]] = {"off": [], "rules": []}
        for _ in range(args.run_rounds):
            for mode, values in whole.items():
                values.append(run_cpu_s(mode, args.run_lanes, Path(tmp)))
    count = args.run_lanes * 6
    print(
        f"\nA whole `shadow run` ({count} exchanges, --concurrency 1, the same ids on both"
        f" servers), CPU seconds, medians of {args.run_rounds}:"
    )
    print("| correlate | CPU | per exchange | vs off |\n| --- | ---: | ---: | ---: |")
    base = statistics.median(whole["off"])
    for mode, values in whole.items():
        value = statistics.median(values)
        print(f"| {mode} | {value:.2f} s | {value / count * 1e6:.0f} µs | {value / base:.2f} |")
    print()
    print(
        "| correlate | exchanges | really differing | mismatched | false positives | "
        "false negatives | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("off", "rules", "auto"):
            c = scenario(mode, args.scenario_lanes, Path(tmp))
            print(
                f"| {mode} | {c['exchanges']} | {c['real']} | {c['mismatched']} | "
                f"{c['false_positives']} | {c['false_negatives']} | {c['errors']} |"
            )


if __name__ == "__main__":
    main()
