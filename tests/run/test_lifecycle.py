"""The run's HTTP client: what it writes on the wire, byte for byte."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from multidict import CIMultiDict
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.model import Response
from shadow.replay.budget import BodyBudget
from shadow.replay.transport import AiohttpTransport, Request, Transport
from shadow.replay.transport_fast import FastTransport
from shadow.run.lifecycle import client_session

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def _request_bytes(transport: Transport, **request: Any) -> bytes:
    """The bytes a 127.0.0.1 server receives for one request sent through `transport`."""
    received = bytearray()
    complete = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        received.extend(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                received.extend(await reader.readexactly(int(line.split(b":")[1])))
        writer.write(ANSWER)
        await writer.drain()
        writer.close()
        complete.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        url = URL(f"http://127.0.0.1:{port}/p/1?q=a%20b", encoded=True)
        headers = CIMultiDict(request.get("headers", {}))
        sent = Request(request["method"], "primary", url, headers, request.get("data"), 0.0)
        answer = await transport.send(sent, BodyBudget(1 << 20))
        assert isinstance(answer, Response) and answer.body == b"ok", answer
        await asyncio.wait_for(complete.wait(), 5)
    return bytes(received).replace(f":{port}".encode(), b":PORT")  # each server its own port


LINE = "GET /p/1?q=a%20b HTTP/1.1"
HOST = "Host: 127.0.0.1:PORT"


def head(*lines: str, body: bytes = b"") -> bytes:
    return "\r\n".join((*lines, "", "")).encode() + body


# Each request, and exactly what goes out for it: the recorded headers, Host and the framing.
REQUESTS: list[tuple[dict[str, object], bytes]] = [
    (
        {"method": "GET", "headers": {"Accept": "application/json", "X-Id": "7"}},
        head(LINE, HOST, "Accept: application/json", "X-Id: 7"),
    ),
    (
        {"method": "GET", "headers": {"User-Agent": "recorded/1.0", "Accept-Encoding": "br"}},
        head(LINE, HOST, "User-Agent: recorded/1.0", "Accept-Encoding: br"),
    ),
    (
        {"method": "POST", "headers": {"Content-Type": "application/json"}, "data": b'{"a": 1}'},
        head(
            LINE.replace("GET", "POST"),
            HOST,
            "Content-Type: application/json",
            "Content-Length: 8",
            body=b'{"a": 1}',
        ),
    ),
    (  # no Content-Type recorded: none is made up
        {"method": "PUT", "data": b"raw bytes"},
        head(LINE.replace("GET", "PUT"), HOST, "Content-Length: 9", body=b"raw bytes"),
    ),
    (
        {"method": "POST", "data": b""},
        head(LINE.replace("GET", "POST"), HOST, "Content-Length: 0"),
    ),
    (  # a method that may carry a body says its length, 0 when it has none
        {"method": "DELETE", "headers": {"Host": "api.example", "Cookie": "s=1"}},
        head(
            LINE.replace("GET", "DELETE"), "Host: api.example", "Cookie: s=1", "Content-Length: 0"
        ),
    ),
]


@pytest.mark.parametrize("name", ["aiohttp", "httptools"])
async def test_the_run_client_writes_the_recorded_headers_and_the_framing_only(name: str) -> None:
    """No header of aiohttp's own (Accept, Accept-Encoding, User-Agent, a made-up
    Content-Type): the request line, Host, the recorded headers in order, the length; the
    same bytes from either transport."""
    async with client_session() as session:
        reference = AiohttpTransport(session, ReplayConfig())
        fast = FastTransport(ReplayConfig(), fallback=reference)
        transport: Transport = reference if name == "aiohttp" else fast
        for request, expected in REQUESTS:
            assert await _request_bytes(transport, **request) == expected, request
        await fast.aclose()
