"""Examples kept for the report: clipped to a few kilobytes each, with a curl line to replay.

An events file may carry request bodies of megabytes and diff values that are whole objects;
a report only needs enough to recognise the difference, so every kept example is bounded.
The curl line is the event's own `curl` field, or made the same way (`shadow.events.curl`) for
events without one: the target is `$TARGET` and each redacted header a `$NAME` placeholder, so
no secret is ever written into the report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from shadow.events.curl import curl_command

MAX_REQUEST_BYTES = 8192
MAX_DIFFS = 50
MAX_VALUE_BYTES = 2048
EXCERPT_CHARS = 400


def dumps(value: Any) -> bytes:
    """JSON bytes of an event value, also of what only the fallback parser reads (a lone
    surrogate: written as its `\\u` escape)."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, default=str).encode()


def _excerpt(text: str, total_bytes: int) -> str:
    return f"{text[:EXCERPT_CHARS]}… ({total_bytes} bytes, clipped)"


def clip_value(value: Any) -> tuple[Any, bool]:
    """`value`, or a short text excerpt of it when its JSON is longer than MAX_VALUE_BYTES."""
    if isinstance(value, bool | int | float) or value is None:
        return value, False
    raw = dumps(value)
    if len(raw) <= MAX_VALUE_BYTES:
        return value, False
    return _excerpt(raw.decode("utf-8", "replace"), len(raw)), True


def clip_request(request: Any) -> dict[str, Any]:
    if not isinstance(request, Mapping):
        return {}
    out = dict(request)
    raw = dumps(out)
    if len(raw) <= MAX_REQUEST_BYTES:
        return out
    for key in ("body", "body_text", "body_b64"):
        if key in out:
            body = out.pop(key)
            text = body if isinstance(body, str) else dumps(body).decode("utf-8", "replace")
            out["body_excerpt"] = _excerpt(text, len(text.encode()))
            out["body_form"] = key
    if len(dumps(out)) > MAX_REQUEST_BYTES:  # huge headers or path: keep the request line
        out = {k: out[k] for k in ("method", "path", "name", "id") if k in out}
        out["clipped"] = True
    return out


def clip_diffs(diffs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for diff in diffs[:MAX_DIFFS]:
        if not isinstance(diff, Mapping):
            continue
        item = dict(diff)
        for side in ("primary", "candidate"):
            item[side], clipped = clip_value(item.get(side))
            if clipped:
                item["clipped"] = True
        out.append(item)
    return out


def make_example(event: Mapping[str, Any], run_id: str, primary_url: str | None) -> dict[str, Any]:
    """What the report keeps of a `mismatch` or `error` event."""
    request = clip_request(event.get("request"))
    example: dict[str, Any] = {
        "run_id": run_id,
        "seq": event.get("seq"),
        "id": event.get("id"),
        "request": request,
        "status": event.get("status"),
        "latency_ms": event.get("latency_ms"),
    }
    diffs = event.get("diffs")
    if isinstance(diffs, list):
        example["diffs"] = clip_diffs(diffs)
        example["diff_count"] = len(diffs)
    for key in ("side", "error"):
        if key in event:
            example[key] = event[key]
    if isinstance(event.get("message"), str):
        example["message"] = event["message"][:MAX_VALUE_BYTES]
    given = event.get("curl")
    if isinstance(given, str) and len(given) <= MAX_REQUEST_BYTES:
        example["curl"] = given
    else:  # events from before `curl` was a field, or a command too long to keep
        example["curl"] = _curl(request)
    if primary_url:
        example["target_url"] = primary_url
    return example


def _curl(request: Mapping[str, Any]) -> str | None:
    try:
        return curl_command(request)
    except (TypeError, ValueError, orjson.JSONEncodeError):  # a request no record looks like
        return None
