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


REQUESTS: list[dict[str, object]] = [
    {"method": "GET", "headers": {"Accept": "application/json", "X-Id": "7"}},
    {"method": "GET", "headers": {"User-Agent": "recorded/1.0", "Accept-Encoding": "br"}},
    {"method": "POST", "headers": {"Content-Type": "application/json"}, "data": b'{"a": 1}'},
    {"method": "PUT", "data": b"raw bytes"},  # no Content-Type recorded
    {"method": "DELETE", "headers": {"Host": "api.example", "Cookie": "s=1"}},
]


async def test_the_run_client_writes_what_skipping_the_user_agent_writes_byte_for_byte() -> None:
    """The request class that adds no User-Agent sends exactly what aiohttp's
    `skip_auto_headers=("User-Agent",)` sends: same lines, same order, same body."""
    reference = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent",),
    )
    async with client_session() as session, reference:
        for request in REQUESTS:
            sent = await _request_bytes(session, **request)
            expected = await _request_bytes(reference, **request)
            assert sent == expected, request
            assert b"python" not in sent.lower()  # aiohttp's own User-Agent never goes out
