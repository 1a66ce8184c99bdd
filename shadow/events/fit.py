"""Keeping an exchange's event line under `[replay] max_event_bytes`, saying what was cut.

Two large answers that differ in one big value, or in many places, would make a line of
hundreds of megabytes (and the memory to build it). When an event is over the limit, it is cut
in this order, each step only if the line is still too long, and its `truncated` field lists
the steps taken:

1. `values`: a difference's side larger than its share of the limit becomes
   `{"omitted_bytes": N}`;
2. `diffs`: the differences that do not fit are left out (`diffs_total` keeps the count);
3. `request`: the request's body, headers and `curl` are left out (`omitted_bytes`), its path
   and the endpoint's name cut to their first 200 characters.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_MIN_VALUE_SHARE = 256
_PATH_CHARS = 200
_SIDES = ("primary", "candidate")


def json_size(value: Any) -> int:
    """The bytes `value` takes as JSON (a value orjson refuses counts by its text form)."""
    try:
        return len(orjson.dumps(value, option=_OPTIONS))
    except (orjson.JSONEncodeError, TypeError):
        return len(repr(value).encode("utf-8", "replace"))


def mark(fields: dict[str, Any], step: str) -> None:
    steps = fields.setdefault("truncated", [])
    if step not in steps:
        steps.append(step)


def fit_event(fields: dict[str, Any], limit: int) -> dict[str, Any]:
    """`fields` if its JSON fits in `limit` bytes, else a copy cut down as the module says."""
    if json_size(fields) <= limit:
        return fields
    out = dict(fields)
    diffs = out.get("diffs")
    if diffs:
        _shrink_values(out, diffs, max(_MIN_VALUE_SHARE, limit // (4 * len(diffs))))
        if json_size(out) > limit:
            _drop_diffs(out, limit)
    if json_size(out) > limit and isinstance(out.get("request"), dict):
        request = out["request"]
        out["request"] = {
            "method": request.get("method"),
            "path": str(request.get("path", ""))[:_PATH_CHARS],
            "omitted_bytes": json_size(request),
        }
        if "curl" in out:
            out["curl"] = None
        if isinstance(out.get("endpoint"), str):
            out["endpoint"] = out["endpoint"][:_PATH_CHARS]  # a record's own name may be long
        mark(out, "request")
    return out


def _shrink_values(out: dict[str, Any], diffs: list[dict[str, Any]], share: int) -> None:
    shrunk = []
    for diff in diffs:
        copy = dict(diff)
        for side in _SIDES:
            size = json_size(copy.get(side))
            if size > share:
                copy[side] = {"omitted_bytes": size}
                mark(out, "values")
        shrunk.append(copy)
    out["diffs"] = shrunk


def _drop_diffs(out: dict[str, Any], limit: int) -> None:
    diffs = out["diffs"]
    out.setdefault("diffs_total", len(diffs))
    mark(out, "diffs")
    out["diffs"] = []
    room = limit - json_size(out)
    kept = []
    for diff in diffs:
        room -= json_size(diff) + 1  # and its comma
        if room < 0:
            break
        kept.append(diff)
    out["diffs"] = kept
