"""A small configurable HTTP server for end-to-end tests, run as a real subprocess.

    python tests/helpers/fake_pair.py --port N [--variant primary|candidate] [--die-after K]
                                      [--host ADDRESS]  (default 127.0.0.1)

GET /items/{n}    {"n": n, "name": "item-n", "tags": [...]}; the candidate variant answers
                  n as a string when n % 5 == 0 (a `type` difference)
GET /slow/{ms}    answers after ms milliseconds
POST /lane/{lane}/{i}  409 unless i follows the previous i of that lane (order check)
GET /health       200
Every request counts; with --die-after K the process exits hard on request K (with --once
FILE only if FILE does not exist yet, creating it, so a restarted server lives on); with
--hang-after K every request from the K-th on is accepted and never answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from aiohttp import web


def make_app(variant: str, die_after: int, hang_after: int = 0, once: str = "") -> web.Application:
    lanes: dict[str, int] = {}
    seen = 0

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        nonlocal seen
        seen += 1
        if die_after and seen >= die_after:
            if not once:
                os._exit(17)
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass  # died once already
            else:
                os._exit(17)
        if hang_after and seen >= hang_after:
            await asyncio.Event().wait()
        return await handler(request)

    async def item(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        value: object = str(n) if variant == "candidate" and n % 5 == 0 else n
        return web.json_response({"n": value, "name": f"item-{n}", "tags": ["a", "b"]})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.json_response({"slept": True})

    async def lane(request: web.Request) -> web.Response:
        key, i = request.match_info["lane"], int(request.match_info["i"])
        expected = lanes.get(key, -1) + 1
        lanes[key] = i
        if i != expected:
            return web.json_response({"expected": expected, "got": i}, status=409)
        return web.json_response({"ok": i})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def echo_headers(request: web.Request) -> web.Response:
        return web.json_response({k.lower(): v for k, v in request.headers.items()})

    app = web.Application(middlewares=[count])
    app.router.add_get("/items/{n}", item)
    app.router.add_get("/slow/{ms}", slow)
    app.router.add_post("/lane/{lane}/{i}", lane)
    app.router.add_get("/health", health)
    app.router.add_get("/headers", echo_headers)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", default="primary")
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--once", default="")
    parser.add_argument("--tag", default="", help="ignored: lets tests find their processes")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = parser.parse_args()
    print(f"fake {args.variant} on {args.port} pid {os.getpid()}", file=sys.stderr, flush=True)
    web.run_app(
        make_app(args.variant, args.die_after, args.hang_after, args.once),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
