"""The run's HTTP client: what it writes on the wire, byte for byte."""

from __future__ import annotations

import asyncio

import aiohttp

from shadow.run.lifecycle import client_session

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def _request_bytes(session: aiohttp.ClientSession, **request: object) -> bytes:
    """The bytes a 127.0.0.1 server receives for one request sent through `session`."""
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
        url = f"http://127.0.0.1:{port}/p/1?q=a%20b"
        async with session.request(url=url, allow_redirects=False, **request) as resp:  # type: ignore[arg-type]
            assert await resp.read() == b"ok"
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


async def test_the_run_client_writes_the_recorded_headers_and_the_framing_only() -> None:
    """No header of aiohttp's own (Accept, Accept-Encoding, User-Agent, a made-up
    Content-Type): the request line, Host, the recorded headers in order, the length."""
    async with client_session() as session:
        for request, expected in REQUESTS:
            assert await _request_bytes(session, **request) == expected, request
