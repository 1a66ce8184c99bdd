"""`[compare]` and `[[compare.endpoint]]`: how answers are compared, globally and per route.

The rules themselves are `model.CompareRules` (they travel with every exchange and check
themselves); this module reads them, names endpoints, and merges an endpoint's rules into the
global ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadow.config.auth import AuthProfile
from shadow.config.routepattern import RoutePattern
from shadow.config.table import UNSET, Table, kind_name
from shadow.errors import ConfigError, InvalidValue
from shadow.model import ABSENT, CompareRules, Criterion, Record, member_at

# Where RPC APIs name the operation when a block does not say: these headers, then these JSON
# body members when the body has the marker member (JSON-RPC's "jsonrpc", GraphQL's "query").
OPERATION_HEADERS = ("x-amz-target", "soapaction")
OPERATION_MEMBERS = (("jsonrpc", "/method"), ("query", "/operationName"))


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """A `[[compare.endpoint]]`: a method and a path route (the key `path` in the file), the
    header values, JSON body members and record name that further pick its records, its name
    (by default the route, after the method unless that is `*`, then those criteria), its
    compare rules, and whether its records may be sent twice (`safe`)."""

    route: str
    method: str = "*"
    name: str = ""
    rules: CompareRules = field(default_factory=CompareRules)
    auth: str | None = None
    match: tuple[Criterion, ...] = ()
    safe: bool | None = None  # None: by method (`[noise] repeat_methods`)
    named: bool = field(init=False, compare=False)
    pattern: RoutePattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.route.startswith("/"):
            raise InvalidValue(
                "route", "missing or not starting with '/' (a route such as /items/{id})"
            )
        if not self.method.isascii():  # "\u017fet".upper() is "SET": check first
            raise InvalidValue("method", f"must be ASCII letters or *, not {self.method!r}")
        method = self.method.upper()
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "named", bool(self.name))
        if not self.name:
            name = self.route if method == "*" else f"{method} {self.route}"
            object.__setattr__(self, "name", name + identity_suffix(self.match))
        object.__setattr__(self, "pattern", RoutePattern.compile(self.route))

    def matches(self, record: Record) -> bool:
        """Whether `record` is one of this block's: method, route, then every criterion."""
        if self.method not in ("*", record.method) or not self.pattern.matches(record.path):
            return False
        return all(criterion_holds(c, record) for c in self.match)


def identity_suffix(match: tuple[Criterion, ...]) -> str:
    """` (X-Amz-Target=Svc.Get, /method=get)`: the criteria in an endpoint's default name."""
    shown = [f"{key}={_scalar_text(value)}" for kind, key, value in match if kind != "name"]
    return f" ({', '.join(shown)})" if shown else ""


def _scalar_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def criterion_holds(criterion: Criterion, record: Record) -> bool:
    kind, key, value = criterion
    if kind == "header":
        return bool(record.header(key) == value)
    if kind == "name":
        return bool(record.name == value)
    found = body_member(record, key)
    # JSON equality: `true` is not `1`, nor `1` the text "1".
    return found is not _ABSENT and type(found) is type(value) and found == value


_ABSENT = ABSENT


def body_member(record: Record, pointer: str) -> Any:
    """The member of the record's JSON body at RFC 6901 `pointer`, else `_ABSENT`."""
    return member_at(_json_body(record), pointer)


def _json_body(record: Record) -> Any:
    if record.has_json_body:
        return record.body
    if record.body_bytes and record.body_bytes[:1] in (b"{", b"["):
        try:
            return orjson.loads(record.body_bytes)
        except orjson.JSONDecodeError:
            pass
    return _ABSENT


def inferred_identity(record: Record) -> tuple[Criterion, ...]:
    """The operation a well-known RPC style names in `record`, when no block says (or ())."""
    if record.headers:
        given: dict[str, str] = {}  # the first value of each operation header, in one pass
        for key, value in record.headers:
            lower = key.lower()
            if lower in _OPERATION_HEADER_SET and lower not in given:
                given[lower] = value
        for name in OPERATION_HEADERS:
            if value := given.get(name, ""):
                return (("header", _HEADER_SPELLING.get(name, name), value),)
    raw = record.body_bytes
    # Most bodies name no marker: the text is searched before anything is parsed.
    if not record.has_json_body and not (raw and any(m in raw for m in _MARKERS)):
        return ()
    body = _json_body(record)
    if not isinstance(body, dict):
        return ()
    for marker, pointer in OPERATION_MEMBERS:
        value = member_at(body, pointer)
        if marker in body and isinstance(value, str) and value:
            return (("body", pointer, value),)
    return ()


_HEADER_SPELLING = {"x-amz-target": "X-Amz-Target", "soapaction": "SOAPAction"}
_OPERATION_HEADER_SET = frozenset(OPERATION_HEADERS)
_MARKERS = tuple(f'"{marker}"'.encode() for marker, _ in OPERATION_MEMBERS)


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
        ignore_whitespace=t.flag("ignore_whitespace"),
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
        ignore_whitespace=base.ignore_whitespace and extra.ignore_whitespace,
        expect_status=base.expect_status if extra.expect_status is None else extra.expect_status,
    )


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
        match=_match(t),
        safe=t.flag("safe"),
    )
    t.done()
    return rule


def _match(t: Table) -> tuple[Criterion, ...]:
    """`match_header`, `match_body` and `match_name` as criteria, each checked and named."""
    out: list[Criterion] = []
    for name, value in (t.str_map("match_header") or {}).items():
        if not _TOKEN.fullmatch(name):
            raise ConfigError(t.source, f"{t.key('match_header')}.{name}", "not a header name")
        out.append(("header", name, value))
    members = t.get("match_body", (dict,), "a table of JSON Pointer = value")
    for pointer, value in (members or {}).items():
        key = f"{t.key('match_body')}.{pointer}"
        if not pointer.startswith("/"):
            raise ConfigError(t.source, key, "must be a JSON Pointer starting with '/'")
        if not isinstance(value, str | int | float | bool):
            problem = f"must be a string, a number or a boolean, not {kind_name(value)}"
            raise ConfigError(t.source, key, problem)
        out.append(("body", pointer, value))
    record_name = t.text("match_name")
    if record_name is not UNSET:
        out.append(("name", "", record_name))
    return tuple(out)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a header's name
