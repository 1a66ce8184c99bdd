"""Rewriting one request per target: the lane's correlated values where the request holds them.

A request refers to a value in a path segment (or the whole path, for a `Location` such as
`/orders/1001`), a query value, a header value, or a JSON body member; each holding exactly
the recorded value's text is given the target's own. A `{NAME}` placeholder (a `[synth]`
scenario step naming a capture) is filled with the value the capture last gave in the lane.
Nothing is touched unless something matches: the record goes out byte for byte as recorded.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit

import orjson

from shadow.model import HOP_BY_HOP_HEADERS, Record
from shadow.replay.correlate.state import Entry, LaneState, Rewrite, value_text

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Finder:
    """Looks up the entry a piece of a request refers to, and notes each use."""

    def __init__(self, state: LaneState, names: frozenset[str], targets: tuple[str, ...]) -> None:
        self.state = state
        self.names = names  # capture names a placeholder may use
        self.targets = targets
        self.changes: list[dict[str, Any]] = []
        self.missing: list[tuple[str, str]] = []

    def exact(self, text: str, place: str) -> Entry | None:
        entry = self.state.by_text.get(text)
        if entry is not None:
            self.use(entry, place, entry.recorded)
        return entry

    def use(self, entry: Entry, place: str, recorded: Any) -> None:
        entry.confirmed = True
        sent = {t: entry.sent.get(t, entry.recorded) for t in self.targets}
        self.changes.append(
            {"place": place, "name": entry.name, "recorded": recorded, "sent": sent}
        )

    def fill(self, text: str, place: str) -> dict[str, str] | None:
        """`text` with its `{NAME}` placeholders filled per target, or None if it has none."""
        if "{" not in text or not self.names:
            return None
        found = [m for m in _PLACEHOLDER.finditer(text) if m.group(1) in self.names]
        if not found:
            return None
        out = {}
        for target in self.targets:
            out[target] = _PLACEHOLDER.sub(functools.partial(self._text_of, target=target), text)
        for match in found:
            entry = self.state.by_name.get(match.group(1))
            if entry is None:
                self.missing.append((match.group(1), place))
            else:
                self.use(entry, place, match.group(0))
        return out

    def _text_of(self, match: re.Match[str], target: str) -> str:
        entry = self.state.by_name.get(match.group(1)) if match.group(1) in self.names else None
        if entry is None:
            return match.group(0)
        return value_text(entry.sent.get(target, entry.recorded)) or match.group(0)

    def sent(self, entry: Entry, target: str) -> Any:
        return entry.sent.get(target, entry.recorded)


def rewrite_record(
    record: Record, state: LaneState, targets: tuple[str, ...], names: frozenset[str]
) -> Rewrite | None:
    """The record as each target should get it, or None when nothing in it is correlated."""
    finder = _Finder(state, names, targets)
    paths = _path(record.path, finder)
    headers = _headers(record.headers, finder)
    bodies = _body(record, finder)
    if not finder.changes and not finder.missing:
        return None
    records = {}
    for target in targets:
        # A target given the recorded values (the primary, when they are its own) gets the
        # record itself: byte for byte, and nothing copied.
        changed: dict[str, Any] = {}
        if paths is not None and paths[target] != record.path:
            changed["path"] = paths[target]
        if headers is not None and headers[target] != record.headers:
            changed["headers"] = headers[target]
        if bodies is not None and not _same_json(bodies[target], record.body):
            changed["body"] = bodies[target]
            changed["body_bytes"] = orjson.dumps(bodies[target])
        records[target] = dataclasses.replace(record, **changed) if changed else record
    return Rewrite(records, finder.changes, finder.missing)


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality (Python's `==` takes 1 for 1.0 and True): compared as JSON text."""
    return a is b or orjson.dumps(a) == orjson.dumps(b)


def _path(path: str, finder: _Finder) -> dict[str, str] | None:
    filled = finder.fill(path, "path")
    if filled is not None:
        return filled
    route, mark, query = path.partition("?")
    whole = finder.exact(route, "path")
    if whole is not None:  # a Location-like value: the whole path
        return {t: _url_path(finder.sent(whole, t)) + mark + query for t in finder.targets}
    segments = route.split("/")
    new_segments = _swap(segments, lambda s: unquote(s), "path", finder, _quote)
    pairs = [p.partition("=") for p in query.split("&")] if query else []
    new_values = _swap(
        [v for _, _, v in pairs], unquote_plus, "query", finder, _quote, [k for k, _, _ in pairs]
    )
    if new_segments is None and new_values is None:
        return None
    out = {}
    for t in finder.targets:
        route_t = "/".join(new_segments[t]) if new_segments is not None else route
        if new_values is not None:
            parts = [f"{k}{eq}{v}" for (k, eq, _), v in zip(pairs, new_values[t], strict=True)]
            out[t] = route_t + "?" + "&".join(parts)
        else:
            out[t] = route_t + mark + query
    return out


def _swap(
    items: list[str],
    decode: Callable[[str], str],
    kind: str,
    finder: _Finder,
    encode: Callable[[str], str],
    keys: Iterable[str] | None = None,
) -> dict[str, list[str]] | None:
    """`items` per target with each one holding a correlated value replaced, or None."""
    out: dict[str, list[str]] | None = None
    for i, (item, key) in enumerate(zip(items, keys or [""] * len(items), strict=True)):
        place = f"query:{key}" if kind == "query" else kind
        entry = finder.exact(decode(item), place) if item else None
        if entry is None:
            continue
        if out is None:
            out = {t: list(items) for t in finder.targets}
        for t in finder.targets:
            out[t][i] = encode(value_text(finder.sent(entry, t)) or item)
    return out


def _quote(text: str) -> str:
    return quote(text, safe="-._~!$&'()*+,;=:@")


def _url_path(value: Any) -> str:
    text = value_text(value) or ""
    return urlsplit(text).path if "://" in text else text


def _headers(
    headers: tuple[tuple[str, str], ...], finder: _Finder
) -> dict[str, tuple[tuple[str, str], ...]] | None:
    out: dict[str, list[tuple[str, str]]] | None = None
    for i, (name, value) in enumerate(headers):
        if name.lower() in HOP_BY_HOP_HEADERS:
            continue
        place = f"header:{name}"
        filled = finder.fill(value, place)
        if filled is None:
            entry = finder.exact(value, place)
            if entry is None:
                continue
            filled = {t: value_text(finder.sent(entry, t)) or value for t in finder.targets}
        if out is None:
            out = {t: list(headers) for t in finder.targets}
        for t in finder.targets:
            out[t][i] = (name, filled[t])
    return None if out is None else {t: tuple(h) for t, h in out.items()}


def _body(record: Record, finder: _Finder) -> dict[str, Any] | None:
    if not record.has_json_body or not isinstance(record.body, dict | list):
        return None
    return _walk(record.body, "", finder)


def _walk(value: Any, pointer: str, finder: _Finder) -> dict[str, Any] | None:
    """The JSON value per target with correlated members replaced, or None if none is."""
    if isinstance(value, dict):
        found = {k: _walk(v, f"{pointer}/{_escape(k)}", finder) for k, v in value.items()}
        if all(r is None for r in found.values()):
            return None
        return {
            t: {k: value[k] if r is None else r[t] for k, r in found.items()}
            for t in finder.targets
        }
    if isinstance(value, list):
        items = [_walk(v, f"{pointer}/{i}", finder) for i, v in enumerate(value)]
        if all(r is None for r in items):
            return None
        return {
            t: [v if r is None else r[t] for v, r in zip(value, items, strict=True)]
            for t in finder.targets
        }
    return _member(value, pointer, finder)


def _member(value: Any, pointer: str, finder: _Finder) -> dict[str, Any] | None:
    text = value_text(value)
    if text is None:
        return None
    place = f"body:{pointer or '/'}"
    if isinstance(value, str):
        name = _whole_placeholder(value, finder.names)
        if name is not None:  # `"{order_id}"`: the value itself, with its JSON type
            entry = finder.state.by_name.get(name)
            if entry is None:
                finder.missing.append((name, place))
                return None
            finder.use(entry, place, value)
            return {t: finder.sent(entry, t) for t in finder.targets}
        filled = finder.fill(value, place)
        if filled is not None:
            return dict(filled)
    entry = finder.state.by_text.get(text)
    if entry is None or (type(entry.recorded) is not type(value) and not isinstance(value, str)):
        return None
    finder.use(entry, place, value)
    if isinstance(value, str):  # `"1001"` where the answer said 1001: kept a string
        return {t: value_text(finder.sent(entry, t)) for t in finder.targets}
    return {t: finder.sent(entry, t) for t in finder.targets}


def _whole_placeholder(value: str, names: frozenset[str]) -> str | None:
    match = _PLACEHOLDER.fullmatch(value)
    return match.group(1) if match and match.group(1) in names else None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
