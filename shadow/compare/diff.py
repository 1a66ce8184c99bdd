"""Compare one primary response with one candidate response and list what differs.

Everything here is a pure function of its arguments: no I/O, no clock, no event loop. Pointer
patterns live in `shadow.compare.pointers`, normalizers in `shadow.compare.normalize`, and the
canonical forms used to match values as multisets in `shadow.compare.fingerprint`.

Design notes, stated once:

* JSON types are kept apart: Python's `1 == 1.0 == True` is not JSON equality, so values of
  different JSON kinds are a `type` difference unless a `number` normalization applies.
* The walk uses an explicit stack, so no depth raises RecursionError. Equal containers are
  skipped at C speed (`==`, then equal orjson text, in member order or with sorted keys). A
  node's pointer is a linked `(parent, segment)` pair, turned into a string only when a
  difference is reported. Beneath a node no rule reaches, `shadow.compare.plain` walks
  without looking rules up.
* Unordered arrays are multisets of element fingerprints. Tolerance does not apply to
  multiset matching.
* A keyed unordered array (`unordered = { "/items" = "id" }`) pairs its objects by that member,
  so a changed element is walked like any object and reported at the primary's index; elements
  left unpaired are matched as a multiset, then reported `missing` or `extra`.
* At most `max_differences` are kept per exchange (`Differences`): two large bodies that
  differ everywhere would otherwise hold a Difference per node. The walk still goes on to
  the end, counting, so `total` says how many there were.
* Headers: names are case-insensitive. `headers = ["*"]` compares every header except the
  volatile ones below; a name listed explicitly is compared in full; `ignore_headers` is never
  compared, listed or not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Self, TypeAlias

import orjson

from shadow.compare.bodies import diff_other_bodies, summarize
from shadow.compare.differences import DEFAULT_MAX_DIFFERENCES, Differences
from shadow.compare.fingerprint import all_scalars, canonical_keys, fingerprint, leaf_text
from shadow.compare.normalize import (
    Norm,
    as_decimal,
    json_kind,
    normalize,
    numbers_close,
)
from shadow.compare.plain import diff_plain, same_json
from shadow.compare.pointers import Path, State, compile_rules, format_pointer, match_pointer
from shadow.model import CompareRules, Difference, Response

__all__ = [
    "DEFAULT_MAX_DIFFERENCES",
    "VOLATILE_HEADERS",
    "Differences",
    "diff_json",
    "diff_responses",
    "match_pointer",
    "parse_json_body",
]

# Left out of `headers = ["*"]`: they differ between any two answers (or connections) without
# saying anything about the service. Set-Cookie is compared by cookie names only; Content-Length
# only when the body itself is not compared.
VOLATILE_HEADERS = (
    "date",
    "server",
    "x-request-id",
    "set-cookie",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
)
_INFINITY = float("inf")
_ONLY_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # digits as 0, others blank
_DIGIT_RUN = b"0" * 19  # the shortest integer orjson may not read exactly
_BEFORE_NUMBER = frozenset(b"[:, \t\r\n")  # what may come right before a JSON number

_Frame: TypeAlias = "tuple[Path, Any, Any, State, Norm | None]"


# --- public API ------------------------------------------------------------------------------


def diff_responses(
    primary: Response,
    candidate: Response,
    rules: CompareRules,
    max_differences: int = DEFAULT_MAX_DIFFERENCES,
) -> Differences:
    """The differences between two responses (status, the headers `rules` select, body): the
    first `max_differences` of them, and how many there were."""
    out = Differences(max_differences)
    if rules.compare_status and primary.status != candidate.status:
        out.append(Difference("status", "status", primary.status, candidate.status))
    if rules.headers:
        out.extend(_diff_headers(primary, candidate, rules))
    # Identical bytes are equal whatever they hold; most pairs stop here without parsing.
    if primary.body != candidate.body:
        content_type = _header_value(primary, "content-type")
        _diff_bodies(primary.body, candidate.body, rules, content_type, out)
    return out


def diff_json(
    primary: Any, candidate: Any, rules: CompareRules, out: list[Difference] | None = None
) -> list[Difference]:
    """Differences between two parsed JSON values, located by RFC 6901 pointers (appended to
    `out` when given, which may keep only some of them: see `Differences`)."""
    out = [] if out is None else out
    machine = compile_rules(rules)
    # Beneath the DFA's dead state no pattern applies; with no normalizer from above and no
    # tolerance, no rule does: that subtree takes the rule-free walk.
    ruleless = machine.dead if rules.tolerance <= 0 and rules.relative_tolerance <= 0 else None
    stack: list[_Frame] = [(None, primary, candidate, machine.root, None)]
    while stack:
        frame = stack.pop()
        path, p, c, state, norm = frame
        if state.ignored or p is c:
            continue
        norm = state.norm or norm
        if state is ruleless and norm is None:
            diff_plain(path, p, c, out)
            continue
        kind_p, kind_c = json_kind(p), json_kind(c)
        if kind_p != kind_c or kind_p not in ("dict", "list"):
            found = _diff_scalars(p, c, kind_p, kind_c, norm, rules)
            if found is not None:
                out.append(Difference(format_pointer(path), found, p, c))
            continue
        if same_json(p, c):
            continue
        frame = (path, p, c, state, norm)
        if kind_p == "dict":
            stack.extend(reversed(_dict_children(frame, out)))
        elif state.sorted and all_scalars(p) and all_scalars(c):
            _diff_sorted(frame, out)
        elif state.unordered_key is not None:
            stack.extend(reversed(_keyed_children(frame, state.unordered_key, out)))
        elif state.unordered:
            _diff_multiset(frame, range(len(p)), range(len(c)), out)
        else:
            stack.extend(reversed(_list_children(frame, out)))
    return out


def parse_json_body(body: bytes) -> tuple[bool, Any]:
    """`(True, value)` when `body` is JSON text, else `(False, None)`; never raises."""
    # orjson silently turns an integer beyond 64 bits into a float, losing digits, so text with
    # a run of 19 digits (the shortest such integer) goes to the exact stdlib parser, as does
    # text orjson refuses (nesting past 1024, a number past a float's range). NaN and Infinity
    # are refused: they are not JSON.
    if not _has_long_integer(body):
        try:
            return True, orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return True, json.loads(body, parse_constant=_reject_constant, parse_float=_float)
    except (ValueError, RecursionError):
        return False, None


# --- responses -------------------------------------------------------------------------------


def _has_long_integer(body: bytes) -> bool:
    """Whether `body` may hold an integer token of 19 digits or more."""
    # A regex scan costs tens of ns a byte; translate and find run at C speed. Digit runs in
    # strings (ids, hex) are told apart from numbers by the byte before the run.
    digits = body.translate(_ONLY_DIGITS)
    at = digits.find(_DIGIT_RUN)
    while at != -1:
        start, end = at, at + len(_DIGIT_RUN)  # find gives a run's first digit
        if start > 0 and body[start - 1] == 45:  # a minus sign
            start -= 1
        if start == 0 or body[start - 1] in _BEFORE_NUMBER:
            return True
        while end < len(digits) and digits[end] == 48:
            end += 1
        at = digits.find(_DIGIT_RUN, end)
    return False


def _diff_headers(primary: Response, candidate: Response, rules: CompareRules) -> list[Difference]:
    named = list(dict.fromkeys(name.lower() for name in rules.headers or ()))
    ignored = {h.lower() for h in rules.ignore_headers}
    # `ignore_headers` wins over a name listed in `headers`, so a rule learned for a noisy
    # header hides it as live calibration does, wherever the header was asked for.
    wanted = [name for name in named if name != "*" and name not in ignored]
    if "*" in named:  # every other header either side has, bar the volatile
        skip = {*VOLATILE_HEADERS, *ignored, *wanted}
        if compile_rules(rules).root.ignored:
            skip.discard("content-length")  # the body is not compared, so its size is
        seen = {k.lower() for k, _ in (*primary.headers, *candidate.headers)}
        wanted += sorted(seen - skip)
        if "set-cookie" in seen - ignored and "set-cookie" not in named:
            wanted.append("set-cookie;names")
    out: list[Difference] = []
    for name in wanted:
        p, c = _header_value(primary, name), _header_value(candidate, name)
        if p != c:
            out.append(Difference(f"header:{name.partition(';')[0]}", "header", p, c))
    return out


def _header_value(response: Response, wanted: str) -> str | None:
    name, _, part = wanted.partition(";")
    values = [value for key, value in response.headers if key.lower() == name]
    if part == "names":  # cookie names only: their values are per-session
        values = sorted(v.split("=", 1)[0].strip() for v in values)
    # Repeated headers are joined as RFC 9110 allows, so a changed second value still shows.
    return ", ".join(values) if values else None


def _diff_bodies(
    primary: bytes,
    candidate: bytes,
    rules: CompareRules,
    content_type: str | None,
    out: Differences,
) -> None:
    ok_p, value_p = parse_json_body(primary)
    ok_c, value_c = parse_json_body(candidate) if ok_p else (False, None)
    if ok_p and ok_c:
        diff_json(value_p, value_c, rules, out)
    elif compile_rules(rules).root.ignored:
        return
    elif not ok_p:  # text, markup, a form or bytes, by the primary's Content-Type
        out.extend(diff_other_bodies(primary, candidate, content_type, rules, diff_json))
    else:
        out.append(Difference("/", "body", summarize(primary), summarize(candidate)))


class HugeNumber(float):
    """A JSON number past a float's range (`1e400`), kept as its text: as a float it would be
    infinity, and `1e400` would equal `1e500`. Compared exactly; events write it as its text."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Self:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int | float) and not isinstance(other, bool):
            return Decimal(self.text) == Decimal(repr(other))
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(Decimal(self.text))

    def __repr__(self) -> str:
        return self.text


def _float(text: str) -> float:
    value = float(text)
    return value if value not in (_INFINITY, -_INFINITY) else HugeNumber(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- the walk --------------------------------------------------------------------------------


def _dict_children(frame: _Frame, out: list[Difference]) -> list[_Frame]:
    path, p, c, state, norm = frame
    children: list[_Frame] = []
    for key, value in p.items():
        child = state.step(key)
        if key in c:
            children.append(((path, key), value, c[key], child, norm))
        elif not child.ignored and not (child.null_is_missing and value is None):
            out.append(Difference(format_pointer((path, key)), "missing", value, None))
    for key, value in c.items():
        if key not in p:
            child = state.step(key)
            if not child.ignored and not (child.null_is_missing and value is None):
                out.append(Difference(format_pointer((path, key)), "extra", None, value))
    return children


def _list_children(frame: _Frame, out: list[Difference]) -> list[_Frame]:
    path, p, c, state, norm = frame
    children: list[_Frame] = [
        ((path, index), a, b, state.step_index(index), norm)
        for index, (a, b) in enumerate(zip(p, c, strict=False))
    ]
    shared = len(children)
    out.extend(_unmatched(path, p, range(shared, len(p)), state, "missing"))
    out.extend(_unmatched(path, c, range(shared, len(c)), state, "extra"))
    return children


def _diff_sorted(frame: _Frame, out: list[Difference]) -> None:
    """`sorted`: two arrays of scalars are equal when their sorted sequences are."""
    path, p, c, state, norm = frame
    keys_p = sorted(leaf_text(v, state.step_index(i), norm) for i, v in enumerate(p))
    keys_c = sorted(leaf_text(v, state.step_index(i), norm) for i, v in enumerate(c))
    if keys_p != keys_c:
        out.append(Difference(format_pointer(path), "value", p, c))


def _keyed_children(frame: _Frame, key: str, out: list[Difference]) -> list[_Frame]:
    """Pair the objects of two arrays by member `key`; walk the pairs, match the rest as a bag."""
    path, p, c, state, norm = frame
    pool: dict[bytes, list[int]] = {}  # key fingerprint -> candidate indices, last first
    for j in range(len(c) - 1, -1, -1):
        fp = _memberfingerprint(c[j], key, state.step_index(j), norm)
        if fp is not None:
            pool.setdefault(fp, []).append(j)
    children: list[_Frame] = []
    left_p: list[int] = []
    for i, element in enumerate(p):
        fp = _memberfingerprint(element, key, state.step_index(i), norm)
        slots = pool.get(fp) if fp is not None else None
        if slots:
            children.append(((path, i), element, c[slots.pop()], state.step_index(i), norm))
        else:
            left_p.append(i)
    left_c = sorted(j for slots in pool.values() for j in slots)
    left_c += [j for j in range(len(c)) if _memberfingerprint(c[j], key, state, norm) is None]
    _diff_multiset(frame, left_p, sorted(left_c), out)
    return children


def _memberfingerprint(element: Any, key: str, state: State, norm: Norm | None) -> bytes | None:
    if not isinstance(element, dict) or key not in element:
        return None
    return fingerprint(element[key], state.step(key), norm)


def _diff_multiset(
    frame: _Frame, indices_p: Iterable[int], indices_c: Iterable[int], out: list[Difference]
) -> None:
    path, p, c, state, norm = frame
    indices_p, indices_c = list(indices_p), list(indices_c)
    keys_p, keys_c = canonical_keys(p, c, indices_p, indices_c, state, norm)
    # Each key's candidate indices in descending order, so pop() matches the earliest first.
    pool: dict[bytes, list[int]] = {}
    for pos in range(len(indices_c) - 1, -1, -1):
        pool.setdefault(keys_c[pos], []).append(indices_c[pos])
    missing: list[int] = []
    for pos, index in enumerate(indices_p):
        slots = pool.get(keys_p[pos])
        if slots:
            slots.pop()
        else:
            missing.append(index)
    extra = sorted(i for slots in pool.values() for i in slots)
    out.extend(_unmatched(path, p, missing, state, "missing"))
    out.extend(_unmatched(path, c, extra, state, "extra"))


def _unmatched(
    path: Path, values: list[Any], indices: Iterable[int], state: State, kind: str
) -> list[Difference]:
    """`missing` or `extra` differences for the elements at `indices` that are not ignored."""
    return [
        Difference(format_pointer((path, i)), kind, *_sides(kind, values[i]))
        for i in indices
        if not state.step_index(i).ignored
    ]


def _sides(kind: str, value: Any) -> tuple[Any, Any]:
    return (value, None) if kind == "missing" else (None, value)


def _diff_scalars(
    p: Any, c: Any, kind_p: str, kind_c: str, norm: Norm | None, rules: CompareRules
) -> str | None:
    """The kind of difference between two non-container values (or mismatched kinds), if any."""
    absolute, relative = rules.tolerance, rules.relative_tolerance
    if norm is not None and norm[0] == "volatile":
        return None if kind_p == kind_c else "type"
    if norm is not None:
        a, b = normalize(p, norm), normalize(c, norm)
        if a is not None and b is not None:
            if a == b:
                return None
            if isinstance(a, Decimal) and isinstance(b, Decimal):
                return None if numbers_close(a, b, absolute, relative) else "value"
            return "value"
    if kind_p != kind_c:
        return "type"
    if p == c:
        return None
    if kind_p in ("int", "float") and (absolute > 0 or relative > 0):
        a, b = as_decimal(p), as_decimal(c)
        if a is not None and b is not None and numbers_close(a, b, absolute, relative):
            return None
    return "value"
