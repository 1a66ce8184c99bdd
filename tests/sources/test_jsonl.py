"""The native JSONL reader: every record or a problem naming file and line; streamed."""

from __future__ import annotations

import base64
import gzip
import io
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.errors import InputError
from shadow.model import InputProblem, Record
from shadow.sources.jsonl import read_records, record_from_dict
from shadow.sources.opening import iter_inputs, validate_inputs


def read(data: bytes, limit: int = 1 << 20) -> list[Record | InputProblem]:
    return list(read_records(io.BytesIO(data), "log", limit))


def test_full_record() -> None:
    (record,) = read(
        b'{"method": "post", "path": "/internal/check-bans?x=1", '
        b'"headers": [["X-A", "1"], ["X-A", "2"]], "body": [{"a": null}], "name": "Check Bans",'
        b' "id": 42, "ts": 1732200000.123, "lane": "0xaa", "auth": "internal",'
        b' "vars": {"address": "0xaa"}}\n'
    )
    assert isinstance(record, Record)
    assert record.method == "POST" and record.id == "42" and record.line == 1
    assert record.headers == (("X-A", "1"), ("X-A", "2"))
    assert record.body_bytes == b'[{"a": null}]' and record.has_json_body  # as recorded
    assert record.body == [{"a": None}]
    assert orjson.loads(orjson.dumps(record.to_dict()))["body"] == [{"a": None}]


def test_bodies_and_round_trip() -> None:
    raw = bytes(range(256))
    b64 = base64.b64encode(raw).decode()
    items = read(
        f'{{"method": "PUT", "path": "/b", "body_b64": "{b64}"}}\n'
        '{"method": "PUT", "path": "/t", "body_text": "plain é"}\n'
        '{"method": "PUT", "path": "/n", "body": null}\n'.encode()
    )
    binary, text, null = items
    assert isinstance(binary, Record) and binary.body_bytes == raw
    assert binary.to_dict()["body_b64"] == b64
    assert isinstance(text, Record) and text.body_bytes == "plain é".encode()
    assert isinstance(null, Record) and null.has_json_body and null.body_bytes == b"null"
    for record in (binary, text, null):
        assert isinstance(record, Record)
        assert record_from_dict(record.to_dict()).body_bytes == record.body_bytes


def test_absolute_url_keeps_only_path_and_query() -> None:
    (record,) = read(b'{"method": "GET", "path": "http://evil.example:9/x?q=1"}\n')
    assert isinstance(record, Record) and record.path == "/x?q=1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"path": "/"}', "'method' is required"),
        (b'{"method": "GET"}', "'path' is required"),
        (b'{"method": "GET", "path": "x"}', "must start with '/'"),
        (b'{"method": "GET", "path": "/", "headers": 3}', "'headers' must be"),
        (b'{"method": "GET", "path": "/", "headers": {"A": "x\\r\\nB: y"}}', "invalid header"),
        (b'{"method": "GET", "path": "/", "body": 1, "body_text": "x"}', "at most one"),
        (b'{"method": "GET", "path": "/", "body_b64": "@@"}', "not valid base64"),
        (b'{"method": "GET", "path": "/", "ts": "now"}', "'ts' must be a number"),
        (b'{"method": "GET", "path": "/", "vars": []}', "'vars' must be an object"),
    ],
)
def test_bad_records_are_problems_with_line_numbers(line: bytes, message: str) -> None:
    items = read(b'{"method": "GET", "path": "/ok"}\n\n' + line + b"\n")
    assert isinstance(items[0], Record)
    problem = items[1]
    assert isinstance(problem, InputProblem)
    assert problem.line == 3 and problem.source == "log" and message in problem.message


def test_over_long_line_is_skipped_without_reading_it_whole() -> None:
    huge = b'{"method": "GET", "path": "/' + b"a" * 10_000 + b'"}\n'
    items = read(huge + b'{"method": "GET", "path": "/next"}\n', limit=1024)
    assert isinstance(items[0], InputProblem) and "longer than 1024" in items[0].message
    assert isinstance(items[1], Record) and items[1].path == "/next" and items[1].line == 2


def test_last_line_without_newline_and_cut_record() -> None:
    items = read(b'{"method": "GET", "path": "/a"}\n{"method": "GET", "pa')
    assert isinstance(items[0], Record)
    assert isinstance(items[1], InputProblem) and items[1].line == 2


def test_iter_inputs_gz_and_missing(tmp_path: Path) -> None:
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"method": "GET", "path": "/gz"}\n'))
    broken = tmp_path / "b.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    items = list(iter_inputs([str(gz), str(broken)], 1 << 20))
    assert isinstance(items[0], Record) and items[0].path == "/gz"
    assert isinstance(items[1], InputProblem) and items[1].source == str(broken)
    with pytest.raises(InputError, match=r"missing\.jsonl"):
        validate_inputs([str(gz), str(tmp_path / "missing.jsonl")])
    with pytest.raises(InputError, match="directory"):
        validate_inputs([str(tmp_path)])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for item in read(data, limit=128):
        assert isinstance(item, Record | InputProblem)


def test_merge_by_ts_interleaves_files_in_recorded_order(tmp_path: Path) -> None:
    from shadow.sources.opening import merge_by_ts

    first = tmp_path / "a.jsonl"
    first.write_bytes(
        b'{"method": "GET", "path": "/a1", "ts": 1}\n'
        b'{"method": "GET", "path": "/a2", "ts": 4}\n'
        b"broken\n"
        b'{"method": "GET", "path": "/a3", "ts": 6}\n'
    )
    second = tmp_path / "b.jsonl.gz"
    second.write_bytes(
        gzip.compress(
            b'{"method": "GET", "path": "/b1", "ts": 2}\n'
            b'{"method": "GET", "path": "/b2"}\n'
            b'{"method": "GET", "path": "/b3", "ts": 5}\n'
        )
    )
    items = list(merge_by_ts([str(first), str(second)], 1 << 20))
    order = [i.path if isinstance(i, Record) else f"problem:{i.line}" for i in items]
    assert order == ["/a1", "/b1", "/b2", "/a2", "problem:3", "/b3", "/a3"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 18446744073709551616, "f": 1.50, "e": 1E2}',
        b'{"b": 1, "a": {"d": [1 , 2], "c": null}}',
        b'"caf\\u00e9 \\/"',
        b"-0.0",
        b"[ ]",
    ],
)
def test_a_json_body_is_sent_as_the_bytes_the_line_holds(body: bytes) -> None:
    line = b'{"method": "POST", "body" :  ' + body + b' , "path": "/x"}\n'
    (record,) = read(line)
    assert isinstance(record, Record)
    assert record.body_bytes == body and record.has_json_body
    assert orjson.dumps(record.to_dict()["body"]) == body  # shown as recorded too


def test_of_duplicate_body_keys_the_last_is_sent_as_parsers_keep_it() -> None:
    (record,) = read(b'{"method": "POST", "path": "/x", "body": 1, "body": [2]}\n')
    assert isinstance(record, Record) and record.body_bytes == b"[2]" and record.body == [2]


@pytest.mark.parametrize("method", ["G\u00c9T", "\u017fet", "GET\u0130"])
def test_a_method_that_is_not_ascii_is_a_problem(method: str) -> None:
    (problem,) = read(orjson.dumps({"method": method, "path": "/x"}) + b"\n")
    assert isinstance(problem, InputProblem) and "ASCII" in problem.message
