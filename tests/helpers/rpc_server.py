"""A fake RPC service on one route, `POST /`, and its candidate, run as real subprocesses.

    python tests/helpers/rpc_server.py --port N --variant legacy|candidate [--tag T]

The operation is named by a header (`X-Amz-Target: Store.<Op>`, AWS style) or, without one, by
the JSON-RPC body member `method`. Every request body carries `"n"`.

Store.ListTags   {"items": tags, "stamp": a clock}: the candidate lists the tags in another
                 order (free: the order means nothing) and the legacy's clock moves
Store.GetQueue   {"items": queue, "stamp": fixed per n}: the order is the queue's, so a
                 reordered queue is a real difference, as is a changed stamp
Store.PutItem    {"id", "version"}: a write; version counts this process's PutItem calls, so a
                 write sent twice to the legacy (a calibration repeat) shows as a difference
stats.get        (JSON-RPC) {"result": {"count": n, "stamp": a clock}}
GET /health      200

The tests import `injected` to know, for every record, which differences are real.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web


def injected(op: str, n: int) -> set[tuple[str, str]]:
    """The real differences the candidate carries for operation `op`, record `n`."""
    out: set[tuple[str, str]] = set()
    if op == "ListTags" and n % 7 == 3:
        out.add(("/items/2", "missing"))  # a tag lost; the others are merely reordered
    if op == "GetQueue" and n % 5 == 2:
        out |= {("/items/0", "value"), ("/items/2", "value")}  # the queue reversed
    if op == "GetQueue" and n % 6 == 1:
        out.add(("/stamp", "value"))
    if op == "PutItem" and n % 8 == 5:
        out.add(("/id", "value"))
    if op == "stats.get" and n % 9 == 4:
        out.add(("/result/count", "value"))
    return out


class Clock:
    """Now in microseconds, strictly increasing: no two answers share a time."""

    def __init__(self) -> None:
        self.last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> str:
        moment = max(datetime.now(UTC), self.last + timedelta(microseconds=1))
        self.last = moment
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def answer(op: str, n: int, clock: Clock, writes: itertools.count[int], candidate: bool) -> Any:
    changes = injected(op, n) if candidate else set()
    if op == "ListTags":
        tags = [f"t{n}-{k}" for k in range(3)]
        if candidate:
            tags.reverse()
            if changes:
                tags.remove(f"t{n}-2")
        return {"items": tags, "stamp": clock.now()}
    if op == "GetQueue":
        queue = [f"job{n}-{k}" for k in range(3)]
        if ("/items/0", "value") in changes:
            queue.reverse()
        stamp = f"2026-01-01T00:00:{n % 60:02d}Z"
        return {"items": queue, "stamp": stamp + ("x" if ("/stamp", "value") in changes else "")}
    if op == "PutItem":
        return {"id": n + (1 if changes else 0), "version": next(writes)}
    if op == "stats.get":
        return {"result": {"count": n + (1 if changes else 0), "stamp": clock.now()}}
    return None


def make_app(variant: str) -> web.Application:
    clock = Clock()
    writes = itertools.count(1)
    candidate = variant == "candidate"

    async def rpc(request: web.Request) -> web.Response:
        body = await request.json()
        target = request.headers.get("X-Amz-Target", "")
        op = target.removeprefix("Store.") if target else str(body.get("method"))
        found = answer(op, int(body["n"]), clock, writes, candidate)
        if found is None:
            return web.json_response({"error": f"no operation {op!r}"}, status=400)
        return web.json_response(found)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/", rpc)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    from pair_cli import serve_pair  # run as a script: this folder is on the path

    serve_pair(make_app)


if __name__ == "__main__":
    main()
