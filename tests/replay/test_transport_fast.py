"""Both transports against the same misbehaving servers on 127.0.0.1: the same answers, the
same failures, the same number of requests received (aiohttp's one retry included)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import brotli
import pytest
from multidict import CIMultiDict
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.model import Failure, Outcome, Response
from shadow.replay.budget import BodyBudget
from shadow.replay.deadlines import Deadlines
from shadow.replay.transport import AiohttpTransport, Request, Transport
from shadow.replay.transport_fast import FastTransport
from shadow.run.lifecycle import client_session

GUARD_S = 10.0
SETTINGS = ReplayConfig(timeout_s=0.5, max_body_bytes=1000, max_bodies_bytes=1000)
PAYLOAD = b'{"items": [1, 2, 3], "name": "same"}' * 3


def answer(status: str, headers: list[str], body: bytes = b"") -> bytes:
    return "\r\n".join((f"HTTP/1.1 {status}", *headers, "", "")).encode() + body


def sized(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    return answer(status, [*headers, f"Content-Length: {len(body)}"], body)


def chunked(*parts: bytes) -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return answer("200 OK", ["Transfer-Encoding: chunked", "Content-Type: text/plain"], chunks)


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# path -> the bytes answered (the connection kept open), or a behaviour named by a string.
ANSWERS: dict[str, bytes | str] = {
    "/ok": sized(PAYLOAD, "Content-Type: application/json", "x-custom: padded  "),
    "/headers": sized(b"h", "content-type: text/plain", "SET-COOKIE: a=1", "Set-Cookie: b=2"),
    "/chunked": chunked(b'{"chunked": ', b"[1, 2, 3]", b"}"),
    "/eof": "eof",  # no length: the body ends with the connection
    "/continue": answer("100 Continue", []) + sized(b"after 100"),
    "/early-hints": answer("103 Early Hints", ["Link: </a.css>"]) + sized(b"hinted"),
    "/204": answer("204 No Content", ["Content-Length: 7"]),
    "/304": answer("304 Not Modified", ["Content-Length: 7", "ETag: x"]),
    "/reset": "reset",
    "/close": "close",  # closed after reading the request, nothing answered
    "/partial-head": "partial-head",
    "/malformed": b"THIS IS NOT HTTP\r\n\r\n",
    "/bad-header": b"HTTP/1.1 200 OK\r\nBad Header\x01: x\r\nContent-Length: 0\r\n\r\n",
    "/short-length": "short-length",
    "/close-after-headers": "close-after-headers",
    "/long-length": answer("200 OK", ["Content-Length: 5"], b"12345678901"),
    "/gzip": sized(gzip.compress(PAYLOAD), "Content-Encoding: gzip"),
    "/deflate": sized(zlib.compress(PAYLOAD), "Content-Encoding: deflate"),
    "/deflate-raw": sized(deflate_raw(PAYLOAD), "Content-Encoding: deflate"),
    "/br": sized(brotli.compress(PAYLOAD), "Content-Encoding: br"),
    "/gzip-chunked": answer(
        "200 OK",
        ["Transfer-Encoding: chunked", "Content-Encoding: GZIP"],
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(gzip.compress(PAYLOAD)), gzip.compress(PAYLOAD)),
    ),
    "/bad-gzip": sized(b"not gzip at all", "Content-Encoding: gzip"),
    "/identity": sized(PAYLOAD, "Content-Encoding: identity"),
    "/big": sized(b"x" * 1001),
    "/big-chunked": answer(
        "200 OK",
        ["Transfer-Encoding: chunked"],
        (b"258\r\n" + b"y" * 600 + b"\r\n") * 2 + b"0\r\n\r\n",
    ),
    "/gzip-bomb": sized(gzip.compress(b"z" * 100_000), "Content-Encoding: gzip"),
    "/connection-close": sized(b"bye", "Connection: close"),
    "/http10": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/hang": "hang",
    "/idle-close": "idle-close",  # answered, then the idle connection is closed
}


class Server:
    """One raw HTTP/1.1 server; `seen` counts requests per path."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.port = 0
        self.closing = asyncio.Event()  # set at the end: hanging answers end then

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target = head.split(b" ", 2)[:2]
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        path = target.decode()
        self.seen[path] += 1
        what = ANSWERS.get(path, sized(b"echo " + method + b" " + target))
        if isinstance(what, bytes):
            writer.write(what)
            await writer.drain()
            return True
        return await self.behave(what, writer)

    async def behave(self, what: str, writer: asyncio.StreamWriter) -> bool:
        if what == "hang":
            await self.closing.wait()
            return False
        if what == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        writes = {
            "eof": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
            "close": b"",
            "partial-head": b"HTTP/1.1 200 OK\r\nContent-Le",
            "short-length": answer("200 OK", ["Content-Length: 100"], b"0123456789"),
            "close-after-headers": answer("200 OK", ["Content-Length: 100"]),
            "idle-close": sized(b"answered"),
        }
        writer.write(writes[what])
        await writer.drain()
        return False


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fault = Server()
    listener = await asyncio.start_server(fault.serve, "127.0.0.1", 0)
    fault.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield fault
        fault.closing.set()


def request(
    port: int, path: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> Request:
    url = URL(f"http://127.0.0.1:{port}{path}", encoded=True)
    return Request(method, "primary", url, CIMultiDict(headers), body, time.perf_counter())


def comparable(outcome: Outcome) -> tuple[object, ...]:
    """An outcome without its latency (which no two runs share)."""
    if isinstance(outcome, Response):
        return ("response", outcome.status, outcome.headers, outcome.body)
    assert isinstance(outcome, Failure)
    return ("failure", outcome.kind, outcome.message)


async def both(
    server: Server, send: Callable[[Transport, BodyBudget], Awaitable[list[Outcome]]]
) -> tuple[list[Outcome], list[Outcome], Counter[str], Counter[str]]:
    """`send` through the reference and the fast transport; the outcomes and what the
    server received for each."""
    results: list[list[Outcome]] = []
    seen: list[Counter[str]] = []
    async with client_session() as session:
        reference = AiohttpTransport(session, SETTINGS)
        for transport in (reference, FastTransport(SETTINGS, fallback=reference)):
            server.seen.clear()
            budget = BodyBudget(SETTINGS.max_bodies_bytes)
            outcomes = await asyncio.wait_for(send(transport, budget), GUARD_S)
            for outcome in outcomes:
                if isinstance(outcome, Response):
                    budget.give(len(outcome.body))
            assert budget.held_bytes == 0, transport.name  # every failure gave its bytes back
            await transport.aclose()
            results.append(outcomes)
            seen.append(Counter(server.seen))
    return results[0], results[1], seen[0], seen[1]


CASES = [p for p in ANSWERS if p not in ("/idle-close",)]


@pytest.mark.parametrize("path", CASES)
async def test_both_transports_give_the_same_outcome(server: Server, path: str) -> None:
    async def send(transport: Transport, budget: BodyBudget) -> list[Outcome]:
        first = await transport.send(request(server.port, path), budget)
        after = await transport.send(request(server.port, "/after"), budget)  # same pool
        return [first, after]

    reference, fast, seen_reference, seen_fast = await both(server, send)
    assert [comparable(o) for o in fast] == [comparable(o) for o in reference]
    assert seen_fast == seen_reference


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("HEAD", "/ok", None),
        ("HEAD", "/chunked", None),
        ("POST", "/close", b'{"a": 1}'),  # not idempotent: not retried
        ("PUT", "/close", b"x"),
        ("POST", "/reset", None),
        ("DELETE", "/ok", None),
        ("OPTIONS", "/ok", None),
    ],
)
async def test_methods_give_the_same_outcome(
    server: Server, method: str, path: str, body: bytes | None
) -> None:
    async def send(transport: Transport, budget: BodyBudget) -> list[Outcome]:
        first = await transport.send(request(server.port, path, method, body), budget)
        after = await transport.send(request(server.port, "/after"), budget)
        return [first, after]

    reference, fast, seen_reference, seen_fast = await both(server, send)
    assert [comparable(o) for o in fast] == [comparable(o) for o in reference]
    assert seen_fast == seen_reference


async def test_an_idle_connection_the_server_closed_is_not_an_error(server: Server) -> None:
    async def send(transport: Transport, budget: BodyBudget) -> list[Outcome]:
        return [await transport.send(request(server.port, "/idle-close"), budget) for _ in range(5)]

    reference, fast, _, _ = await both(server, send)
    assert [comparable(o) for o in fast] == [comparable(o) for o in reference]
    assert all(isinstance(o, Response) and o.body == b"answered" for o in fast)


async def test_a_refused_connection_is_the_same_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused

        async def send(transport: Transport, budget: BodyBudget) -> list[Outcome]:
            return [await transport.send(request(port, "/ok"), budget)]

        reference, fast, _, _ = await both(Server(), send)
    assert [comparable(o) for o in fast] == [comparable(o) for o in reference]
    assert isinstance(fast[0], Failure) and fast[0].kind == "refused"


async def test_a_header_with_a_newline_is_refused_the_same_way(server: Server) -> None:
    async def send(transport: Transport, budget: BodyBudget) -> list[Outcome]:
        bad = request(server.port, "/ok", **{"X-Bad": "a\r\nInjected: 1"})
        return [await transport.send(bad, budget)]

    reference, fast, seen_reference, seen_fast = await both(server, send)
    assert [comparable(o) for o in fast] == [comparable(o) for o in reference]
    assert seen_fast == seen_reference == Counter()


async def test_many_requests_at_once_share_the_pool(server: Server) -> None:
    async def send(transport: Transport, budget: BodyBudget) -> list[Outcome]:
        paths = ["/ok", "/chunked", "/gzip", "/hang", "/204"] * 8
        return list(
            await asyncio.gather(*(transport.send(request(server.port, p), budget) for p in paths))
        )

    reference, fast, seen_reference, seen_fast = await both(server, send)
    assert [comparable(o) for o in fast] == [comparable(o) for o in reference]
    assert seen_fast == seen_reference


async def test_one_timer_holds_every_deadline() -> None:
    """Deadlines expire in order, each once, and a finished one never fires."""
    deadlines = Deadlines(0.05)
    fired: list[int] = []
    everything = asyncio.Event()
    handles = []
    for n in range(5):

        def expire(n: int = n) -> None:
            fired.append(n)
            if len(fired) == 4:
                everything.set()

        handles.append(deadlines.start(expire))
    deadlines.done(handles[2])
    await asyncio.wait_for(everything.wait(), GUARD_S)
    assert fired == [0, 1, 3, 4]
    deadlines.close()
