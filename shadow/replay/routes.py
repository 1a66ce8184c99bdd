"""Which endpoint a record belongs to, and so which compare rules and auth profile apply.

An endpoint's name comes from, in order: the record's `name`, the first configured
`[[compare.endpoint]]` that matches (method, route, and its `match_*` criteria), or a template
inferred from the path (`GET /internal/score/v2/{int}/{hex}`), so that counts group by
endpoint, not by URL. Where a well-known RPC style names the operation (`X-Amz-Target`,
`SOAPAction`, JSON-RPC's `method`, GraphQL's `operationName`) and no block names the endpoint,
the inferred name carries it: `POST / (X-Amz-Target=Store.GetItem)`. The criteria that define
an endpoint (`Route.match`) are what learned noise rules are keyed by.
The rules are the global ones plus those of every matching block, in file order, so a block
added later for the same route (such as a learned noise rule) adds to the earlier ones.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from shadow.config.load import Config
from shadow.config.rules import (
    EndpointRule,
    identity_suffix,
    inferred_identity,
    merge_rules,
)
from shadow.model import CompareRules, Criterion, Record

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{16,})")
_INT = re.compile(r"-?[0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~%+=]{24,}")
_UUID_CHARS = 36
_MAX_CACHED = 4096
_MAX_SEGMENT_CHARS = 64
_MAX_SEGMENTS = 32
_MAX_TEMPLATE_CHARS = 200


@functools.lru_cache(maxsize=8192)
def infer_template(path: str) -> str:
    """`/score/3/0xabc?x=1` -> `/score/{int}/{hex}`: variable segments replaced, query dropped.
    A name is kept short whatever the path: a long segment is `{long}`, a long template cut."""
    segments = path.split("?", 1)[0].split("/")
    template = "/".join(_segment_kind(s) for s in segments[:_MAX_SEGMENTS])
    if len(template) > _MAX_TEMPLATE_CHARS or len(segments) > _MAX_SEGMENTS:
        return template[:_MAX_TEMPLATE_CHARS].rpartition("/")[0] + "/{...}"
    return template


def _segment_kind(segment: str) -> str:
    if not segment:
        return segment
    if len(segment) > _MAX_SEGMENT_CHARS:
        return "{long}"
    if segment.isalpha() and len(segment) != _UUID_CHARS:
        return segment  # a word (`score`): no digit for a number, hex or token, not a uuid
    if _INT.fullmatch(segment):
        return "{int}"
    if _UUID.fullmatch(segment):
        return "{uuid}"
    if _HEX.fullmatch(segment) and any(c.isdigit() for c in segment):
        return "{hex}"
    if _TOKEN.fullmatch(segment) and any(c.isdigit() for c in segment):
        return "{token}"
    return segment


@dataclass(frozen=True, slots=True)
class Route:
    """Where a record belongs: its endpoint name, rules, auth, and a method + route for it."""

    endpoint: str
    rules: CompareRules
    auth: str | None
    method: str = "*"
    template: str = ""  # the configured route, else the inferred template
    match: tuple[Criterion, ...] = ()  # what, beyond method and route, picks its records
    safe: bool | None = None  # from the first matching block that says


class Router:
    def __init__(self, config: Config) -> None:
        self._global = config.compare
        self._endpoints = config.endpoints
        # Rules merged per combination of matching blocks: few combinations, many records.
        self._merged: dict[tuple[int, ...], CompareRules] = {}

    def route(self, record: Record) -> Route:
        matches = tuple(i for i, rule in enumerate(self._endpoints) if rule.matches(record))
        if not matches:
            template = infer_template(record.path)
            identity = inferred_identity(record)
            name = record.name or f"{record.method} {template}{identity_suffix(identity)}"
            match = _with_name(identity, record)
            return Route(name, self._global, None, record.method, template, match)
        first: EndpointRule = self._endpoints[matches[0]]
        auth = next((a for i in matches if (a := self._endpoints[i].auth)), None)
        safe = next((s for i in matches if (s := self._endpoints[i].safe) is not None), None)
        identity, name = first.match, first.name
        if not first.named and not identity:
            identity = inferred_identity(record)
            name += identity_suffix(identity)
        method = record.method if first.method == "*" else first.method
        match = _with_name(identity, record)
        rules = self._rules(matches)
        return Route(record.name or name, rules, auth, method, first.route, match, safe)

    def _rules(self, matches: tuple[int, ...]) -> CompareRules:
        rules = self._merged.get(matches)
        if rules is None:
            rules = self._global
            for i in matches:
                rules = merge_rules(rules, self._endpoints[i].rules)
            if len(self._merged) < _MAX_CACHED:
                self._merged[matches] = rules
        return rules


def _with_name(match: tuple[Criterion, ...], record: Record) -> tuple[Criterion, ...]:
    """A record's own `name` names its endpoint, so it is part of the endpoint's identity."""
    if record.name is None or any(kind == "name" for kind, _, _ in match):
        return match
    return (*match, ("name", "", record.name))
