"""Access logs as records: nginx `combined` (and formats that extend it) and AWS ALB.

An access log keeps the request line, the User-Agent and the time, never the body. A request
whose method normally carries one (POST, PUT, PATCH) would be replayed without it and so
differently from how it was sent: such lines are problems that say so, not guesses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO

from shadow.model import InputProblem, Item, Record
from shadow.sources import wire

BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_QUOTED = rb'"((?:[^"\\]|\\.)*)"'
# $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
# "$http_referer" "$http_user_agent", then whatever a log_format adds after it.
NGINX = re.compile(
    rb"(\S+) \S+ (\S+) \[([^\]]+)\] " + _QUOTED + rb" (\d{3}) (\d+|-) " + _QUOTED + rb" " + _QUOTED
)
# type time elb client:port target:port 3 times, 2 statuses, 2 byte counts, "request"
# "user_agent", then (in logs since 2018) ... request_creation_time as the 22nd field.
ALB = re.compile(
    rb"(https?|h2|grpcs|wss?) (\S+) \S+ \S+ \S+ \S+ \S+ \S+ (?:\d{3}|-) (?:\d{3}|-) \S+ \S+ "
    + _QUOTED
    + rb" "
    + _QUOTED
    + rb'(?: \S+ \S+ \S+ "[^"]*" "[^"]*" "[^"]*" \S+ (\S+))?'
)
_ESCAPE = re.compile(rb'\\x([0-9A-Fa-f]{2})|\\(["\\])')
_NGINX_TIME = re.compile(
    r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}


def matches(line: bytes) -> bool:
    """Whether `line` is an nginx combined or an AWS ALB access log line (for detection)."""
    return bool(NGINX.match(line) or ALB.match(line))


def read_records(stream: BinaryIO, source: str, max_record_bytes: int) -> Iterator[Item]:
    """A record per log line; blank lines skipped; unreadable lines are problems."""
    times: dict[bytes, float] = {}  # many lines share a second: parse each stamp once
    number = 0
    while True:
        line = stream.readline(max_record_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_record_bytes and not line.endswith(b"\n"):
            while (rest := stream.readline(max_record_bytes)) and not rest.endswith(b"\n"):
                pass
            yield InputProblem(source, number, f"line longer than {max_record_bytes} bytes")
            continue
        if not line.strip():
            continue
        try:
            yield _record(line.rstrip(b"\r\n"), source, number, times)
        except ValueError as exc:
            yield InputProblem(source, number, str(exc))


def _record(line: bytes, source: str, number: int, times: dict[bytes, float]) -> Record:
    if found := NGINX.match(line):
        request, agent, stamp = _unescape(found.group(4)), found.group(8), found.group(3)
        ts = times.get(stamp)
        if ts is None:
            ts = times[stamp] = _nginx_time(stamp)
    elif found := ALB.match(line):
        request, agent, stamp = found.group(3), found.group(4), found.group(5) or found.group(2)
        ts = times.get(stamp)
        if ts is None:
            ts = times[stamp] = _iso_time(stamp)
    else:
        raise ValueError(f"not an nginx combined or AWS ALB log line: {line[:80]!r}")
    method, path, host = _request_line(request)
    headers: list[tuple[str, str]] = []
    if host:
        headers.append(("Host", host))
    if agent not in (b"-", b""):
        headers.append(wire.check_header("User-Agent", wire.decode_header(_unescape(agent))))
    return Record(
        method=method, path=path, headers=tuple(headers), ts=ts, source=source, line=number
    )


def _request_line(request: bytes) -> tuple[str, str, str | None]:
    parts = request.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        if request in (b"", b"-", b"- - - "):
            raise ValueError("no request line: the client sent no complete request")
        raise ValueError(f"not an HTTP request line: {request[:80]!r}")
    method = wire.check_method(parts[0].decode("latin-1"))
    path, host = wire.target_path(parts[1])
    if method in BODY_METHODS:
        raise ValueError(
            f"{method} {path[:80]}: access logs do not record request bodies, "
            f"so a {method} cannot be replayed as it was sent"
        )
    return method, path, host


def _unescape(raw: bytes) -> bytes:
    """nginx writes `"`, `\\` and bytes outside printable ASCII as `\\xHH` (`\\"` with
    `escape=json`); the request line is compared as the bytes the client sent."""
    if b"\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: bytes.fromhex(m[1].decode()) if m[1] else m[2], raw)


def _nginx_time(stamp: bytes) -> float:
    found = _NGINX_TIME.fullmatch(stamp.decode("latin-1"))
    if found is None or found[2] not in _MONTHS:
        raise ValueError(f"not an nginx time: {stamp[:40]!r}")
    day, _, year, hour, minute, second, sign, tz_h, tz_m = found.groups()
    offset = timedelta(hours=int(tz_h), minutes=int(tz_m)) * (-1 if sign == "-" else 1)
    try:
        moment = datetime(
            int(year),
            _MONTHS[found[2]],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(offset),
        )
    except ValueError:
        raise ValueError(f"not an nginx time: {stamp[:40]!r}") from None
    return moment.timestamp()


def _iso_time(stamp: bytes) -> float:
    try:
        moment = datetime.fromisoformat(stamp.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"not an ISO 8601 time: {stamp[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
