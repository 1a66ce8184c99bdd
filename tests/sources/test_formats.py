"""The capture readers (HAR, GoReplay, access logs) and format detection, on the bundled samples
and on edge cases built here; every reader fuzzed with arbitrary bytes."""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.errors import InputError
from shadow.model import InputProblem, Item, Record, UnreadableInput
from shadow.sources import access, gor, har
from shadow.sources.jsonl import record_from_dict
from shadow.sources.opening import iter_inputs, open_detected, validate_inputs
from tests.support import ROOT

LOGS = ROOT / "replay_logs"
DEMO = [orjson.loads(line) for line in (LOGS / "passport-demo.jsonl").read_bytes().splitlines()]
BY_PATH = {(r["method"], r["path"]): r for r in DEMO}
SEP = gor.SEPARATOR

Reader = Callable[[BinaryIO, str, int], Iterator[Item]]


def read(reader: Reader, data: bytes, limit: int = 1 << 20) -> list[Item]:
    return list(reader(io.BytesIO(data), "log", limit))


def records(items: list[Item]) -> list[Record]:
    assert all(isinstance(i, Record) for i in items), [
        i for i in items if not isinstance(i, Record)
    ]
    return [i for i in items if isinstance(i, Record)]


def problems(items: list[Item]) -> list[InputProblem]:
    return [i for i in items if isinstance(i, InputProblem)]


def assert_round_trips(record: Record) -> None:
    """What `shadow convert` writes reads back as the same request."""
    again = record_from_dict(orjson.loads(orjson.dumps(record.to_dict())))
    assert (again.method, again.path, again.headers) == (record.method, record.path, record.headers)
    assert again.ts == record.ts and again.id == record.id
    if record.body_form == "json":
        assert again.body == record.body
    else:
        assert again.body_bytes == record.body_bytes


# -- HAR -------------------------------------------------------------------------------------


def har_doc(*requests: dict[str, Any], started: str = "2026-11-27T15:00:00.250Z") -> bytes:
    entries = [{"startedDateTime": started, "request": r, "response": {}} for r in requests]
    return orjson.dumps({"log": {"version": "1.2", "entries": entries}})


def test_har_from_devtools_http2() -> None:
    got = records(read(har.read_records, (LOGS / "passport-devtools.har").read_bytes()))
    assert [r.method for r in got] == ["GET", "POST", "PATCH", "GET", "DELETE"]
    for record in got:
        names = [name for name, _ in record.headers]
        assert not any(name.startswith(":") for name in names)  # HTTP/2 pseudo-headers dropped
        assert record.headers[0] == ("Host", "scorer.passport.example")  # from the URL
        assert_round_trips(record)
    assert [(r.header("authorization") or "")[:7] for r in got] == ["", *["Bearer "] * 4]
    post = got[1]
    assert post.has_json_body and post.body == BY_PATH[("POST", post.path)]["body"]
    assert post.ts == 1795791602.25


def test_har_from_mitmproxy_keeps_duplicate_headers() -> None:
    got = records(read(har.read_records, (LOGS / "passport-mitmproxy.har").read_bytes()))
    assert len(got) == 8
    stake = next(r for r in got if "/stake/" in r.path)
    forwarded = [v for k, v in stake.headers if k == "X-Forwarded-For"]
    assert forwarded == ["10.20.0.7", "10.20.3.12"]
    assert stake.header("host") == "127.0.0.1:8002" and stake.header("AUTHORIZATION")
    stats = next(r for r in got if "contributor_statistics" in r.path)
    assert stats.path.endswith("?address=0xf129e2be583ff1e53e30400af5ad6336b17a6356")
    assert stats.ts == 1795791601.5  # "+00:00" offsets as mitmproxy writes them


def test_har_bodies() -> None:
    raw = bytes(range(256))
    items = read(
        har.read_records,
        har_doc(
            {
                "method": "PUT",
                "url": "http://h/bin",
                "postData": {
                    "mimeType": "application/octet-stream",
                    "encoding": "base64",
                    "text": base64.b64encode(raw).decode(),
                },
            },
            {
                "method": "POST",
                "url": "http://h/empty",
                "postData": {"mimeType": "text/plain", "text": ""},
            },
            {
                "method": "POST",
                "url": "http://h/form",
                "postData": {
                    "mimeType": "application/x-www-form-urlencoded",
                    "params": [{"name": "a b", "value": "é&"}, {"name": "a b", "value": "2"}],
                },
            },
            {
                "method": "POST",
                "url": "http://h/notjson",
                "postData": {"mimeType": "application/json", "text": "{oops"},
            },
            {
                "method": "POST",
                "url": "http://h/json",
                "postData": {
                    "mimeType": "application/json; charset=utf-8",
                    "text": '{"n": 1.0, "s": "é"}',
                },
            },
        ),
    )
    binary, empty, form, not_json, as_json = records(items)
    assert binary.body_form == "b64" and binary.body_bytes == raw
    assert empty.body_form == "text" and empty.body_bytes == b""
    assert form.body_bytes == b"a+b=%C3%A9%26&a+b=2"
    assert form.header("content-type") == "application/x-www-form-urlencoded"
    assert not_json.body_form == "text" and not_json.body_bytes == b"{oops"
    assert as_json.body == {"n": 1.0, "s": "é"}
    assert as_json.body_bytes == '{"n": 1.0, "s": "é"}'.encode()  # sent as captured
    for record in (binary, empty, form, not_json, as_json):
        assert_round_trips(record)


def test_har_utf8_path_and_host_header_kept() -> None:
    (record,) = records(
        read(
            har.read_records,
            har_doc(
                {
                    "method": "GET",
                    "url": "https://api.example:8443/caf%C3%A9/ü?q=ß#frag",
                    "headers": [{"name": "Host", "value": "recorded.example"}],
                }
            ),
        )
    )
    assert record.path == "/caf%C3%A9/ü?q=ß"
    assert record.headers == (("Host", "recorded.example"),)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"url": "http://h/"}, "not an HTTP method"),
        ({"method": "GET"}, "'request.url' is missing"),
        ({"method": "GET", "url": "ws://h/socket"}, "not an http(s) URL"),
        (
            {"method": "GET", "url": "http://h/", "headers": [{"name": "A", "value": "x\r\nB: y"}]},
            "control character",
        ),
        (
            {
                "method": "POST",
                "url": "http://h/",
                "postData": {
                    "mimeType": "multipart/form-data; boundary=x",
                    "params": [{"name": "f"}],
                },
            },
            "cannot be rebuilt",
        ),
        (
            {
                "method": "POST",
                "url": "http://h/",
                "postData": {"text": "@@", "encoding": "base64"},
            },
            "not valid base64",
        ),
    ],
)
def test_har_bad_entries_are_problems_naming_the_entry(
    request_: dict[str, Any], message: str
) -> None:
    good = {"method": "GET", "url": "http://h/ok"}
    items = read(har.read_records, har_doc(good, request_, good))
    assert [type(i) for i in items] == [Record, InputProblem, Record]
    problem = items[1]
    assert isinstance(problem, InputProblem)
    assert problem.message.startswith("entry 2: ") and message in problem.message


def test_har_bad_start_time_and_entry_without_request() -> None:
    doc = orjson.loads(har_doc({"method": "GET", "url": "http://h/"}, started="yesterday"))
    doc["log"]["entries"].append({"startedDateTime": "2026-11-27T15:00:00Z"})
    first, second = read(har.read_records, orjson.dumps(doc))
    assert isinstance(first, InputProblem) and "ISO 8601" in first.message
    assert isinstance(second, InputProblem) and "no 'request'" in second.message


def test_har_cut_off_keeps_the_entries_before_the_cut() -> None:
    data = (LOGS / "passport-mitmproxy.har").read_bytes()
    cut = data[: data.index(b"/internal/allow-list")]
    items = read(har.read_records, cut)
    assert len(records(items[:-1])) == 4
    (problem,) = problems(items)
    assert "after entry 4" in problem.message and problem.source == "log"


# -- GoReplay ----------------------------------------------------------------------------------


def payload(
    kind: int, head: bytes, body: bytes = b"", pid: str = "a" * 24, ts: int = 10**18
) -> bytes:
    return f"{kind} {pid} {ts} -1\n".encode() + head + b"\r\n\r\n" + body + SEP


def post(body: bytes, extra: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}".encode()
    return b"POST /p HTTP/1.1\r\nHost: h\r\n" + extra + length


def test_gor_sample_requests_replayed_responses_skipped() -> None:
    items = read(gor.read_records, (LOGS / "passport.gor").read_bytes())
    got = records(items)
    assert [(r.method, r.path) for r in got] == [(r["method"], r["path"]) for r in DEMO]
    revocations = got[3]
    assert revocations.body == DEMO[3]["body"]  # de-chunked
    assert revocations.header("transfer-encoding") is None
    assert got[0].id == "0c2a5d11e7a840b39f1e6c24" and got[0].ts == 1795791600.0
    assert got[1].line > got[0].line > 0
    for record in got:
        assert_round_trips(record)


def test_gor_body_containing_the_separator_mid_line() -> None:
    body = b'{"note": "before' + SEP + b'after"}'
    chunked = (
        b"5\r\nab"
        + SEP[:3]
        + b"\r\n"
        + f"{len(SEP) - 3:x}".encode()
        + b"\r\n"
        + SEP[3:]
        + b"\r\n0\r\n\r\n"
    )
    data = (
        payload(1, post(body, b"Content-Type: application/json\r\n"), body)
        + payload(2, b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode(), body)
        + payload(1, b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked", chunked)
        + payload(1, b"GET /next HTTP/1.1")
    )
    first, chunked_record, after = records(read(gor.read_records, data))
    assert first.body_bytes == body and first.body_form == "text"  # not valid JSON: kept as text
    assert chunked_record.body_bytes == b"ab" + SEP
    assert after.path == "/next" and after.body_bytes is None


def test_gor_edge_cases() -> None:
    raw = bytes(range(256))
    data = (
        b"1 " + b"b" * 40 + b" 1795791600000000000\n"  # an old file: 40-char id, 3 fields
        b"GET /caf\xc3\xa9/\xff?q=1 HTTP/1.1\r\nX-A: 1\r\nX-A: 2\r\nX-Long: a\r\n  b\r\n\r\n"
        + SEP
        + payload(1, post(raw), raw)
        + payload(1, post(b""))
        + payload(3, b"HTTP/1.1 204 No Content\r\nContent-Length: 10")  # HEAD-like: no body
        + b"1 cc 5 -1\nDELETE /last HTTP/1.1\r\nHost: h\r\n\r\n"  # the file ends, no separator
    )
    utf8, binary, empty, last = records(read(gor.read_records, data))
    assert utf8.path == "/café/%FF?q=1" and utf8.id == "b" * 40 and utf8.ts == 1795791600.0
    assert utf8.headers == (("X-A", "1"), ("X-A", "2"), ("X-Long", "a b"))
    assert binary.body_form == "b64" and binary.body_bytes == raw
    assert empty.body_form == "text" and empty.body_bytes == b""
    assert last.method == "DELETE" and last.path == "/last" and last.ts == 5e-9
    for record in (utf8, binary, empty, last):
        assert_round_trips(record)


def test_gor_problems_name_line_and_byte_offset_and_reading_goes_on() -> None:
    good = payload(1, b"GET /ok HTTP/1.1")
    short = payload(1, post(b"x" * 20)[:-2] + b"5", b"x" * 20)  # Content-Length 5, body 20
    garbage = b"hello there\n" + b"GET /lost HTTP/1.1\r\n\r\n" + SEP
    bad_line = payload(1, b"GET /sp ace HTTP/1.1")
    data = good + short + good + garbage + good + bad_line + good
    items = read(gor.read_records, data)
    assert [type(i).__name__ for i in items] == [
        "Record",
        "InputProblem",
        "Record",
        "InputProblem",
        "Record",
        "InputProblem",
        "Record",
    ]
    short_problem, garbage_problem, line_problem = problems(items)
    assert short_problem.message.startswith(f"byte {len(good)}: ")
    assert "does not end where its length says" in short_problem.message
    assert short_problem.line == good.count(b"\n") + 1
    assert "not a GoReplay payload header line: b'hello there'" in garbage_problem.message
    assert "not an HTTP request line" in line_problem.message


def test_gor_record_cut_off_at_end_of_file() -> None:
    good = payload(1, b"GET /ok HTTP/1.1")
    body = b"y" * 100
    cut = payload(1, post(body), body)[:-60]
    for data, words in (
        (good + cut, "the body has"),
        (good + b"1 abc", "in a payload header line"),
        (good + b"1 abc 1 -1\nGET /x HTTP/1.1\r\nHost:", "HTTP head"),
        (
            good + b"1 abc 1 -1\nPUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab",
            "chunk",
        ),
    ):
        first, problem = read(gor.read_records, data)
        assert isinstance(first, Record)
        assert isinstance(problem, InputProblem), problem
        assert "cut off at the end of the file" in problem.message and words in problem.message
        assert problem.message.startswith(f"byte {len(good)}: ")


def test_gor_over_long_payload_is_skipped() -> None:
    body = b"z" * 5000
    data = payload(1, post(body), body) + payload(1, b"GET /after HTTP/1.1")
    problem, after = read(gor.read_records, data, limit=1024)
    assert isinstance(problem, InputProblem) and "longer than 1024 bytes" in problem.message
    assert isinstance(after, Record) and after.path == "/after"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "PUT"]),
            st.binary(max_size=300) | st.sampled_from([SEP, b"a" + SEP + b"b", SEP * 2]),
            st.booleans(),
        ),
        max_size=6,
    )
)
def test_gor_framing_recovers_every_generated_request(
    requests: list[tuple[str, bytes, bool]],
) -> None:
    data = b""
    for n, (method, body, chunked) in enumerate(requests):
        head = f"{method} /r/{n} HTTP/1.1\r\nHost: h".encode()
        if chunked:
            wire = b"".join(
                f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:7], body[7:]) if p
            )
            data += payload(1, head + b"\r\nTransfer-Encoding: chunked", wire + b"0\r\n\r\n")
        else:
            data += payload(1, head + f"\r\nContent-Length: {len(body)}".encode(), body)
        data += payload(2, f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}".encode(), body)
    got = records(read(gor.read_records, data))
    assert [r.path for r in got] == [f"/r/{n}" for n in range(len(requests))]
    for record, (_, body, _) in zip(got, requests, strict=True):
        assert record.body_bytes == body


# -- access logs -------------------------------------------------------------------------------

NGINX_LINE = (
    '203.0.113.9 - alice [27/Nov/2026:16:00:00 +0100] "GET /x?y=1 HTTP/1.1" 200 12 '
    '"https://ref.example/" "Mozilla/5.0 \\"quoted\\"" rt=0.003 uct="0.000"'
)


def test_nginx_sample() -> None:
    got = records(read(access.read_records, (LOGS / "passport-nginx.access.log").read_bytes()))
    assert len(got) == 8 and {r.method for r in got} == {"GET"}
    assert got[0].headers == (("User-Agent", "python-requests/2.32.3"),)
    assert got[0].ts == 1795791605.0 and got[0].line == 1
    assert got[4].path.startswith("/internal/allow-list/café-list/")  # \xC3\xA9 unescaped
    for record in got:
        assert_round_trips(record)


def test_alb_sample() -> None:
    got = records(read(access.read_records, (LOGS / "passport-alb.access.log").read_bytes()))
    assert len(got) == 5
    assert got[0].headers == (
        ("Host", "scorer.passport.example"),
        ("User-Agent", "python-requests/2.32.3"),
    )
    assert got[0].path == "/internal/embed/weights"
    assert got[0].ts == 1795791607.991  # request_creation_time, when the request came in


def test_access_lines() -> None:
    lines = [
        NGINX_LINE,
        '198.51.100.1 - - [27/Nov/2026:15:00:01 +0000] "POST /internal/check-bans HTTP/1.1" 200 5 "-" "-"',
        '198.51.100.1 - - [27/Nov/2026:15:00:02 +0000] "-" 400 0 "-" "-"',
        '198.51.100.1 - - [27/Nov/2026:15:00:03 +0000] "\\x16\\x03\\x01\\x00" 400 157 "-" "-"',
        "not a log line at all",
        '198.51.100.1 - - [31/Feb/2026:15:00:03 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
        "",
        '198.51.100.1 - - [27/Nov/2026:15:00:04 +0000] "HEAD /h HTTP/1.0" 200 0 "-" "-"',
    ]
    items = read(access.read_records, "\n".join(lines).encode() + b"\n")
    first, body, no_request, tls, garbage, bad_time, head = items
    assert isinstance(first, Record)
    assert first.headers == (("User-Agent", 'Mozilla/5.0 "quoted"'),)
    assert first.path == "/x?y=1" and first.ts == 1795791600.0  # 16:00 at +0100
    assert isinstance(body, InputProblem) and body.line == 2
    assert "do not record request bodies" in body.message and "POST" in body.message
    assert isinstance(no_request, InputProblem) and "no request line" in no_request.message
    assert isinstance(tls, InputProblem) and "not an HTTP request line" in tls.message
    assert (
        isinstance(garbage, InputProblem) and "not an nginx combined or AWS ALB" in garbage.message
    )
    assert isinstance(bad_time, InputProblem) and "not an nginx time" in bad_time.message
    assert isinstance(head, Record) and head.method == "HEAD" and head.line == 8


def test_access_over_long_line() -> None:
    long_line = NGINX_LINE.replace("/x?y=1", "/" + "a" * 3000).encode()
    problem, ok = read(access.read_records, long_line + b"\n" + NGINX_LINE.encode(), limit=512)
    assert isinstance(problem, InputProblem) and "longer than 512" in problem.message
    assert isinstance(ok, Record) and ok.line == 2


# -- fuzz: arbitrary bytes never raise ---------------------------------------------------------

_GOR_PIECES = st.sampled_from(
    [
        SEP,
        b"1 abc 1 -1\n",
        b"2 abc 1\n",
        b"GET / HTTP/1.1\r\n",
        b"\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"3\r\nabc\r\n",
        b"0\r\n\r\n",
        b"\xff\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.lists(_GOR_PIECES | st.binary(max_size=8)).map(b"".join))
def test_gor_fuzz(data: bytes) -> None:
    for item in read(gor.read_records, data, limit=256):
        assert isinstance(item, Record | InputProblem)
        if isinstance(item, Record):
            assert_round_trips(item)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(["GET", "POST", "", "G ET"]) | _JSON,
        "url": st.sampled_from(["http://h/a?b=1", "/rel", "ftp://x/", "http://h/\n"]) | _JSON,
        "headers": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["A", ":authority", "B:", ""]) | _JSON,
                    "value": st.text(max_size=5) | _JSON,
                }
            )
        )
        | _JSON,
        "postData": st.fixed_dictionaries(
            {},
            optional={
                "mimeType": st.sampled_from(
                    ["application/json", "", "application/x-www-form-urlencoded", "\ud800"]
                ),
                "text": st.text(max_size=10) | _JSON,
                "encoding": st.sampled_from(["base64", "gzip"]),
                "params": _JSON,
            },
        )
        | _JSON,
    },
)


@settings(max_examples=120, deadline=None)
@given(
    st.binary(max_size=300)
    | st.lists(st.fixed_dictionaries({"request": _REQUESTS}) | _JSON, max_size=4).map(
        lambda entries: json.dumps({"log": {"entries": entries}}).encode()
    )
)
def test_har_fuzz(data: bytes) -> None:
    for item in read(har.read_records, data, limit=256):
        assert isinstance(item, Record | InputProblem)
        if isinstance(item, Record):
            assert_round_trips(item)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300) | st.text(max_size=200).map(lambda t: (NGINX_LINE[:60] + t).encode())
)
def test_access_fuzz(data: bytes) -> None:
    for item in read(access.read_records, data, limit=256):
        assert isinstance(item, Record | InputProblem)
        if isinstance(item, Record):
            assert_round_trips(item)


# -- detection ---------------------------------------------------------------------------------

JSONL = b'{"method": "GET", "path": "/a"}\n'
ONE_LINE_HAR = har_doc({"method": "GET", "url": "http://h/a"})


def detected(path: Path) -> str | None:
    stream, found, _ = open_detected(str(path), "auto")
    stream.close()
    return found


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("capture.har", b"{}", "har"),  # the name decides when it is unambiguous
        ("capture.gor", b"", "gor"),
        ("traffic.ndjson", b"", "jsonl"),
        ("export.json", json.dumps(orjson.loads(ONE_LINE_HAR), indent=2).encode(), "har"),
        ("export.json", ONE_LINE_HAR, "har"),  # one line, still a document
        ("late.json", b'{\n "version": 1,\n "log": {\n  "entries": []}}\n', "har"),
        ("records.json", JSONL * 3, "jsonl"),
        ("records.txt", b"\n\n" + JSONL, "jsonl"),
        ("fiddler.json", b"\xef\xbb\xbf" + ONE_LINE_HAR, "har"),
        (
            "requests",
            b"1 0c2a5d11e7a840b39f1e6c24 1795791600000000000 -1\nGET / HTTP/1.1\r\n",
            "gor",
        ),
        ("access.log", (LOGS / "passport-nginx.access.log").read_bytes(), "access"),
        ("elb.log", (LOGS / "passport-alb.access.log").read_bytes(), "access"),
        ("empty.log", b"", "jsonl"),
        ("notes.txt", b"hello\n", None),
        ("pretty.json", b'{\n  "a": 1\n}\n', None),
    ],
)
def test_detection(tmp_path: Path, name: str, content: bytes, expected: str | None) -> None:
    plain = tmp_path / name
    plain.write_bytes(content)
    assert detected(plain) == expected
    compressed = tmp_path / f"{name}.gz"
    compressed.write_bytes(gzip.compress(content))
    assert detected(compressed) == expected


def test_every_sample_is_detected_and_gzip_by_magic(tmp_path: Path) -> None:
    expected = {".har": "har", ".gor": "gor", ".log": "access", ".jsonl": "jsonl"}
    for sample in LOGS.iterdir():
        if sample.suffix in expected:
            assert detected(sample) == expected[sample.suffix], sample
    misnamed = tmp_path / "traffic.log"  # gzip without a .gz name is still unpacked
    misnamed.write_bytes(gzip.compress((LOGS / "passport.gor").read_bytes()))
    assert detected(misnamed) == "gor"
    assert len(records(list(iter_inputs([str(misnamed)], 1 << 20)))) == 13


def test_unknown_format_is_an_input_error_before_anything_starts(tmp_path: Path) -> None:
    unknown = tmp_path / "notes.txt"
    unknown.write_bytes(b"dear diary\n")
    with pytest.raises(InputError, match=r"notes\.txt: not a log format .* b'dear diary'"):
        validate_inputs([str(LOGS / "passport.gor"), str(unknown)])
    validate_inputs([str(unknown)], "jsonl")  # forced: read as JSONL, each line a problem
    (problem,) = list(iter_inputs([str(unknown)], 1 << 20, "jsonl"))
    assert isinstance(problem, InputProblem) and not isinstance(problem, UnreadableInput)
    (whole,) = list(iter_inputs([str(unknown)], 1 << 20))
    assert isinstance(whole, UnreadableInput) and "not a log format" in whole.message
    fake_gz = tmp_path / "a.gor.gz"
    fake_gz.write_bytes(b"plain")
    with pytest.raises(InputError, match="not a valid gzip file"):
        validate_inputs([str(fake_gz)])


def test_forced_format_and_files_in_order(tmp_path: Path) -> None:
    renamed = tmp_path / "capture.jsonl"  # the name says JSONL; --format says what it is
    renamed.write_bytes((LOGS / "passport-mitmproxy.har").read_bytes())
    assert len(records(list(iter_inputs([str(renamed)], 1 << 20, "har")))) == 8
    mixed = list(
        iter_inputs([str(LOGS / "passport-alb.access.log"), str(LOGS / "passport.gor")], 1 << 20)
    )
    assert [r.source for r in records(mixed)] == [str(LOGS / "passport-alb.access.log")] * 5 + [
        str(LOGS / "passport.gor")
    ] * 13


def test_a_gor_request_without_a_length_has_no_body_and_stray_bytes_are_a_problem() -> None:
    bare = b"GET /a HTTP/1.1\r\nHost: h"
    data = (
        payload(1, bare)
        + payload(1, bare, b"GET /merged HTTP/1.1\r\nHost: h\r\n\r\n")
        + payload(1, bare, b"\r\n")
        + payload(1, post(b"{}"), b"{}")
    )
    items = read(gor.read_records, data)
    assert [type(i).__name__ for i in items] == ["Record", "InputProblem", "Record", "Record"]
    first, _, blank, posted = items
    assert isinstance(first, Record) and first.body_bytes is None
    assert isinstance(blank, Record) and blank.body_bytes is None
    assert isinstance(posted, Record) and posted.body_bytes == b"{}"
    problem = items[1]
    assert isinstance(problem, InputProblem)
    assert "neither Content-Length nor Transfer-Encoding" in problem.message
