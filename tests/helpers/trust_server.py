"""A legacy service that tests a verdict's trust, and its candidate, run as real subprocesses.

    python tests/helpers/trust_server.py --port N --variant legacy|candidate [--tag T]

GET /score/{n}     401 {"detail": ...} unless `Authorization: Bearer good` (then 200)
GET /clock/{n}     {"n", "generated_at" (a microsecond clock), "request_id" (a UUID), "name",
                   "price"}: the clock and the UUID differ on every call
GET /blob/{n}      32 random bytes (application/octet-stream): no two answers alike
GET /page/{n}      an HTML page carrying a random nonce
POST /messages/{n} 200 {"message": "created n", "id": n} the first time n is posted, then 400
                   {"message": "message n already exists"} (a write repeated answers an error)
GET /health        200

The candidate answers like the legacy (its own clock, ids and bytes) except where `injected`
says; the tests import `injected` to know, for every record, which differences are real.
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web


def injected(kind: str, n: int) -> set[tuple[str, str]]:
    """The real differences the candidate carries for `/{kind}/{n}`: {(path, diff kind)}."""
    out: set[tuple[str, str]] = set()
    if kind == "clock":
        if n % 7 == 3:
            out.add(("/name", "value"))
        if n % 11 == 5:
            out.add(("/price", "type"))
        if n % 13 == 8:
            out.add(("/request_id", "missing"))
    elif kind in ("blob", "page"):
        if n % 6 == 2:
            out.add(("status", "status"))
    elif kind == "messages" and n % 4 == 1:
        out.add(("/message", "value"))
    return out


def clock(n: int, candidate: bool) -> dict[str, Any]:
    changes = injected("clock", n) if candidate else set()
    body: dict[str, Any] = {
        "n": n,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "request_id": str(uuid.uuid4()),
        "name": f"clock-{n}" + ("!" if ("/name", "value") in changes else ""),
        "price": str(n * 2.5) if ("/price", "type") in changes else n * 2.5,
    }
    if ("/request_id", "missing") in changes:
        del body["request_id"]
    return body


def make_app(variant: str) -> web.Application:
    candidate = variant == "candidate"
    posted: set[int] = set()

    def status_of(kind: str, n: int) -> int:
        return 500 if candidate and ("status", "status") in injected(kind, n) else 200

    async def score(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer good":
            return web.json_response({"detail": "Invalid token"}, status=401)
        return web.json_response({"score": int(request.match_info["n"])})

    async def clock_handler(request: web.Request) -> web.Response:
        return web.json_response(clock(int(request.match_info["n"]), candidate))

    async def blob(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(body=os.urandom(32), status=status_of("blob", n))

    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        html = f'<html><head><meta name="csrf" content="{secrets.token_hex(8)}"></head></html>'
        return web.Response(text=html, content_type="text/html", status=status_of("page", n))

    async def messages(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n in posted:
            return web.json_response({"message": f"message {n} already exists"}, status=400)
        posted.add(n)
        changed = candidate and ("/message", "value") in injected("messages", n)
        text = f"created {n}" + (" (v2)" if changed else "")
        return web.json_response({"message": text, "id": n})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/score/{n}", score)
    app.router.add_get("/clock/{n}", clock_handler)
    app.router.add_get("/blob/{n}", blob)
    app.router.add_get("/page/{n}", page)
    app.router.add_post("/messages/{n}", messages)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    from pair_cli import serve_pair  # run as a script: this folder is on the path

    serve_pair(make_app)


if __name__ == "__main__":
    main()
