"""The primary's answers a capture recorded (HAR `response`, a JSONL record's `response`, a
GoReplay type-2 payload).

An answer is kept as the candidate's would arrive: its body decoded (base64 undone, and a
gzip or deflate body that a capture kept compressed inflated, as the HTTP client inflates the
candidate's), so equal answers compare equal under `shadow run --recorded`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from shadow.model import Headers, Response


def recorded_answer(read: Callable[[Any], Response | None], data: Any) -> dict[str, Any]:
    """A Record's `response` and `response_problem` fields from a capture's answer `data`
    (None: none recorded): a bad answer is kept as its problem, so a run that does not read
    answers (without `--recorded`) replays the request as before."""
    if data is None:
        return {}
    try:
        return {"response": read(data)}
    except ValueError as exc:
        return {"response_problem": str(exc)}


def answer_from_dict(data: Any, headers_of: Any) -> Response:
    """A JSONL record's `response` (status, headers, one of body/body_text/body_b64);
    ValueError says what is wrong with it. `headers_of` reads headers as a record's."""
    if not isinstance(data, dict):
        raise ValueError("'response' must be an object with a 'status'")
    status = data.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError("'response.status' is required and must be an HTTP status such as 200")
    headers: Headers = headers_of(data.get("headers"))
    keys = [k for k in ("body", "body_text", "body_b64") if k in data]
    if len(keys) > 1:
        raise ValueError(f"'response' has at most one of body, body_text, body_b64; found {keys}")
    body = _body(data, keys[0]) if keys else b""
    return Response(status, headers, _inflated(body, headers), _latency(data, "latency_ms"))


def _body(data: Mapping[str, Any], key: str) -> bytes:
    value = data[key]
    if key == "body":
        return orjson.dumps(value)
    if not isinstance(value, str):
        raise ValueError(f"'response.{key}' must be a string")
    if key == "body_text":
        return value.encode("utf-8")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("'response.body_b64' is not valid base64") from None


def answer_from_har(response: Any, headers_of: Any, time_ms: Any = None) -> Response | None:
    """A HAR entry's `response` (`time_ms`: the entry's `time`), None for status 0 (no answer
    came); ValueError says what is wrong with it."""
    if not isinstance(response, dict):
        raise ValueError("'response' must be an object")
    status = response.get("status")
    if status == 0:
        return None
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError("'response.status' must be an HTTP status such as 200")
    headers: Headers = tuple(headers_of(response.get("headers")))
    content = response.get("content") or {}
    if not isinstance(content, dict):
        raise ValueError("'response.content' must be an object")
    text, encoding = content.get("text"), content.get("encoding")
    latency_ms = _latency({"time": time_ms}, "time")
    if text is None:
        return Response(status, headers, b"", latency_ms)
    if not isinstance(text, str):
        raise ValueError("'response.content.text' must be a string")
    if encoding == "base64":
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("'response.content.text' is not valid base64") from None
    elif encoding in (None, ""):
        body = text.encode("utf-8", "surrogatepass")
    else:
        raise ValueError(f"unknown response content encoding {str(encoding)[:20]!r}")
    return Response(status, headers, _inflated(body, headers), latency_ms)


def answer_from_http(status: int, headers: Headers, body: bytes, latency_ms: float) -> Response:
    """An answer read off the wire (a `.gor` type-2 payload, its body de-chunked); ValueError
    when a compressed body cannot be inflated."""
    return Response(status, headers, _inflated(body, headers), latency_ms)


def _latency(data: Mapping[str, Any], key: str) -> float:
    """The recorded answer's latency in ms (HAR `time`, a JSONL `response.latency_ms`); 0 when
    the capture did not time it (HAR writes -1 for a time it does not know)."""
    value = data.get(key)
    if value is None or value == -1:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"'{key}' must be a number of milliseconds, not {str(value)[:20]!r}")
    return float(value)


def _inflated(body: bytes, headers: Headers) -> bytes:
    """The body as the HTTP client hands the candidate's over: a gzip or deflate body the
    capture kept compressed is inflated (most captures keep it decoded already)."""
    coding = next((v for k, v in headers if k.lower() == "content-encoding"), "").strip().lower()
    try:
        if coding in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
            return gzip.decompress(body)
        if coding == "deflate" and body[:1] == b"\x78":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error):
        raise ValueError(f"the recorded {coding} body cannot be inflated") from None
    return body
