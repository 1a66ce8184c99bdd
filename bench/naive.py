"""The comparator a Python user writes by hand: requests, a loop, DeepDiff on the two bodies.

For each record of a native JSONL log: GET its path from the primary, then from the
candidate (one `requests.Session` each, kept alive), parse both JSON bodies and diff them
with DeepDiff; a pair with any difference counts as differing. One request at a time, as
such a script is written. It stops at the end of the log or after `--max-seconds` (the
slow cases would take minutes otherwise); pairs/s is over the pairs it finished.

    python bench/naive.py --primary URL --candidate URL [--max-seconds 10] [--json] LOG.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import requests
from deepdiff import DeepDiff


def replay(log: str, primary: str, candidate: str, max_seconds: float) -> dict[str, float]:
    started = time.perf_counter()
    pairs = equal = failed = 0
    with requests.Session() as left, requests.Session() as right, open(log) as lines:
        for line in lines:
            path = json.loads(line)["path"]
            try:
                a = left.get(primary + path, allow_redirects=False)
                b = right.get(candidate + path, allow_redirects=False)
            except requests.RequestException:
                failed += 1
                continue
            pairs += 1
            if a.status_code == b.status_code and not DeepDiff(a.json(), b.json()):
                equal += 1
            if time.perf_counter() - started > max_seconds:
                break
    duration_s = time.perf_counter() - started
    return {
        "pairs": pairs,
        "equal": equal,
        "failed": failed,
        "duration_s": round(duration_s, 3),
        "pairs_per_s": round(pairs / duration_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--primary", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = replay(args.log, args.primary, args.candidate, args.max_seconds)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['pairs_per_s']:.0f} pairs/s ({result['pairs']} pairs, "
            f"{result['equal']} equal, {result['failed']} failed, {result['duration_s']}s)"
        )


if __name__ == "__main__":
    main()
