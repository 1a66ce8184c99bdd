"""The floor of shadow's stack: the least work aiohttp + uvloop can do for a shadow replay.

For each record of a native JSONL log, fetch its path from both servers concurrently, read both
bodies and compare the bytes; `--concurrency` workers do this side by side, as shadow's workers
do. No headers, no events, no JSON diff, no accounting: whatever shadow does on top of this is
its own cost, so shadow's pairs/s divided by this one is the share of the stack it keeps.

    python bench/floor.py --primary URL --candidate URL [--concurrency 16] [--json] LOG.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator

import aiohttp
import orjson
import uvloop


async def replay(
    lines: Iterator[bytes], primary: str, candidate: str, concurrency: int
) -> dict[str, float]:
    started = time.perf_counter()
    pairs = equal = failed = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(url: str) -> bytes:
            async with session.get(url, allow_redirects=False) as resp:
                return await resp.read()

        async def worker() -> None:
            nonlocal pairs, equal, failed
            for line in lines:  # one shared iterator: each line goes to exactly one worker
                path = orjson.loads(line)["path"]
                try:
                    a, b = await asyncio.gather(fetch(primary + path), fetch(candidate + path))
                except aiohttp.ClientError:
                    failed += 1
                    continue
                pairs += 1
                equal += a == b

        await asyncio.gather(*(worker() for _ in range(concurrency)))
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
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    # The log is read line by line as the workers go, like shadow reads it.
    with open(args.log, "rb") as lines:
        result = uvloop.run(replay(lines, args.primary, args.candidate, args.concurrency))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE))
    else:
        print(
            f"{result['pairs_per_s']:.0f} pairs/s ({result['pairs']} pairs, "
            f"{result['equal']} equal, {result['failed']} failed, {result['duration_s']}s)"
        )


if __name__ == "__main__":
    main()
