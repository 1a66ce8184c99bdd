"""GoReplay type-2 responses paired with their requests by id (shadow.sources.gorpairs):
every request and every response accounted for, in the order of the requests."""

from __future__ import annotations

import gzip
import io

import orjson

from shadow.model import InputProblem, Item, Record
from shadow.sources import gor, gorpairs
from tests.support import ROOT

SEP = gor.SEPARATOR
A, B, C, D, E = (letter * 24 for letter in "abcde")


def payload(kind: int, pid: str, head: bytes, body: bytes = b"", latency: int = -1) -> bytes:
    return f"{kind} {pid} {10**18} {latency}\n".encode() + head + b"\r\n\r\n" + body + SEP


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: legacy".encode()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
    return head + f"Content-Length: {len(body)}".encode()


def read(data: bytes, limit: int = gorpairs.MAX_WAITING) -> list[Item]:
    items = gor.payloads(io.BytesIO(data), "cap.gor", 1 << 20, answers=True)
    return list(gorpairs.pair(items, limit))


def test_each_response_goes_with_its_request_and_nothing_is_lost() -> None:
    chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip"
    zipped = gzip.compress(b'{"b": 2}')
    data = b"".join(
        (
            payload(1, A, get("/a")),
            payload(2, A, ok(b'{"a": 1}'), b'{"a": 1}', latency=2_500_000),
            payload(3, A, ok(b'{"replayed": 3}'), b'{"replayed": 3}'),  # type 3: never compared
            payload(1, B, get("/b")),
            payload(2, E, ok(b'{"e": 5}'), b'{"e": 5}'),  # before its request
            payload(2, B, chunked, f"{len(zipped):x}\r\n".encode() + zipped + b"\r\n0\r\n\r\n"),
            payload(1, C, get("/c")),  # never answered
            payload(2, D, ok(b"{}"), b"{}"),  # its request is not in the capture
            payload(2, A, ok(b'{"a": 2}'), b'{"a": 2}'),  # a second response
            payload(1, E, get("/e")),
        )
    )
    items = read(data)
    records = [i for i in items if isinstance(i, Record)]
    assert [r.path for r in records] == ["/a", "/b", "/c", "/e"]
    a, b, c, e = records
    assert a.response is not None and orjson.loads(a.response.body) == {"a": 1}
    assert a.response.latency_ms == 2.5 and a.response.status == 200
    assert b.response is not None and b.response.status == 201
    assert orjson.loads(b.response.body) == {"b": 2}  # de-chunked, inflated
    assert b.response.header("transfer-encoding") is None
    assert c.response is None and c.response_problem == ""
    assert e.response is not None and orjson.loads(e.response.body) == {"e": 5}
    # An orphan is known only at the end (its request might still come); a second response
    # as soon as it is read.
    problems = sorted((i for i in items if isinstance(i, InputProblem)), key=lambda p: p.line)
    assert [(p.source, p.line) for p in problems] == [("cap.gor", 51), ("cap.gor", 58)]
    assert problems[0].message == f"a response to request {D}, which is not in the capture"
    assert problems[1].message == f"a second response to request {A} (the first, line 7, is kept)"


def test_without_answers_the_reader_skips_every_response() -> None:
    answer = ok(b"{}")
    data = payload(1, A, get("/a")) + payload(2, A, answer, b"{}") + payload(2, D, answer, b"{}")
    items = list(gor.read_records(io.BytesIO(data), "cap.gor", 1 << 20))
    assert [type(i) for i in items] == [Record]
    assert items[0].response is None  # type: ignore[union-attr]


def test_a_response_that_cannot_be_read_is_its_requests_problem() -> None:
    bad = b"HTTP/1.1 abc Nope\r\nContent-Length: 0"
    items = read(payload(1, A, get("/a")) + payload(2, A, bad))
    (record,) = items
    assert isinstance(record, Record) and record.response is None
    assert record.response_problem == "its response (line 7): not an HTTP status line: " + repr(
        b"HTTP/1.1 abc Nope"
    )


def test_the_wait_for_responses_is_bounded() -> None:
    requests = b"".join(payload(1, f"{n:024x}", get(f"/{n}")) for n in range(5))
    late = payload(2, f"{0:024x}", ok(b"{}"), b"{}")
    items = read(requests + late, limit=3)
    records = [i for i in items if isinstance(i, Record)]
    assert [r.path for r in records] == ["/0", "/1", "/2", "/3", "/4"]
    assert all(r.response is None for r in records)
    (problem,) = [i for i in items if isinstance(i, InputProblem)]
    assert "came more than 3 requests after it" in problem.message


def test_the_sample_capture_has_an_answer_for_its_first_request() -> None:
    with open(ROOT / "replay_logs" / "passport.gor", "rb") as f:
        items = list(gorpairs.read_paired(f, "passport.gor", 1 << 20))
    first = items[0]
    assert isinstance(first, Record) and first.response is not None
    assert orjson.loads(first.response.body) == {"ok": True, "n": 0}
