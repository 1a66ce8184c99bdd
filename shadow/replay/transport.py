"""The transport: send one prepared request to one target, get its answer or why there is none.

The Replayer (shadow.replay.pool) decides what goes out (the headers, the body, when the clock
starts); a transport only puts it on the wire and reads the answer back, its body bytes taken
from the run's body budget (shadow.replay.budget). `AiohttpTransport`, on aiohttp's
`ClientSession`, is the reference: it handles TLS, proxies and every corner of HTTP, and the
fast transport (shadow.replay.transport_fast) is held to give the same answers and the same
failures as it does. Either way, a `Response` returned holds exactly `len(body)` bytes of the
budget, given back by the Replayer once its exchange is finished.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.model import Failure, Outcome, Response
from shadow.replay.budget import BodyBudget


@dataclass(frozen=True, slots=True)
class Request:
    """One request to one target, as it goes on the wire.

    `headers` are in the order they are written; the transport adds `Host` (first, unless one
    is given) and `Content-Length` (last, when the body or the method calls for it), as aiohttp
    does. `origin` is when the latency starts counting (time.perf_counter()).
    """

    method: str
    target: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes | None
    origin: float


class Transport(Protocol):
    name: str

    async def send(self, request: Request, budget: BodyBudget) -> Outcome:
        """The answer (its body taken from `budget`), or a Failure; never raises for the
        network's or the server's faults."""
        ...

    async def aclose(self) -> None:
        """Close every connection it holds."""
        ...


def elapsed_ms(origin: float) -> float:
    return (time.perf_counter() - origin) * 1000


def too_large(limit: int, length: int | None = None) -> Failure:
    if length is not None:
        return Failure("too_large", f"body of {length} bytes over {limit}")
    return Failure("too_large", f"body over {limit} bytes")


def over_budget(budget: BodyBudget) -> Failure:
    return Failure(
        "over_budget",
        f"not read: the bodies in memory reached max_bodies_bytes ({budget.total_bytes} bytes)",
    )


def timed_out(timeout_s: float, latency_ms: float) -> Failure:
    return Failure("timeout", f"no complete answer within {timeout_s:g}s", latency_ms)


class AiohttpTransport:
    """The reference transport: aiohttp's ClientSession (the run's, shadow.run.lifecycle)."""

    name = "aiohttp"

    def __init__(self, session: aiohttp.ClientSession, settings: ReplayConfig) -> None:
        self._session = session
        self._timeout_s = settings.timeout_s
        self._max_body_bytes = settings.max_body_bytes
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)

    async def send(self, request: Request, budget: BodyBudget) -> Outcome:
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                body = await self._read_body(resp, budget)
                if isinstance(body, Failure):
                    return body
                latency_ms = elapsed_ms(request.origin)
                return Response(resp.status, tuple(resp.headers.items()), body, latency_ms)
        except Exception as exc:  # noqa: BLE001 - every transport failure becomes an event
            return failure_of(exc, self._timeout_s, elapsed_ms(request.origin))

    async def aclose(self) -> None:
        return  # the session is the run's: closed by the lifecycle

    async def _read_body(self, resp: aiohttp.ClientResponse, budget: BodyBudget) -> bytes | Failure:
        """The body, its bytes taken from the budget (given back here if it is not kept)."""
        limit = self._max_body_bytes
        if resp.content_length is not None and resp.content_length > limit:
            return too_large(limit, resp.content_length)
        taken = 0
        try:
            if resp.content_length is not None and "Content-Encoding" not in resp.headers:
                # The parser stops at Content-Length, so the body cannot grow past it: one
                # read (the chunked loop below costs a few percent of a replay's CPU).
                if not budget.take(resp.content_length):
                    return _over_budget(resp, budget)
                taken = resp.content_length
                body = await resp.read()
                budget.give(taken - len(body))
                return body
            chunks: list[bytes] = []
            async for chunk in resp.content.iter_chunked(1 << 16):
                if taken + len(chunk) > limit:
                    budget.give(taken)
                    taken = 0
                    return too_large(limit)
                if not budget.take(len(chunk)):
                    budget.give(taken)
                    taken = 0
                    return _over_budget(resp, budget)
                taken += len(chunk)
                chunks.append(chunk)
            return b"".join(chunks)
        except BaseException:
            budget.give(taken)
            raise


def _over_budget(resp: aiohttp.ClientResponse, budget: BodyBudget) -> Failure:
    resp.close()  # the unread rest must not be read as the next answer on this connection
    return over_budget(budget)


def failure_of(exc: BaseException, timeout_s: float, latency_ms: float) -> Failure:
    """A short, stable kind for a transport failure, and its message."""
    if isinstance(exc, TimeoutError):
        return timed_out(timeout_s, latency_ms)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure("refused", str(exc.os_error or exc), latency_ms)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure("disconnected", "server closed the connection without answering", latency_ms)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure("bad_body", str(exc), latency_ms)
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure("bad_http", exc.message or str(exc), latency_ms)
    if isinstance(exc, aiohttp.ClientOSError):
        kind = "reset" if exc.errno == errno.ECONNRESET else "io"
        return Failure(kind, str(exc), latency_ms)
    if isinstance(exc, aiohttp.ClientError | OSError | ValueError):
        return Failure("client_error", f"{type(exc).__name__}: {exc}", latency_ms)
    raise exc
