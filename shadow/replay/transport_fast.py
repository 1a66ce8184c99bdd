"""The fast transport: HTTP/1.1 keep-alive on an asyncio protocol, parsed by httptools (llhttp).

shadow writes the request line and headers itself and pools connections per target; parsing
stays in the well-kept library. It is held to the reference (shadow.replay.transport, on
aiohttp) on every point a run can see, and tests/replay/test_transport_fast.py runs both side
by side to keep it so:

- the same bytes out: `Host` first (the given one's value if any), the headers in order,
  `Content-Length` last when there is a body or the method may carry one; control characters
  refused as aiohttp refuses them;
- the same answers: 1xx skipped, no body for HEAD, 204 and 304, chunked and EOF-delimited
  bodies, gzip/deflate/br decoded (deflate with or without its zlib header), known header
  names in aiohttp's spelling and values stripped as its parser strips them;
- the same failures: a connection closed or reset before the answer's head is complete is
  retried once for an idempotent method, as aiohttp retries; a bad head's message is
  aiohttp's own, from its parser over the same bytes; one deadline per request, all held by
  one timer (shadow.replay.deadlines) rather than a timer handle each.

Only plain `http://` targets come here (shadow.replay.transports chooses).
"""

from __future__ import annotations

import asyncio
import errno
import functools
from typing import Any, cast

import httptools
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.model import Failure, Outcome, Response
from shadow.replay.budget import BodyBudget
from shadow.replay.deadlines import Deadlines
from shadow.replay.http1 import (
    DECODED,
    IDEMPOTENT,
    KNOWN_NAMES,
    Decoder,
    Undecodable,
    aiohttp_parse_message,
    connect_message,
    content_length,
    header,
    request_bytes,
)
from shadow.replay.transport import (
    Request,
    Transport,
    elapsed_ms,
    over_budget,
    timed_out,
    too_large,
)

DISCONNECTED = "server closed the connection without answering"


class _Retry(Exception):
    """The connection ended before the answer's head: try once more (idempotent methods)."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure


class _Answer:
    """One answer being read: its head, its body so far, its share of the budget."""

    __slots__ = (
        "budget",
        "chunks",
        "decoder",
        "future",
        "head_only",
        "headers",
        "length",
        "limit",
        "per_chunk",
        "raw",
        "received",
        "status",
        "taken",
    )

    def __init__(
        self, future: asyncio.Future[Any], head_only: bool, budget: BodyBudget, limit: int
    ) -> None:
        self.future = future
        self.head_only = head_only
        self.budget = budget
        self.limit = limit
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.taken = 0
        self.received = 0  # body bytes as they came (before any decoding)
        self.length: int | None = None
        self.per_chunk = True  # the budget taken chunk by chunk (not at once from the length)
        self.decoder: Any = None
        self.raw = bytearray()  # the head's bytes, kept only to name a parse error as aiohttp


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, no pipelining."""

    def __init__(self, pool: list[_Connection], every: set[_Connection]) -> None:
        self.pool = pool  # the idle connections to its target
        self.every = every  # every open connection of the transport
        self.transport: asyncio.Transport | None = None
        self.parser = _parser(self)
        self.answer: _Answer | None = None
        self.head_done = False
        self.complete = False
        self.extra = False  # bytes past the answer: the connection cannot be reused
        self.closed = False
        self.informational = False
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None:  # nothing asked: the connection is not fit for the next request
            self.close()
            return
        # The head's bytes so far, copied only when a HEAD's answer needs them (the parser
        # replaces `answer.raw` once the head is complete, not this array).
        head_done, raw = self.head_done, answer.raw
        if not head_done:
            raw += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Failure("bad_http", "upgrade is not supported"))
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadDone):
                self._head_answered((b"" if head_done else bytes(raw)) + data, data)
            elif not self.complete and self.answer is not None:
                self._fail(self._parse_failure(exc, answer))
        if self.complete and self.answer is not None:
            if self.extra:
                # Bytes past the answer in the same read: aiohttp's parser reads them as the
                # next answer's head and fails this one when they are not one.
                message = aiohttp_parse_message(data, with_body=not answer.head_only)
                if message is not None:
                    self._fail(Failure("bad_http", message))
                    return
            self._finish()

    def _head_answered(self, raw: bytes, data: bytes) -> None:
        """A HEAD's answer ends with its head (httptools cannot be told that no body
        follows): the parser is replaced, and any byte past the head is extra."""
        self.parser = _parser(self)
        end = raw.find(b"\r\n\r\n")
        self.complete = True
        self.extra = end < 0 or len(raw) > end + 4

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self in self.pool:
            self.pool.remove(self)
        self.every.discard(self)
        answer = self.answer
        if answer is None:
            return
        if self.head_done:
            if self._until_eof() and exc is None:
                self.complete = True
                self._finish()
                return
            self._fail(_payload_failure(exc, answer))
            return
        failure = Failure("disconnected", DISCONNECTED) if exc is None else _os_failure(exc)
        self._end(_Retry(failure))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.answer is not None
        text = _NAMES.get(name)
        if text is None:
            text = _name_text(name)
        self.answer.headers.append((text, value.rstrip(b" \t").decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        answer = self.answer
        assert answer is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            answer.headers = []  # an interim answer: the real one follows
            self.informational = True
            return
        self.head_done = True
        # Read now: llhttp no longer knows it once the message is complete.
        self.keep_alive = bool(self.parser.should_keep_alive())
        answer.status = status
        answer.raw = bytearray()
        if answer.head_only:
            raise _HeadDone
        length = content_length(answer.headers)
        encoding = header(answer.headers, "content-encoding")
        limit = answer.limit
        if length is not None and length > limit:
            raise _Stop(too_large(limit, length))
        if encoding is not None and encoding.lower() in DECODED:
            answer.decoder = Decoder(encoding.lower())
        elif length is not None:
            if not answer.budget.take(length):
                raise _Stop(over_budget(answer.budget))
            answer.taken = length
            answer.per_chunk = False
        answer.length = length

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        assert answer is not None
        answer.received += len(body)
        if answer.decoder is not None:
            try:
                body = answer.decoder.decode(body, answer.limit - answer.taken + 1)
            except Undecodable as exc:
                raise _Stop(Failure("bad_body", str(exc))) from None
        if answer.per_chunk:
            if answer.taken + len(body) > answer.limit:
                raise _Stop(too_large(answer.limit))
            if not answer.budget.take(len(body)):
                raise _Stop(over_budget(answer.budget))
            answer.taken += len(body)
        answer.chunks.append(body)

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.complete = True

    # the exchange
    def start(self, answer: _Answer, data: bytes) -> None:
        assert self.transport is not None
        self.answer = answer
        self.head_done = self.complete = False
        self.transport.write(data)

    def _until_eof(self) -> bool:
        answer = self.answer
        assert answer is not None
        return answer.length is None and header(answer.headers, "transfer-encoding") is None

    def _finish(self) -> None:
        answer = self.answer
        assert answer is not None
        body = b"".join(answer.chunks)
        if answer.decoder is not None:
            try:
                body += answer.decoder.finish()
            except ValueError as exc:
                self._fail(Failure("bad_body", str(exc)))
                return
        if not answer.per_chunk and len(body) != answer.taken:
            answer.budget.give(answer.taken - len(body))
        self.answer = None
        reuse = not self.extra and not self.closed and self.keep_alive
        if reuse:
            self.pool.append(self)
        else:
            self.close()
        if not answer.future.done():
            answer.future.set_result(Response(answer.status, tuple(answer.headers), body, 0.0))

    def _fail(self, failure: Failure) -> None:
        self._end(failure)

    def _end(self, result: Failure | _Retry) -> None:
        """The answer cannot be read: give its bytes back, close, and say why."""
        answer = self.answer
        if answer is None:
            return
        self.answer = None
        answer.budget.give(answer.taken)
        answer.taken = 0
        self.close()
        if not answer.future.done():
            answer.future.set_result(result)

    def _parse_failure(self, exc: Exception, answer: _Answer) -> Failure:
        cause = exc.__context__
        if isinstance(cause, _Stop):
            return cause.failure
        if not self.head_done:
            message = aiohttp_parse_message(bytes(answer.raw))
            if message is not None:
                return Failure("bad_http", message)
            return Failure("bad_http", str(exc))
        return Failure("bad_body", f"Response payload is not completed: {exc}")

    def abandon(self, answer: _Answer) -> None:
        """`answer`'s request timed out or was cancelled: if it is still being read, stop."""
        if self.answer is answer:
            self._end(_TIMEOUT)

    def close(self) -> None:
        self.closed = True
        if self in self.pool:
            self.pool.remove(self)
        self.every.discard(self)
        if self.transport is not None:
            self.transport.close()


# Header names as they came -> as aiohttp spells them: a server sends the same few names in
# every answer, so each is spelled once. Bounded: past the limit, a name is spelled each time.
_NAMES: dict[bytes, str] = {}
_MAX_NAMES = 1024


def _name_text(name: bytes) -> str:
    known = KNOWN_NAMES.get(name.lower())
    text = known if known is not None else name.decode("utf-8", "surrogateescape")
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[name] = text
    return text


def _parser(protocol: _Connection) -> Any:
    parser = httptools.HttpResponseParser(protocol)
    parser.set_dangerous_leniencies(  # as aiohttp's response parser
        lenient_headers=True,
        lenient_optional_cr_before_lf=True,
        lenient_spaces_after_chunk_size=True,
    )
    return parser


class _HeadDone(Exception):
    """Raised when a HEAD's answer has its head: no body is read."""


class _Stop(Exception):
    """Raised from a parser callback to stop reading an answer that must not be read on."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure


_TIMEOUT = Failure("timeout", "")  # a marker: `send` writes the timeout with its latency


class FastTransport:
    """httptools over asyncio: one pool of kept-alive connections per (host, port)."""

    name = "httptools"

    def __init__(self, settings: ReplayConfig, fallback: Transport) -> None:
        self._fallback = fallback  # for what this one does not do: `Expect: 100-continue`
        self._timeout_s = settings.timeout_s
        self._max_body_bytes = settings.max_body_bytes
        self._deadlines = Deadlines(settings.timeout_s)
        self._pools: dict[tuple[str, int], list[_Connection]] = {}
        self._origins: dict[tuple[str, str], tuple[tuple[str, int], str]] = {}
        self._all: set[_Connection] = set()

    async def send(self, request: Request, budget: BodyBudget) -> Outcome:
        expect = request.headers.get("Expect")
        if expect is not None and expect.lower() == "100-continue":
            return await self._fallback.send(request, budget)
        key, host = self._origin(request.url)
        try:
            data = request_bytes(request, host)
        except ValueError as exc:
            return Failure("client_error", f"ValueError: {exc}", elapsed_ms(request.origin))
        state: dict[str, Any] = {}
        deadline = self._deadlines.start(lambda: _expire(state))
        try:
            result = await self._attempt(key, request.method, data, budget, state)
            if isinstance(result, _Retry) and request.method in IDEMPOTENT:
                result = await self._attempt(key, request.method, data, budget, state)
        finally:
            self._deadlines.done(deadline)
        latency_ms = elapsed_ms(request.origin)
        if isinstance(result, _Retry):
            result = result.failure
        if result is _TIMEOUT or state.get("expired"):
            if isinstance(result, Response):
                budget.give(len(result.body))
            return timed_out(self._timeout_s, latency_ms)
        if isinstance(result, Response):
            return Response(result.status, result.headers, result.body, latency_ms)
        assert isinstance(result, Failure)
        return Failure(result.kind, result.message, latency_ms)

    def _origin(self, url: URL) -> tuple[tuple[str, int], str]:
        """The pool's key (host, port) and the `Host` value of `url`'s origin: yarl works
        them out anew for each URL (a few µs a request), so they are kept per origin."""
        name = (url.scheme, url.raw_authority)
        origin = self._origins.get(name)
        if origin is None:
            key = (url.raw_host or "", url.port or 80)
            origin = self._origins[name] = (key, url.host_port_subcomponent or "")
        return origin

    async def _attempt(
        self,
        key: tuple[str, int],
        method: str,
        data: bytes,
        budget: BodyBudget,
        state: dict[str, Any],
    ) -> Outcome | _Retry:
        if state.get("expired"):
            return _TIMEOUT
        loop = asyncio.get_running_loop()
        pool = self._pools.setdefault(key, [])
        while pool:
            conn = pool.pop()
            if not conn.closed:
                break
        else:
            connecting = loop.create_task(
                loop.create_connection(functools.partial(_Connection, pool, self._all), *key)
            )
            state["waiter"] = connecting
            try:
                _, conn = await connecting
            except asyncio.CancelledError:
                if state.get("expired") and not _cancelling():
                    return _TIMEOUT
                raise
            except OSError as exc:
                return Failure("refused", connect_message(exc, key))
            if not conn.closed:
                self._all.add(conn)
        future: asyncio.Future[Any] = loop.create_future()
        answer = _Answer(future, method == "HEAD", budget, self._max_body_bytes)
        state["waiter"] = (conn, answer)
        conn.start(answer, data)
        try:
            return await future  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            conn.abandon(answer)
            if future.done() and isinstance(future.result(), Response):
                budget.give(len(future.result().body))  # read, but nobody will hold it
            raise

    async def aclose(self) -> None:
        self._deadlines.close()
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._pools.clear()


def _expire(state: dict[str, Any]) -> None:
    state["expired"] = True
    waiter = state.get("waiter")
    if isinstance(waiter, tuple):
        conn, answer = waiter
        conn.abandon(answer)
    elif waiter is not None:
        waiter.cancel()


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _payload_failure(exc: Exception | None, answer: _Answer) -> Failure:
    """The body ended early: aiohttp's words for it."""
    if exc is not None:
        cause = f"<ClientOSError: {exc}>"
    elif answer.length is not None:
        cause = (
            "<ContentLengthError: 400, message='Not enough data to satisfy content length "
            f"header (received {answer.received} of {answer.length} bytes).'>"
        )
    else:
        cause = "<TransferEncodingError: 400, message='Not enough data to satisfy transfer length header.'>"
    return Failure("bad_body", f"Response payload is not completed: {cause}")


def _os_failure(exc: Exception) -> Failure:
    kind = "reset" if getattr(exc, "errno", None) == errno.ECONNRESET else "io"
    return Failure(kind, str(exc))
