"""Secrets out of everything shadow writes: credential headers by name, body fields by pointer.

What is redacted, and where (every event's `request` and `diffs`, hence also the `curl`
commands and the reports built from events):

- headers: `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-API-Key`, every
  auth profile's header and `[redact] headers`; in a request their values, in a `header:<name>`
  difference both sides' values (a `Set-Cookie` difference that lists cookie names only, as
  `headers = ["*"]` compares it, keeps the names);
- `[redact] paths`, JSON Pointer patterns (`*` one segment, `**` any number, as in
  `[compare]`): matching members of a request's JSON body (also a `body_text` that is JSON),
  fields of a url-encoded form body (`/password` names the field `password`; also in a
  `body_b64` that is such text), and the values of
  differences at or under a matching path (`/**/email` also hides the email inside a `missing`
  object); with any path configured, the excerpts of a `body` difference (a body that is not
  JSON on one side) are redacted too, since the other side may be JSON holding those fields,
  and so are both sides of a text body's `line:N` difference; an XML or HTML difference is
  redacted by its path (`/**/password` matches `/user/password[2]` and `/form/@password`).

A redacted value becomes the string `[REDACTED]`; `null` sides stay `null`, so a difference's
kind still reads right. Values are copied where something is hidden, never changed in place.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from shadow.compare.pointers import State, compile_rules, parse_pointer
from shadow.model import CREDENTIAL_HEADERS, REDACTED, CompareRules, Difference, Record

# The recorded credentials (`[replay] recorded_auth`), and the one an answer carries.
ALWAYS_REDACTED = CREDENTIAL_HEADERS | {"set-cookie"}
_FORM = "application/x-www-form-urlencoded"
_INDEXED = re.compile(r"(.+)\[[0-9]+\]")


class Redactor:
    """Redacts records and differences for one run."""

    def __init__(self, headers: Iterable[str] = ALWAYS_REDACTED, paths: Sequence[str] = ()):
        self.headers = frozenset(h.lower() for h in headers)
        self.paths = tuple(paths)
        self._root = compile_rules(CompareRules(ignore=self.paths)).root if self.paths else None

    def request(self, record: Record) -> dict[str, Any]:
        """The record in native form, secrets replaced by `[REDACTED]`."""
        out = record.to_dict(self.headers)
        root = self._root
        if root is None:
            return out
        if "body" in out:
            hidden = redact_value(record.body, root)
            if hidden is not record.body:  # else the recorded text stands, as it was sent
                out["body"] = hidden
        elif isinstance(out.get("body_text"), str):
            out["body_text"] = self._text_body(out["body_text"], record.header("content-type"))
        elif record.body_bytes is not None and "body_b64" in out:
            try:
                text = record.body_bytes.decode("utf-8")
            except UnicodeDecodeError:
                return out  # binary: no field to find
            hidden = self._text_body(text, record.header("content-type"))
            if hidden != text:
                out["body_b64"] = base64.b64encode(hidden.encode()).decode("ascii")
        return out

    def _text_body(self, text: str, content_type: str | None) -> str:
        assert self._root is not None
        media = (content_type or "").partition(";")[0].strip().lower()
        if media == _FORM:
            fields = parse_qsl(text, keep_blank_values=True)
            hidden = [(k, REDACTED if self._root.step(k).ignored else v) for k, v in fields]
            return urlencode(hidden) if hidden != fields else text
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        redacted = redact_value(value, self._root)
        return text if redacted is value else orjson.dumps(redacted).decode()

    def rewrite(self, change: dict[str, Any]) -> dict[str, Any]:
        """A correlated value rewritten in a request (an event's `rewrites`), its values
        hidden where the request's own would be: a redacted header, a redacted body member."""
        place = str(change.get("place", ""))
        hidden = place.startswith("header:") and place[7:].lower() in self.headers
        if place.startswith("body:") and self._root is not None:
            state = self._root
            for segment in parse_pointer(place[5:]):
                state = state.step(segment)
            hidden = state.ignored
        if not hidden:
            return change
        sent = change.get("sent") or {}
        return {**change, "recorded": REDACTED, "sent": dict.fromkeys(sent, REDACTED)}

    def diff(self, diff: Difference) -> dict[str, Any]:
        """A difference as event data, its values redacted where they may hold a secret."""
        out = diff.to_dict()
        if diff.path.startswith("header:"):
            name = diff.path.removeprefix("header:")
            if name in self.headers:
                for side in ("primary", "candidate"):
                    out[side] = _header_value(name, out[side])
            return out
        root = self._root
        if root is None:
            return out
        if diff.kind == "body":
            for side in ("primary", "candidate"):
                if isinstance(out[side], dict) and "excerpt" in out[side]:
                    out[side] = {**out[side], "excerpt": REDACTED}
            return out
        if diff.path.startswith("line:"):  # a line of text may hold any field
            for side in ("primary", "candidate"):
                if out[side] is not None:
                    out[side] = REDACTED
            return out
        state = markup = root
        for segment in parse_pointer(diff.path):
            state = state.step(segment)
            # As a markup path, `item[2]` is element `item` and `@password` attribute password.
            indexed = _INDEXED.fullmatch(segment)
            markup = markup.step(indexed.group(1) if indexed else segment.removeprefix("@"))
        if markup.ignored:
            state = markup
        for side in ("primary", "candidate"):
            if out[side] is not None:
                out[side] = redact_value(out[side], state)
        return out


def _header_value(name: str, value: Any) -> Any:
    # A compared list of cookie names holds no "=" (a name cannot): those are no secret.
    if value is None or (name == "set-cookie" and "=" not in str(value)):
        return value
    return REDACTED


def redact_value(value: Any, state: State) -> Any:
    """`value` (at the node `state` stands for) with every matching member redacted; the same
    object when nothing matched. Iterative, so no depth of nesting can overflow the stack."""
    if state.ignored:
        return REDACTED
    if not state.live or not isinstance(value, dict | list):
        return value
    holder: list[Any] = [None]
    stack: list[tuple[Any, State, Any, Any]] = [(value, state, holder, 0)]
    changed = False
    while stack:
        node, at, parent, key = stack.pop()
        if at.ignored:
            parent[key], changed = REDACTED, True
        elif not at.live or not isinstance(node, dict | list):
            parent[key] = node
        elif isinstance(node, dict):
            copy: dict[Any, Any] = dict.fromkeys(node)  # keeps the members' order
            parent[key] = copy
            stack.extend((v, at.step(str(k)), copy, k) for k, v in node.items())
        else:
            items: list[Any] = [None] * len(node)
            parent[key] = items
            stack.extend((v, at.step_index(i), items, i) for i, v in enumerate(node))
    return holder[0] if changed else value
