"""GoReplay `.gor` captures as records: the requests (type 1) replayed, responses skipped
unless asked for (type 2, the original responses: shadow.sources.gorpairs pairs them).

A `.gor` file is a sequence of payloads, each a header line `TYPE ID TIMESTAMP_NS [LATENCY_NS]`,
a raw HTTP/1.x message, and the separator line of three monkey emoji. The separator is not
escaped inside bodies, so a payload is framed by what HTTP says about its length
(`Content-Length`, or the chunk sizes of a chunked body) and the separator is only expected
where the message ends. When the framing and the separator disagree (a body longer or shorter
than its `Content-Length`), the payload ends at the first separator after its HTTP head, and a
request cut that way is a problem rather than a guess. Problems name the line and the byte
offset of the payload's header line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from shadow.model import InputProblem, Item, Record
from shadow.sources import wire

SEPARATOR = "\n\U0001f435\U0001f648\U0001f649\n".encode()
# Latency (-1 for requests) is the usual fourth field; some builds add a client address.
_PAYLOAD_HEADER = re.compile(rb"([123]) ([0-9a-fA-F]+) (\d+)(?: (-?\d+))?(?: [^ \r\n]+)*\r?")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# The two headers that say where a message's body ends, read before anything else of it.
_FRAMING = re.compile(
    rb"^(content-length|transfer-encoding)[ \t]*:[ \t]*(.*?)[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]+)[ \t]*(?:;[^\r\n]*)?\r?\n")
_READ_BYTES = 1 << 18


class _Where(NamedTuple):
    source: str
    line: int
    offset: int

    def problem(self, message: object) -> InputProblem:
        return InputProblem(self.source, self.line, f"byte {self.offset}: {message}")


class RawAnswer(NamedTuple):
    """A type-2 payload (the response the capture saw), not yet paired with its request."""

    id: str
    head: bytes  # the status line and the header lines
    body: bytes | None
    latency_ns: int  # from the payload header; 0 when it has none
    source: str
    line: int
    problem: str = ""  # the payload could not be framed: the paired request says so


class _Framing(Exception):
    """The HTTP message does not end where its own length fields say."""


class _CutOff(Exception):
    """The file ends inside the payload."""


class _Buffer:
    """A sliding window over the stream: `data[pos:]` is unread, `base` is the offset of data[0]."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.data = bytearray()
        self.pos = 0
        self.base = 0
        self.lines = 1  # the line number at `pos`
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(_READ_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        return True

    def compact(self) -> None:
        """Drop what was read; only between payloads, as it moves every index."""
        if self.pos > _READ_BYTES:
            del self.data[: self.pos]
            self.base += self.pos
            self.pos = 0

    def ensure(self, end: int) -> bool:
        """True once data[:end] is available; False if the stream ends first."""
        while len(self.data) < end:
            if not self.fill():
                return False
        return True

    def find(self, needle: bytes, start: int, limit: int) -> int:
        """The index of `needle` at or after `start`, looking no further than `limit`; -1 if none."""
        searched = start
        while True:
            found = self.data.find(needle, searched, limit + len(needle))
            if found >= 0 or len(self.data) >= limit + len(needle):
                return found
            searched = max(start, len(self.data) - len(needle) + 1)
            if not self.fill():
                return -1

    def advance(self, end: int) -> None:
        self.lines += self.data.count(b"\n", self.pos, end)
        self.pos = end


def read_records(stream: BinaryIO, source: str, max_record_bytes: int) -> Iterator[Item]:
    """A record per request payload; responses skipped; bad payloads are problems."""
    for item in payloads(stream, source, max_record_bytes):
        if not isinstance(item, RawAnswer):
            yield item


def payloads(
    stream: BinaryIO, source: str, max_record_bytes: int, answers: bool = False
) -> Iterator[Item | RawAnswer]:
    """As `read_records`, with each type-2 payload as a RawAnswer when `answers` is set."""
    buf = _Buffer(stream)
    while True:
        start = _skip_blank(buf)
        if start < 0:
            return
        where = _Where(source, buf.lines, buf.base + start)
        try:
            item, end = _payload(buf, start, max_record_bytes, where, answers)
        except ValueError as exc:
            yield where.problem(exc)
            item, end = None, _resync(buf, start, max_record_bytes)
            if end < 0:
                return
        buf.advance(end)
        if item is not None:
            yield item


def _skip_blank(buf: _Buffer) -> int:
    """The start of the next payload (blank lines skipped), or -1 at the end of the stream."""
    buf.compact()
    while True:
        data, pos = buf.data, buf.pos
        while pos < len(data) and data[pos] in b"\r\n":
            pos += 1
        if pos < len(data):
            buf.advance(pos)
            return pos
        if not buf.fill():
            return -1


def _resync(buf: _Buffer, start: int, limit: int) -> int:
    """Just past the next separator after `start` (the rest of the file if none), or -1 at the
    end of the stream; whatever is skipped is never held in memory whole."""
    while True:
        found = buf.find(SEPARATOR, start, start + limit)
        if found >= 0:
            return found + len(SEPARATOR)
        if buf.eof and len(buf.data) <= start + limit + len(SEPARATOR):
            return -1
        # Not within `limit`: drop what was searched and go on past it.
        buf.advance(start + limit + 1)
        buf.compact()
        start = buf.pos


def _payload(
    buf: _Buffer, start: int, limit: int, where: _Where, answers: bool
) -> tuple[Item | RawAnswer | None, int]:
    """The payload at `start` as a record (a problem for a request that is framed but cannot
    be replayed; for a response, a RawAnswer if `answers` asks for type 2, else None) and
    where the next payload begins. ValueError when the payload cannot be framed."""
    header_end = buf.find(b"\n", start, start + 200)
    header = None if header_end < 0 else _PAYLOAD_HEADER.fullmatch(buf.data, start, header_end)
    if header is None:
        if header_end < 0 and buf.eof and len(buf.data) - start < 200:
            raise ValueError("cut off at the end of the file, in a payload header line")
        excerpt = bytes(buf.data[start : start + 60]).partition(b"\n")[0]
        raise ValueError(f"not a GoReplay payload header line: {excerpt!r}")
    head_start = header_end + 1
    separator = buf.find(SEPARATOR, head_start, head_start + limit)
    bound = separator if separator >= 0 else len(buf.data)
    # +2: a head missing its last CRLF is completed by the separator's leading newline.
    head_match = _HEAD_END.search(buf.data, head_start, bound + 2)
    if head_match is None or head_match.end() > bound + 1:
        if separator < 0 and len(buf.data) - head_start >= limit:
            raise ValueError(f"payload longer than {limit} bytes")
        raise ValueError(_cut_or(buf, "HTTP head does not end with an empty line", separator))
    head = bytes(buf.data[head_start : head_match.start()])
    request = header.group(1) == b"1"

    def answer(body: bytes | None, problem: str = "") -> RawAnswer | None:
        if not answers or header is None or header.group(1) != b"2":
            return None  # type 3, a replayed response, is never compared
        latency = max(int(header.group(4) or 0), 0)
        found = header.group(2).decode("ascii")
        return RawAnswer(found, head, body, latency, where.source, where.line, problem)

    try:
        body, end = _body(buf, head, min(head_match.end(), bound), limit)
    except (_CutOff, _Framing) as exc:
        if not request:
            return answer(None, str(exc)), _skip_response(buf, start, separator, limit)
        if isinstance(exc, _CutOff):
            raise ValueError(f"cut off at the end of the file: {exc}") from None
        if separator < 0 and len(buf.data) - head_start < limit:
            raise ValueError(_cut_or(buf, str(exc))) from None
        if separator < 0:
            raise ValueError(str(exc)) from None
        raise ValueError(f"{exc}; skipped to the next separator") from None
    if not request:
        return answer(body), end
    try:
        return _record(head, body, header, where), end
    except ValueError as exc:
        return where.problem(exc), end


def _skip_response(buf: _Buffer, start: int, separator: int, limit: int) -> int:
    if separator >= 0:
        return separator + len(SEPARATOR)
    end = _resync(buf, start, limit)
    return len(buf.data) if end < 0 else end


def _cut_or(buf: _Buffer, message: str, separator: int = -1) -> str:
    """`message`, said to be a cut-off when the file ends before the payload's separator."""
    if separator < 0 and buf.eof:
        return f"cut off at the end of the file ({message})"
    return message


def header_lines(raw: bytes) -> list[tuple[str, str]]:
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError:  # then each line on its own, so one odd header spoils no other
        lines = [wire.decode_header(line) for line in raw.split(b"\n")]
    headers: list[tuple[str, str]] = []
    for line in lines:
        text = line.rstrip("\r")
        if text[:1] in (" ", "\t") and headers:  # an obsolete folded continuation line
            previous, value = headers[-1]
            headers[-1] = (previous, value + " " + text.strip(" \t"))
            continue
        name, colon, value = text.partition(":")
        if not colon:
            raise ValueError(f"not an HTTP header line: {text[:60]!r}")
        headers.append((name, value.strip(" \t")))
    return wire.check_headers(headers)


def _body(buf: _Buffer, head: bytes, start: int, limit: int) -> tuple[bytes | None, int]:
    """The (de-chunked) body and where the next payload begins, as the head's framing
    headers say."""
    fields = {name.lower(): value for name, value in _FRAMING.findall(head)}
    body: bytes | None
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        body, end = _dechunk(buf, start, limit)
    elif b"content-length" in fields:
        length = fields[b"content-length"].decode("latin-1")
        if not length.isdigit():
            raise _Framing(f"unusable Content-Length {length[:20]!r}")
        if int(length) > limit:
            raise _Framing(f"body longer than {limit} bytes")
        end = start + int(length)
        if not buf.ensure(end):
            raise _CutOff(f"the body has {len(buf.data) - start} of {length} bytes")
        body = bytes(buf.data[start:end])
    else:
        # Neither: a request has no body (RFC 9112 section 6.3), so the separator must follow
        # the head; bytes before it would be a second message merged into this one.
        body, end = None, _blank_until_separator(buf, start, limit)
    return body, _after(buf, end)


def _blank_until_separator(buf: _Buffer, start: int, limit: int) -> int:
    """Where the separator after a bodiless head starts (line ends before it are allowed)."""
    found = buf.find(SEPARATOR, start, start + limit)
    end = found if found >= 0 else len(buf.data)
    extra = len(bytes(buf.data[start:end]).strip(b"\r\n"))
    if extra:
        raise _Framing(
            f"{extra} bytes after a head with neither Content-Length nor Transfer-Encoding "
            "(such a request has no body)"
        )
    return end


def _after(buf: _Buffer, end: int) -> int:
    buf.ensure(end + len(SEPARATOR))
    tail = bytes(buf.data[end : end + len(SEPARATOR)])
    if tail == SEPARATOR:
        return end + len(SEPARATOR)
    if buf.eof and SEPARATOR.startswith(tail):  # the last payload, its separator cut short
        return len(buf.data)
    raise _Framing("the body does not end where its length says")


def _dechunk(buf: _Buffer, start: int, limit: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    pos, total = start, 0
    while True:
        line_end = buf.find(b"\n", pos, pos + 1024)
        if line_end < 0:
            if buf.eof and len(buf.data) - pos < 1024:
                raise _CutOff("inside a chunk size line")
            raise _Framing("bad chunk size line in a chunked body")
        size_line = _CHUNK_SIZE.fullmatch(buf.data, pos, line_end + 1)
        if size_line is None:
            raise _Framing("bad chunk size line in a chunked body")
        size = int(size_line.group(1), 16)
        pos = line_end + 1
        if size == 0:
            return b"".join(parts), _skip_trailers(buf, pos)
        total += size
        if total > limit:
            raise _Framing(f"chunked body longer than {limit} bytes")
        buf.ensure(pos + size + 2)
        if len(buf.data) < pos + size + 1:
            raise _CutOff(f"inside a chunk of {size} bytes")
        parts.append(bytes(buf.data[pos : pos + size]))
        pos += size
        if buf.data[pos : pos + 2] == b"\r\n":
            pos += 2
        elif buf.data[pos : pos + 1] == b"\n":
            pos += 1
        else:
            raise _Framing("a chunk is longer than its size line says")


def _skip_trailers(buf: _Buffer, pos: int) -> int:
    while True:
        line_end = buf.find(b"\n", pos, pos + 8192)
        if line_end < 0:
            if buf.eof and pos >= len(buf.data):
                return pos  # the file ends right after the last chunk
            raise _CutOff("inside the trailers") if buf.eof else _Framing("trailer line too long")
        if buf.data[pos:line_end].rstrip(b"\r") == b"":
            return line_end + 1
        pos = line_end + 1


def _record(head: bytes, body: bytes | None, header: re.Match[bytes], where: _Where) -> Record:
    request_line, _, lines = head.partition(b"\n")
    parts = request_line.rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        raise ValueError(f"not an HTTP request line: {request_line[:80]!r}")
    method = wire.check_method(parts[0].decode("latin-1"))
    path, host = wire.target_path(parts[1])
    headers = header_lines(lines) if lines else []
    if host and not wire.has_header(headers, "host"):
        headers.insert(0, ("Host", host))
    if body is not None and wire.has_header(headers, "transfer-encoding"):
        # The body is de-chunked now; the header would describe bytes that no longer exist.
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    shaped = wire.NO_BODY
    if body is not None:
        content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
        shaped = wire.body_of(body, content_type)
    return Record(
        method=method,
        path=path,
        headers=tuple(headers),
        body=shaped.value,
        body_bytes=shaped.data,
        body_form=shaped.form,
        id=header.group(2).decode("ascii"),
        ts=int(header.group(3)) / 1e9,
        source=where.source,
        line=where.line,
    )
