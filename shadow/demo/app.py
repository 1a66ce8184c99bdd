"""The bundled demo scoring API: one aiohttp app served as the legacy service or as its rewrite.

Both flavours share every handler; a `Dialect` holds the few ways the rewrite answers differently.
Two of those are the real bugs the Passport port shipped with (check-bans `end_time` with
microseconds, GTC stake `last_updated_in_block` as a string) and are what `shadow demo` must
find. The third, where row ids start, is noise that a comparison has to ignore.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from shadow.demo import handlers
from shadow.demo.handlers import ApiError, json_response
from shadow.demo.store import DemoState, chrono_time, django_time

SECRET_KEY = "SECRET_KEY"
INTERNAL_KEY = "CGRANTS_API_TOKEN"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CeramicHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


class MissingSettingError(Exception):
    """An environment variable the server cannot run without is unset or empty."""


@dataclass(frozen=True, slots=True)
class Settings:
    secret_key: str
    internal_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        missing = [name for name in (SECRET_KEY, INTERNAL_KEY) if not env.get(name)]
        if missing:
            names = " and ".join(missing)
            raise MissingSettingError(f"{names} not set (see config/demo.env)")
        return cls(secret_key=env[SECRET_KEY], internal_key=env[INTERNAL_KEY])


DIALECTS: dict[str, handlers.Dialect] = {
    # Django REST framework rows and Django's JSON encoder, as the legacy service answers.
    "legacy": handlers.Dialect(first_row_id=1001, ban_end_time=django_time, block_number=int),
    # The rewrite's serde structs: a fresh database (ids from 1) and the two bugs.
    "rewrite": handlers.Dialect(first_row_id=1, ban_end_time=chrono_time, block_number=str),
}


def make_app(flavour: str, env: Mapping[str, str] | None = None) -> web.Application:
    """The demo server of `flavour` ("legacy" or "rewrite") with freshly seeded state.

    Raises MissingSettingError when `env` (default: the process environment) lacks a key.
    """
    if flavour not in DIALECTS:
        raise ValueError(f"unknown flavour {flavour!r}; expected one of {sorted(DIALECTS)}")
    settings = Settings.from_env(os.environ if env is None else env)
    dialect = DIALECTS[flavour]
    app = web.Application(middlewares=[json_errors])
    app[handlers.STATE] = DemoState(first_row_id=dialect.first_row_id)
    app[handlers.DIALECT] = dialect
    _add_routes(app, settings)
    return app


def _add_routes(app: web.Application, settings: Settings) -> None:
    def internal(handler: Handler) -> Handler:
        return _require_internal_key(handler, settings.internal_key)

    def ceramic(handler: CeramicHandler) -> Handler:
        return _require_access_token(handler, settings.secret_key)

    address = "{address}"
    scorer = r"{scorer_id:\d+}"
    router = app.router
    # Open on purpose: the supervisor polls it as the health check.
    router.add_get("/internal/embed/weights", handlers.get_weights)
    router.add_get(f"/internal/score/v2/{scorer}/{address}", internal(handlers.get_score_v2))
    router.add_post("/internal/check-bans", internal(handlers.check_bans))
    router.add_post("/internal/check-revocations", internal(handlers.check_revocations))
    router.add_get(f"/internal/stake/gtc/{address}", internal(handlers.get_gtc_stake))
    router.add_get(f"/internal/allow-list/{{list}}/{address}", internal(handlers.get_allow_list))
    router.add_get(
        "/internal/cgrants/contributor_statistics", internal(handlers.get_contributor_statistics)
    )
    router.add_post(f"/internal/embed/stamps/{address}", internal(handlers.add_embed_stamps))
    router.add_get(f"/internal/embed/score/{scorer}/{address}", internal(handlers.get_embed_score))
    router.add_post("/ceramic-cache/stamps/bulk", ceramic(handlers.post_stamps))
    router.add_patch("/ceramic-cache/stamps/bulk", ceramic(handlers.patch_stamps))
    router.add_delete("/ceramic-cache/stamps/bulk", ceramic(handlers.delete_stamps))
    router.add_get(f"/ceramic-cache/score/{address}", ceramic(handlers.get_ceramic_score))


def _require_internal_key(handler: Handler, internal_key: str) -> Handler:
    """The internal API's auth: the raw header value is the shared key, no scheme."""
    expected = internal_key.encode()

    async def checked(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("AUTHORIZATION", "").encode()
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "Unauthorized")
        return await handler(request)

    return checked


def _require_access_token(handler: CeramicHandler, secret_key: str) -> Handler:
    """The ceramic cache's auth: a Bearer access JWT whose `did` names the acting address."""

    async def checked(request: web.Request) -> web.StreamResponse:
        address = _token_address(request.headers.get("Authorization", ""), secret_key)
        return await handler(request, address)

    return checked


def _token_address(header: str, secret_key: str) -> str:
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        raise ApiError(401, "Unauthorized")
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "jti", "did", "token_type"]},
        )
    except jwt.PyJWTError as exc:
        raise ApiError(401, "Invalid token.") from exc
    if claims["token_type"] != "access" or not isinstance(claims["did"], str):
        raise ApiError(401, "Invalid token.")
    address = handlers.did_address(claims["did"])
    if address is None:
        raise ApiError(401, "Invalid token.")
    return address


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as a JSON `{"detail": ...}`, the way the Django service answers them."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response({"detail": exc.detail}, status=exc.status)
    except web.HTTPNotFound:
        return json_response({"detail": "Not found."}, status=404)
    except web.HTTPMethodNotAllowed:
        return json_response({"detail": f'Method "{request.method}" not allowed.'}, status=405)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve one flavour until SIGINT or SIGTERM; 2 if the environment lacks a setting."""
    args = _parse_args(argv)
    try:
        app = make_app(args.flavour)
    except MissingSettingError as exc:
        print(f"demo {args.flavour}: {exc}", file=sys.stderr)
        return 2
    banner = f"demo {args.flavour} listening on http://{args.host}:{args.port}"

    # aiohttp calls `print` once the socket is bound, which is the moment worth announcing;
    # its own banner would go to stdout, so it is replaced by one line on stderr.
    def announce(*_: Any) -> None:
        print(banner, file=sys.stderr, flush=True)

    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=announce,
        handle_signals=True,
        shutdown_timeout=2.0,
        loop=_new_event_loop(),
    )
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shadow.demo.app", description="Run a bundled demo scoring server."
    )
    parser.add_argument("--flavour", choices=sorted(DIALECTS), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    return parser.parse_args(argv)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


if __name__ == "__main__":
    sys.exit(main())
