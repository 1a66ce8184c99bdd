"""A raw asyncio HTTP/1.1 server that misbehaves on request, for the fault-injection tests.

    python tests/helpers/fault_server.py --port N [--variant primary|candidate] [--tag T]
        [--crash-at-start] [--crash-after K] [--record FILE]

It is run as a real subprocess on 127.0.0.1 and speaks HTTP by hand, so it can break the
protocol in ways a real framework never would. What it does is chosen by the request path:

GET /health, /ok/...         200 {"ok": true, "path": ...}
/hang                        reads the request, never answers (the connection stays open)
/slow/{ms}                   answers 200 after ms milliseconds
/reset                       closes the connection with SO_LINGER 0 (the client sees a RST)
/reset-candidate             the candidate resets as /reset does; the primary answers 200
/close-after-headers         sends a head announcing 100 bytes, then closes
/malformed                   sends a status line that is not HTTP, then closes
/short-length                Content-Length 100, 10 bytes sent, then closes
/long-length                 Content-Length 5, 12 bytes sent, connection kept open
/big/{mb}                    a JSON body of mb MiB (streamed, with a Content-Length)
/encoded?primary=E&candidate=E   the same JSON, compressed with E: gzip, deflate, br, identity
/chunked                     a JSON body in three chunks (Transfer-Encoding: chunked)
/json/{name}                 raw bytes from JSON_BODIES, the primary's or the candidate's
/redirect?to=URL             302 to URL (never followed by shadow)
/status/{code}               that status with a small JSON body
/storm/{n}                   200 from the primary, 503 from the candidate (a 5xx storm)
/account                     (POST, a JSON body with email and password) the user, with the
                             Authorization header as its token and a Set-Cookie made from the
                             Cookie header; the candidate changes each of them, so every
                             secret lands in a difference
/set-cookie                  200 with `Set-Cookie: sid=<variant>-token` (a session to not keep)
/echo                        200 with the request line, headers and body as JSON
anything else                404

Every request is counted; with --crash-after K the process exits hard (code 17) on the K-th;
with --record FILE its argv and SHADOWTEST_* environment, then every request, are appended to FILE as a JSON line (method, target, headers,
body) before it is answered, which is how the tests see what reached a server, and that a
server that must receive nothing got nothing at all (a connection is recorded even when no
request follows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import socket
import struct
import sys
import zlib
from urllib.parse import parse_qs, urlsplit

import brotli

DEEP = 10_000
# name -> (primary body, candidate body): JSON a server may really send.
JSON_BODIES: dict[str, tuple[bytes, bytes]] = {
    "bad-utf8": (b'{"name": "caf\xe9"}', b'{"name": "caf\xc3\xa9"}'),
    "bad-utf8-same": (b'{"name": "caf\xe9"}', b'{"name": "caf\xe9"}'),
    "dup-keys": (b'{"a": 1, "a": 2}', b'{"a": 2}'),
    "deep": (b"[" * DEEP + b"1" + b"]" * DEEP, b"[" * DEEP + b"2" + b"]" * DEEP),
    "deep-same": (b"[" * DEEP + b"1" + b"]" * DEEP, b"[" * DEEP + b"1" + b"]" * DEEP),
    "huge-int": (
        b'{"n": 1267650600228229401496703205376}',  # 2**100
        b'{"n": 1267650600228229401496703205377}',
    ),
    "huge-int-same": (b'{"n": 1267650600228229401496703205376}',) * 2,
    "huge-float": (b'{"x": 1e400}', b'{"x": 1e500}'),
    "huge-float-same": (b'{"x": 1e400}', b'{"x": 1e400}'),
    "nan": (b'{"x": NaN}', b'{"x": 1}'),
    "infinity": (b'{"x": Infinity}', b'{"x": -Infinity}'),
    # Every element differs: as many differences as elements.
    "wide": (json.dumps(list(range(20_000))).encode(), json.dumps(list(range(1, 20_001))).encode()),
    # One difference, each side 200 kB.
    "big-value": (
        json.dumps({"a": "p" * 200_000}).encode(),
        json.dumps({"a": "c" * 200_000}).encode(),
    ),
}
_PAYLOAD = json.dumps({"encoded": True, "items": list(range(50))}).encode()


class FaultServer:
    def __init__(self, variant: str, crash_after: int, record: str) -> None:
        self.variant = variant
        self.crash_after = crash_after
        self.record = record
        self.seen = 0

    def note(self, entry: dict[str, object]) -> None:
        if self.record:
            with open(self.record, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.note({"connection": True})
        try:
            while await self.one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = [tuple(h.split(":", 1)) for h in lines if ":" in h]
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        self.seen += 1
        self.note(
            {
                "method": method,
                "target": target,
                "headers": [[k, v.strip()] for k, v in headers],
                "body": body.decode("utf-8", "replace"),
            }
        )
        if self.crash_after and self.seen >= self.crash_after:
            os._exit(17)
        return await self.answer(method, target, headers, body, writer)

    async def answer(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, ...]],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/hang":
            await asyncio.Event().wait()
        if path.startswith("/slow/"):
            await asyncio.sleep(int(path.rsplit("/", 1)[1]) / 1000)
            return await send(writer, 200, json.dumps({"slept": True}).encode())
        if path == "/reset" or (path == "/reset-candidate" and self.variant == "candidate"):
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        raw = BROKEN.get(path)
        if raw is not None:
            writer.write(raw)
            await writer.drain()
            return path == "/long-length"  # the extra bytes stay in the connection
        if path.startswith("/big/"):
            await send_big(writer, int(path.rsplit("/", 1)[1]))
            return True
        if path == "/encoded":
            encoding = query.get(self.variant, ["identity"])[0]
            return await send(writer, 200, encode(_PAYLOAD, encoding), encoding=encoding)
        if path == "/chunked":
            await send_chunked(writer, [b'{"chunked": ', b"[1, 2, 3]", b"}"])
            return True
        if path.startswith("/json/"):
            pair = JSON_BODIES[path.removeprefix("/json/")]
            return await send(writer, 200, pair[self.variant == "candidate"])
        if path == "/redirect":
            location = query.get("to", ["/"])[0]
            return await send(writer, 302, b'{"moved": true}', location=location)
        if path.startswith("/storm/"):
            code = 503 if self.variant == "candidate" else 200
            return await send(writer, code, json.dumps({"n": path.rsplit("/", 1)[1]}).encode())
        if path == "/account":
            return await self.account({k.lower(): v.strip() for k, v in headers}, body, writer)
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return await send(writer, code, json.dumps({"status": code}).encode())
        if path == "/set-cookie":
            return await send(writer, 200, b'{"cookie": "set"}', cookie=f"{self.variant}-token")
        if path == "/echo":
            echoed = {
                "method": method,
                "target": target,
                "headers": {k.lower(): v.strip() for k, v in headers},
                "body": body.decode("utf-8", "replace"),
            }
            return await send(writer, 200, json.dumps(echoed).encode())
        if path in ("/health", "/reset-candidate") or path.startswith("/ok/"):
            return await send(writer, 200, json.dumps({"ok": True, "path": path}).encode())
        return await send(writer, 404, b'{"error": "not found"}')

    async def account(
        self, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        sent = json.loads(body or b"{}")
        user = {
            "id": 1,
            "email": sent.get("email", ""),
            "password": sent.get("password", ""),
            "token": headers.get("authorization", ""),
        }
        cookie = headers.get("cookie", "")
        if self.variant == "candidate":
            user = {k: v[::-1] if isinstance(v, str) else v for k, v in user.items()}
            cookie = cookie[::-1]
        return await send(writer, 200, json.dumps({"user": user}).encode(), cookie=cookie)


BROKEN = {
    "/close-after-headers": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n",
    "/malformed": b"HTTP/1.1 two hundred OK\r\nthis is: not\r\nhttp\r\n\r\n",
    "/short-length": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
    "/long-length": b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{"a":1}extra',
}


def encode(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        result: bytes = brotli.compress(data)
        return result
    return data


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    *,
    encoding: str = "identity",
    location: str = "",
    cookie: str = "",
) -> bool:
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    head.append(f"Content-Length: {len(body)}")
    if encoding != "identity":
        head.append(f"Content-Encoding: {encoding}")
    if location:
        head.append(f"Location: {location}")
    if cookie:
        head.append(f"Set-Cookie: sid={cookie}; Path=/; HttpOnly")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    return True


async def send_big(writer: asyncio.StreamWriter, mib: int) -> None:
    size = mib << 20
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
    block = b"x" * (1 << 20)
    writer.write(b'{"d": "' + block[: (1 << 20) - 7])
    for _ in range(mib - 2):
        writer.write(block)
        await writer.drain()
    writer.write(block[: (1 << 20) - 2] + b'"}')
    await writer.drain()


async def send_chunked(writer: asyncio.StreamWriter, chunks: list[bytes]) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    for chunk in chunks:
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", default="primary", choices=("primary", "candidate"))
    parser.add_argument("--crash-at-start", action="store_true")
    parser.add_argument("--crash-after", type=int, default=0)
    parser.add_argument("--record", default="")
    parser.add_argument("--tag", default="", help="ignored: lets tests find their processes")
    args = parser.parse_args()
    if args.crash_at_start:
        print("fault server: crashing at start, as asked", file=sys.stderr, flush=True)
        os._exit(3)
    server = FaultServer(args.variant, args.crash_after, args.record)
    environment = {k: v for k, v in os.environ.items() if k.startswith("SHADOWTEST_")}
    server.note({"argv": sys.argv[1:], "env": environment})
    listener = await asyncio.start_server(server.serve, "127.0.0.1", args.port, limit=1 << 20)
    with contextlib.suppress(OSError):  # a log on a full disk must not stop the server
        print(f"fault server {args.variant} on {args.port}", file=sys.stderr, flush=True)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
