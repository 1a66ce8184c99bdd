"""The cost of the `[hooks]` module per request, in-process: `prepare_request` through the
replayer's `before_send` (a no-op hook and config/hooks_sigv4.py) and `normalize_body`, each
against building the request's headers (`Replayer.request_headers`, the work every request
already pays), as ratios measured in the same rounds.

    .venv/bin/python bench/bench_hooks.py [--rounds 5] [--calls 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from multidict import CIMultiDict

from shadow.config.load import parse
from shadow.model import CompareRules, Exchange, Record, Response
from shadow.replay.pool import Replayer
from shadow.run.hooks import load_hooks

ROOT = Path(__file__).resolve().parent.parent
NOOP = """
def prepare_request(target, request):
    return None


def normalize_body(target, endpoint, body, content_type):
    return body
"""


def per_call_us(work: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    os.environ.setdefault("SIGV4_ACCESS_KEY_ID", "AKIDEXAMPLE")
    os.environ.setdefault("SIGV4_SECRET_ACCESS_KEY", "bench-secret")
    noop = Path("/tmp") / f"bench_hooks_noop_{os.getpid()}.py"
    noop.write_text(NOOP)
    urls = {"primary": "http://127.0.0.1:8002", "candidate": "http://127.0.0.1:3000"}
    targets = {name: {"url": url} for name, url in urls.items()}

    def hooks_of(module: Path):  # type: ignore[no-untyped-def]
        config = parse({"targets": targets, "hooks": {"module": str(module)}}, "bench", ROOT)
        return config, load_hooks(config)

    config, noop_hooks = hooks_of(noop)
    _, sigv4_hooks = hooks_of(ROOT / "config" / "hooks_sigv4.py")
    assert noop_hooks is not None and sigv4_hooks is not None
    body = orjson.dumps({"address": "0x" + "ab" * 20, "scores": list(range(50))})
    record = Record(
        "POST",
        "/internal/score/v2/335?x=1",
        (("Content-Type", "application/json"), ("Authorization", "Bearer old")),
        orjson.loads(body),
        body,
        "json",
    )
    replayer = Replayer(None, config.targets, config.replay, None, None)  # type: ignore[arg-type]
    headers = replayer.request_headers("candidate", record, ())
    noop_send = noop_hooks.sender(urls)
    sigv4_send = sigv4_hooks.sender(urls)
    answer = Response(200, (("Content-Type", "application/json"),), body, 1.0)

    def normalize() -> None:
        outcomes = {"primary": answer, "candidate": answer}
        noop_hooks.normalize(Exchange(0, record, "e", CompareRules(), dict(outcomes)))

    cells: dict[str, list[float]] = {k: [] for k in ("headers", "noop", "sigv4", "normalize")}
    for _ in range(args.rounds):
        cells["headers"].append(
            per_call_us(lambda: replayer.request_headers("candidate", record, ()), args.calls)
        )
        cells["noop"].append(
            per_call_us(
                lambda: noop_send("candidate", record, CIMultiDict(headers), body), args.calls
            )
        )
        cells["sigv4"].append(
            per_call_us(
                lambda: sigv4_send("candidate", record, CIMultiDict(headers), body), args.calls
            )
        )
        cells["normalize"].append(per_call_us(normalize, args.calls))
    noop.unlink()
    base = statistics.median(cells["headers"])
    print(f"{args.rounds} rounds x {args.calls} calls, medians (us per call, ratio to headers)")
    for name, values in cells.items():
        median = statistics.median(values)
        print(f"  {name:10} {median:8.2f} us  {median / base:6.2f}x")


if __name__ == "__main__":
    main()
