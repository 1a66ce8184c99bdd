"""The primary's answers a capture recorded, read from HAR entries and JSONL records."""

from __future__ import annotations

import base64
import gzip
import zlib
from typing import Any

import orjson
import pytest

from shadow.model import Record, Response
from shadow.sources.har import record_from_entry
from shadow.sources.jsonl import record_from_dict

REQUEST = {"method": "GET", "url": "http://legacy.example/users/1"}


def har_answer(response: Any, **entry: Any) -> Response | None:
    return har_record(response, **entry).response


def har_record(response: Any, **entry: Any) -> Record:
    return record_from_entry({"request": REQUEST, "response": response, **entry})


def jsonl_answer(response: Any) -> Response | None:
    return jsonl_record(response).response


def jsonl_record(response: Any) -> Record:
    return record_from_dict({"method": "GET", "path": "/users/1", "response": response})


def test_a_har_answer_keeps_status_headers_body_and_time() -> None:
    answer = har_answer(
        {
            "status": 201,
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "content": {"mimeType": "application/json", "text": '{"id": 1}'},
        },
        time=12.5,
    )
    assert answer == Response(201, (("Content-Type", "application/json"),), b'{"id": 1}', 12.5)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_compressed_body_kept_as_base64_is_inflated(coding: str) -> None:
    body = b'{"items": [1, 2]}'
    packed = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    answer = har_answer(
        {
            "status": 200,
            "headers": [{"name": "Content-Encoding", "value": coding}],
            "content": {"text": base64.b64encode(packed).decode(), "encoding": "base64"},
        }
    )
    assert answer is not None and answer.body == body


def test_a_decoded_body_under_content_encoding_is_kept_as_it_is() -> None:
    # Devtools write the decoded text whatever Content-Encoding said.
    answer = har_answer(
        {
            "status": 200,
            "headers": [{"name": "Content-Encoding", "value": "gzip"}],
            "content": {"text": '{"a": 1}'},
        }
    )
    assert answer is not None and answer.body == b'{"a": 1}'


def test_a_har_entry_without_an_answer_has_none() -> None:
    assert record_from_entry({"request": REQUEST}).response is None
    assert har_answer({"status": 0, "headers": [], "content": {}}) is None  # no answer came


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ("200", "'response' must be an object"),
        ({"status": 99}, "HTTP status"),
        ({"status": 200, "content": {"text": "%%", "encoding": "base64"}}, "not valid base64"),
        ({"status": 200, "content": {"text": "x", "encoding": "zip"}}, "unknown response"),
        (
            {
                "status": 200,
                "headers": [{"name": "Content-Encoding", "value": "gzip"}],
                "content": {"text": base64.b64encode(b"\x1f\x8bxx").decode(), "encoding": "base64"},
            },
            "cannot be inflated",
        ),
    ],
)
def test_a_bad_har_answer_says_what_is_wrong(response: Any, message: str) -> None:
    # Kept as the answer's problem (an input error under --recorded): the request still reads.
    record = har_record(response)
    assert record.response is None and record.path == "/users/1"
    assert message in record.response_problem


def test_a_jsonl_answer_takes_a_body_in_any_request_form() -> None:
    for key, value in (
        ("body", {"id": 1}),
        ("body_text", '{"id":1}'),
        ("body_b64", base64.b64encode(b'{"id":1}').decode()),
    ):
        answer = jsonl_answer({"status": 200, "headers": {"X-A": "1"}, key: value})
        assert answer == Response(200, (("X-A", "1"),), b'{"id":1}', 0.0)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ([200], "'response' must be an object"),
        ({"headers": {}}, "'response.status' is required"),
        ({"status": True}, "'response.status' is required"),
        ({"status": 200, "body": 1, "body_text": "1"}, "at most one of"),
        ({"status": 200, "body_b64": "%%"}, "not valid base64"),
        ({"status": 200, "body_text": 3}, "must be a string"),
        ({"status": 200, "latency_ms": "fast"}, "number of milliseconds"),
        ({"status": 200, "headers": "x"}, "'headers' must be"),
    ],
)
def test_a_bad_jsonl_answer_says_what_is_wrong(response: Any, message: str) -> None:
    record = jsonl_record(response)
    assert record.response is None and record.method == "GET"
    assert message in record.response_problem


def test_a_kept_answer_reads_back_as_it_was() -> None:
    for body, media in ((b'{"id":1}', "application/json"), (b"hi", "text/plain"), (b"\xff", "")):
        headers = (("Content-Type", media),) if media else ()
        answer = Response(200, headers, body, 3.0)
        line = orjson.dumps(
            record_from_dict({"method": "GET", "path": "/", "response": answer.to_dict()}).to_dict(
                keep_response=True
            )
        )
        assert record_from_dict(orjson.loads(line)).response == answer
