"""Which endpoint a record belongs to, and so which compare rules and auth profile apply.

An endpoint's name comes from, in order: the record's `name`, the first configured
`[[compare.endpoint]]` whose method and route match, or a template inferred from the path
(`GET /internal/score/v2/{int}/{hex}`), so that counts group by endpoint, not by URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shadow.config import Config, EndpointRule, merge_rules
from shadow.model import CompareRules, Record

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{16,})")
_INT = re.compile(r"-?[0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~%]{24,}")


def infer_template(path: str) -> str:
    """`/score/3/0xabc?x=1` -> `/score/{int}/{hex}`: variable segments replaced, query dropped."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(_segment_kind(s) for s in segments)


def _segment_kind(segment: str) -> str:
    if not segment:
        return segment
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
    endpoint: str
    rules: CompareRules
    auth: str | None


class Router:
    def __init__(self, config: Config) -> None:
        self._global = config.compare
        self._endpoints: list[tuple[EndpointRule, Route]] = [
            (rule, Route(rule.name, merge_rules(config.compare, rule.rules), rule.auth))
            for rule in config.endpoints
        ]

    def route(self, record: Record) -> Route:
        for rule, route in self._endpoints:
            if rule.method in ("*", record.method) and rule.regex.fullmatch(record.path):
                if record.name:
                    return Route(record.name, route.rules, route.auth)
                return route
        name = record.name or f"{record.method} {infer_template(record.path)}"
        return Route(name, self._global, None)
