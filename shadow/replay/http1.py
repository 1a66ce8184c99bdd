"""HTTP/1.1 as aiohttp speaks it, for the fast transport (shadow.replay.transport_fast): the
request bytes it writes, the bodies it decodes, and its words for what goes wrong."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import zlib
from typing import Any

import brotli  # type: ignore[import-untyped]
from aiohttp import hdrs
from multidict import CIMultiDict, istr

from shadow.replay.transport import Request

# As aiohttp: what may be retried on a fresh connection (RFC 9112 §9.3.1), which methods send
# no `Content-Length: 0` without a body, and the characters no header may hold.
IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))
NO_BODY_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
FORBIDDEN_MESSAGE = (
    "Forbidden control character detected in headers. Potential header injection attack."
)
# aiohttp's spelling of the header names it knows (its parser interns them).
KNOWN_NAMES: dict[bytes, istr] = {
    str(v).lower().encode(): v for v in vars(hdrs).values() if isinstance(v, istr)
}
DECODED = frozenset(("gzip", "deflate", "br"))


class Undecodable(Exception):
    """A body its Content-Encoding does not decode; the message is aiohttp's."""


def request_bytes(request: Request, host: str) -> bytes:
    """The request as aiohttp writes it (shadow.run.lifecycle's request class); `host` is the
    URL's `host[:port]`, the `Host` sent unless the request gives its own."""
    method = request.method.upper()
    given = request.headers
    if "Host" in given:  # in any spelling: the multidict's names are case-insensitive
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Host"] = host
        for name, value in given.items():
            if name in hdrs.HOST_ALL:
                headers[name] = value
            else:
                headers.add(name, value)
        pairs = list(headers.items())
    else:
        pairs = [("Host", host), *given.items()]
    body = request.body
    if "content-length" not in given:
        if body is not None:
            pairs.append(("Content-Length", str(len(body))))
        elif method not in NO_BODY_METHODS:
            pairs.append(("Content-Length", "0"))
    parts = [f"{method} {request.url.raw_path_qs} HTTP/1.1", *[f"{k}: {v}" for k, v in pairs]]
    # One search over all the parts, a tab (which a header may hold) between them.
    if FORBIDDEN.search("\t".join(parts)) is not None:
        raise ValueError(FORBIDDEN_MESSAGE)
    head = "\r\n".join((*parts, "", "")).encode()
    return head + body if body else head


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def content_length(headers: list[tuple[str, str]]) -> int | None:
    value = header(headers, "content-length")
    return int(value) if value is not None and value.isdigit() else None


class Decoder:
    """A body's Content-Encoding undone, as aiohttp's DeflateBuffer does it."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.started = False
        self.impl: Any = None

    def decode(self, data: bytes, max_length: int) -> bytes:
        if not data:
            return b""
        if not self.started:
            self.started = True
            if self.encoding == "br":
                self.impl = brotli.Decompressor()
            elif self.encoding == "gzip":
                self.impl = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:  # deflate, with its zlib header or (not as RFC 9110 says) without
                wbits = zlib.MAX_WBITS if data[0] & 0xF == 8 else -zlib.MAX_WBITS
                self.impl = zlib.decompressobj(wbits)
        try:
            if self.encoding == "br":
                return bytes(self.impl.process(data))
            return bytes(self.impl.decompress(data, max_length))
        except Exception:  # noqa: BLE001 - zlib.error, brotli.error: aiohttp's one message
            raise Undecodable(
                f"400, message:\n  Can not decode content-encoding: {self.encoding}"
            ) from None

    def finish(self) -> bytes:
        if self.impl is None or self.encoding == "br":
            return b""
        rest = bytes(self.impl.flush())
        if self.encoding == "deflate" and not self.impl.eof:
            raise ValueError("deflate")
        return rest


def connect_message(exc: OSError, key: tuple[str, int]) -> str:
    """As asyncio's sock_connect (which aiohttp connects with) words it, whichever loop."""
    try:
        ipaddress.ip_address(key[0])
    except ValueError:
        return str(exc)
    if exc.errno is None or ":" in key[0]:
        return str(exc)
    return f"[Errno {exc.errno}] Connect call failed {key!r}"


def aiohttp_parse_message(raw: bytes, with_body: bool = True) -> str | None:
    """aiohttp's message for a head it cannot parse: its own parser, over the same bytes."""
    from aiohttp.http_exceptions import HttpProcessingError
    from aiohttp.http_parser import HttpResponseParser

    loop = asyncio.get_running_loop()
    parser = HttpResponseParser(
        NoProtocol(),  # type: ignore[arg-type]
        loop,
        2**16,
        max_line_size=8190,
        max_field_size=8190,
        response_with_body=with_body,
    )
    try:
        parser.feed_data(raw)
    except HttpProcessingError as exc:
        return exc.message
    except Exception:  # noqa: BLE001 - only a message is wanted here
        return None
    return None


class NoProtocol:
    """What aiohttp's parser is given for a protocol when only its error is wanted."""

    _reading_paused = False

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
