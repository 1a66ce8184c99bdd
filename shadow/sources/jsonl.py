"""The native format: one JSON object per line (README "Request logs").

A `body` given as a JSON value is sent as the bytes the line holds for it (number text, key
order, spacing), not as the value written again: JSON has no limit on a number's digits,
and a parser's floats would send `1.8446744073709552e+19` for `18446744073709551616`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import orjson

from shadow.model import InputProblem, Item, Record, json_body_bytes
from shadow.sources.answers import answer_from_dict, recorded_answer

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def read_records(stream: BinaryIO, source: str, max_record_bytes: int) -> Iterator[Item]:
    """Records of a JSONL stream; blank lines skipped; an over-long line is skipped unread."""
    number = 0
    while True:
        line = stream.readline(max_record_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_record_bytes and not line.endswith(b"\n"):
            _skip_rest_of_line(stream, max_record_bytes)
            yield InputProblem(source, number, f"record longer than {max_record_bytes} bytes")
            continue
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield InputProblem(source, number, f"not valid JSON: {exc}")
            continue
        try:
            raw = raw_member(line, "body") if isinstance(data, dict) and "body" in data else None
            yield record_from_dict(data, source, number, raw)
        except ValueError as exc:
            yield InputProblem(source, number, str(exc))


def _skip_rest_of_line(stream: BinaryIO, chunk_bytes: int) -> None:
    while True:
        chunk = stream.readline(chunk_bytes)
        if not chunk or chunk.endswith(b"\n"):
            return


def raw_member(line: bytes, key: str) -> bytes | None:
    """The bytes of member `key`'s value in a JSON object `line` already known to be valid
    (the last one, as parsers keep the last of duplicate keys); None if it cannot be found."""
    text = line.decode("utf-8")
    i = _skip(text, 0) + 1  # past "{"
    found = None
    try:
        while (i := _skip(text, i)) < len(text) and text[i] != "}":
            name, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
            start = _skip(text, _skip(text, i) + 1)  # past ":"
            _, end = _DECODER.raw_decode(text, start)
            if name == key:
                found = text[start:end]
            i = _skip(text, end)
            i += text[i] == ","
    except (ValueError, RecursionError, IndexError):
        return None  # nesting deeper than this parser goes: the value is written again
    return found.encode("utf-8") if found is not None else None


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def record_from_dict(
    data: Any, source: str = "", line: int = 0, raw_body: bytes | None = None
) -> Record:
    """A Record from a native JSON object; ValueError says what is wrong with it.
    `raw_body` is the text the log holds for a JSON `body`, sent as it is when given."""
    if not isinstance(data, dict):
        raise ValueError(f"a record must be a JSON object, not {type(data).__name__}")
    method = data.get("method")
    if not isinstance(method, str) or not method.isascii() or not method.isalpha():
        raise ValueError("'method' is required and must be a word such as GET (ASCII letters)")
    path = _path(data.get("path"))
    body_keys = [k for k in ("body", "body_text", "body_b64") if k in data]
    if len(body_keys) > 1:
        raise ValueError(f"at most one of body, body_text, body_b64; found {body_keys}")
    body_form, body, body_bytes = _body(data, body_keys[0] if body_keys else "")
    if body_form == "json" and raw_body is not None:
        body_bytes = raw_body
    return Record(
        method=method.upper(),
        path=path,
        headers=_headers(data.get("headers")),
        body=body,
        body_bytes=body_bytes,
        body_form=body_form,
        name=_optional_str(data, "name"),
        id=_optional_str(data, "id", allow_number=True),
        ts=_ts(data.get("ts")),
        lane=_optional_str(data, "lane", allow_number=True),
        auth=_optional_str(data, "auth"),
        vars=_vars(data.get("vars")),
        source=source,
        line=line,
        expect_status=_status(data.get("expect_status")),
        **recorded_answer(lambda r: answer_from_dict(r, _headers), data.get("response")),
    )


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("'path' is required and must be a string such as /items?x=1")
    if value.startswith("/"):
        return value
    # An absolute URL never chooses where the request goes: keep only its path and query.
    parts = urlsplit(value)
    if parts.scheme in ("http", "https"):
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    raise ValueError(f"'path' must start with '/': {value[:80]!r}")


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    pairs: list[tuple[Any, Any]]
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise ValueError("'headers' must be an object or a list of [name, value] pairs")
    for name, item in pairs:
        if not isinstance(name, str) or not isinstance(item, str):
            raise ValueError("header names and values must be strings")
        if not name or any(c in name for c in " :\r\n") or "\r" in item or "\n" in item:
            raise ValueError(f"invalid header {name[:40]!r}")
    return tuple(pairs)


def _body(data: Mapping[str, Any], key: str) -> tuple[str, Any, bytes | None]:
    if key == "body":
        return "json", data["body"], json_body_bytes(data["body"])
    if key == "body_text":
        if not isinstance(data[key], str):
            raise ValueError("'body_text' must be a string")
        return "text", None, data[key].encode("utf-8")
    if key == "body_b64":
        try:
            return "b64", None, base64.b64decode(data[key], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ValueError("'body_b64' is not valid base64") from None
    return "", None, None


def _optional_str(data: Mapping[str, Any], key: str, allow_number: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if allow_number and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    return value


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("'ts' must be a number of seconds")
    return float(value)


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError("'expect_status' must be an HTTP status such as 404")
    return value


def _vars(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("'vars' must be an object")
    return value
