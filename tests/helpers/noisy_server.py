"""A fake legacy service that is not deterministic, and its candidate, run as real subprocesses.

    python tests/helpers/noisy_server.py --port N --variant legacy|candidate [--tag T]

GET /items/{n}  {"id", "request_id" (a random UUID), "generated_at" (a clock, microseconds),
                 "name", "price", "tags"}: request_id and generated_at differ on every call.
GET /users/{n}  {"id", "session" (UUID), "seen_at" (clock), "email", "profile": {"tz", "rank"}}
GET /odd/{n}    noise no rule may hide: "nonce" alternates between an int and a string, and
                "meta" (an object) is there on every other call (counted per process)
GET /health     200

The candidate answers like the legacy (its own UUIDs and clock) except where `injected` says;
the tests import `injected` to know, for every record, which differences are real.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web


def injected(kind: str, n: int) -> set[tuple[str, str]]:
    """The real differences the candidate carries for `/{kind}/{n}`: {(path, diff kind)}."""
    out: set[tuple[str, str]] = set()
    if kind == "items":
        if n % 10 == 3:
            out.add(("/name", "value"))
        if n % 10 == 7:
            out.add(("/price", "type"))
        if n % 25 == 11:
            out.add(("/tags", "missing"))
        if n % 40 == 19:
            out.add(("status", "status"))
        if n % 30 == 13:
            out.add(("/generated_at", "type"))  # a noisy field, changed in kind
        if n % 50 == 23:
            out.add(("/request_id", "missing"))  # a noisy field, gone
    elif kind == "users":
        if n % 9 == 4:
            out.add(("/email", "value"))
        if n % 16 == 5:
            out.add(("/profile/rank", "value"))
    return out


class Clock:
    """Now in microseconds, strictly increasing: no two answers share a time."""

    def __init__(self) -> None:
        self.last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> str:
        moment = max(datetime.now(UTC), self.last + timedelta(microseconds=1))
        self.last = moment
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item(n: int, clock: Clock, candidate: bool) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {
        "id": n,
        "request_id": str(uuid.uuid4()),
        "generated_at": clock.now(),
        "name": f"item-{n}",
        "price": n * 1.5,
        "tags": ["a", f"t{n % 3}"],
    }
    changes = injected("items", n) if candidate else set()
    if ("/name", "value") in changes:
        body["name"] += "!"
    if ("/price", "type") in changes:
        body["price"] = str(body["price"])
    if ("/tags", "missing") in changes:
        del body["tags"]
    if ("/generated_at", "type") in changes:
        body["generated_at"] = 1_795_791_600
    if ("/request_id", "missing") in changes:
        del body["request_id"]
    return (500 if ("status", "status") in changes else 200), body


def user(n: int, clock: Clock, candidate: bool) -> dict[str, Any]:
    changes = injected("users", n) if candidate else set()
    email = f"user{n}@example.com"
    rank = n % 7 + (1 if ("/profile/rank", "value") in changes else 0)
    return {
        "id": n,
        "session": uuid.uuid4().hex,
        "seen_at": clock.now(),
        "email": email.upper() if ("/email", "value") in changes else email,
        "profile": {"tz": "UTC", "rank": rank},
    }


def make_app(variant: str) -> web.Application:
    clock = Clock()
    calls = itertools.count()
    candidate = variant == "candidate"

    async def items(request: web.Request) -> web.Response:
        status, body = item(int(request.match_info["n"]), clock, candidate)
        return web.json_response(body, status=status)

    async def users(request: web.Request) -> web.Response:
        return web.json_response(user(int(request.match_info["n"]), clock, candidate))

    async def odd(request: web.Request) -> web.Response:
        count = next(calls)
        body: dict[str, Any] = {"n": int(request.match_info["n"])}
        body["nonce"] = count if count % 2 == 0 else str(count)
        if count % 2 == 0:
            body["meta"] = {"shard": 1}
        return web.json_response(body)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/items/{n}", items)
    app.router.add_get("/users/{n}", users)
    app.router.add_get("/odd/{n}", odd)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    from pair_cli import serve_pair  # run as a script: this folder is on the path

    serve_pair(make_app)


if __name__ == "__main__":
    main()
