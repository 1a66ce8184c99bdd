"""`[compare]` and `[[compare.endpoint]]`: how answers are compared, globally and per route.

The rules themselves are `model.CompareRules` (they travel with every exchange and check
themselves); this module reads them, names endpoints, and merges an endpoint's rules into the
global ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shadow.config.auth import AuthProfile
from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue
from shadow.model import CompareRules


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """A `[[compare.endpoint]]`: a method and a path route (the key `path` in the file), its
    name (by default the route, after the method unless that is `*`) and its compare rules."""

    route: str
    method: str = "*"
    name: str = ""
    rules: CompareRules = field(default_factory=CompareRules)
    auth: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.route.startswith("/"):
            raise InvalidValue(
                "route", "missing or not starting with '/' (a route such as /items/{id})"
            )
        method = self.method.upper()
        object.__setattr__(self, "method", method)
        if not self.name:
            name = self.route if method == "*" else f"{method} {self.route}"
            object.__setattr__(self, "name", name)
        object.__setattr__(self, "regex", route_regex(self.route))


def parse_rules(t: Table, endpoint: bool = False) -> CompareRules:
    """The compare rules of `[compare]` or of one `[[compare.endpoint]]` (`endpoint`)."""
    normalize = t.str_map("normalize")
    plain, keyed = _unordered(t)
    headers = t.strings("headers")
    ignore_headers = t.strings("ignore_headers")
    return t.build(
        CompareRules,
        {"compare_status": "status", "unordered_keys": "unordered"},
        ignore=t.strings("ignore"),
        unordered=plain,
        normalize=tuple(normalize.items()) if normalize else UNSET,
        # Set, even empty, it replaces the global list (`headers = []`: compare none here).
        headers=tuple(h.lower() for h in headers) if isinstance(headers, tuple) else UNSET,
        compare_status=t.flag("status"),
        tolerance=t.number("tolerance"),
        unordered_keys=tuple(keyed.items()) if keyed else UNSET,
        ignore_headers=tuple(h.lower() for h in ignore_headers) if ignore_headers else UNSET,
        relative_tolerance=t.number("relative_tolerance"),
        expect_status=t.integer("expect_status") if endpoint else UNSET,
    )


def _unordered(t: Table) -> tuple[tuple[str, ...], dict[str, str]]:
    """`unordered` as a list (plain multisets) or a table of pattern -> key member ("" = plain)."""
    if isinstance(t.data.get("unordered"), dict):
        table = t.str_map("unordered") or {}
        plain = tuple(p for p, key in table.items() if not key)
        return plain, {p: key for p, key in table.items() if key}
    return t.strings("unordered") or (), {}


def merge_rules(base: CompareRules, extra: CompareRules) -> CompareRules:
    """An endpoint's rules: the global lists plus its own; its scalars where it sets them;
    its `headers` list, when it sets one, instead of the global one."""
    return CompareRules(
        ignore=base.ignore + extra.ignore,
        unordered=base.unordered + extra.unordered,
        normalize=base.normalize + extra.normalize,
        headers=base.headers if extra.headers is None else extra.headers,
        compare_status=base.compare_status and extra.compare_status,
        tolerance=max(base.tolerance, extra.tolerance),
        unordered_keys=base.unordered_keys + extra.unordered_keys,
        ignore_headers=tuple(dict.fromkeys(base.ignore_headers + extra.ignore_headers)),
        relative_tolerance=max(base.relative_tolerance, extra.relative_tolerance),
        expect_status=base.expect_status if extra.expect_status is None else extra.expect_status,
    )


def route_regex(route: str) -> re.Pattern[str]:
    """`/score/{scorer}/{address}` -> a regex; `{name}` is one segment, `*` anything."""
    out = []
    for piece in re.split(r"(\{[^}/]*\}|\*)", route):
        if piece == "*":
            out.append(".*")
        elif piece.startswith("{") and piece.endswith("}"):
            out.append("[^/]+")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out) + r"/?(?:\?.*)?")


def parse_endpoint(t: Table, auth: Mapping[str, AuthProfile]) -> EndpointRule:
    route = t.text("path")
    profile = t.text("auth") or None
    if profile is not None and profile not in auth:
        raise t.fail("auth", f"no [auth.{profile}] profile is defined")
    rule = t.build(
        EndpointRule,
        {"route": "path"},
        route=route or "",
        method=t.text("method"),
        name=t.text("name"),
        rules=parse_rules(t, endpoint=True),
        auth=profile,
    )
    t.done()
    return rule
