"""Compare one primary response with one candidate response and list what differs.

Everything here is a pure function of its arguments: no I/O, no clock, no event loop.

Design notes, stated once:

* JSON types are kept apart: Python's `1 == 1.0 == True` is not JSON equality, so values of
  different JSON kinds are a `type` difference unless a `number` normalization applies.
* The walk uses an explicit stack, so no depth raises RecursionError. Equal containers are
  skipped at C speed (`==`, then equal orjson text). A node's pointer is a linked
  `(parent, segment)` pair, turned into a string only when a difference is reported.
* Pointer patterns compile once per rule set into a lazily built DFA (`_State` = the set of live
  pattern positions, transitions cached; segments no pattern spells out share one transition).
  Without patterns every node sits in the dead state and matching costs an attribute read.
* A normalization matching a container applies to every scalar beneath it; the first matching
  normalize entry wins; a datetime without an offset is taken to be UTC.
* Unordered arrays are multisets of element fingerprints: orjson text with sorted keys when no
  pattern reaches inside, else a digest that drops ignored members, applies normalizations and
  treats nested unordered arrays as multisets. Tolerance does not apply to multiset matching.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Hashable, Iterable
from datetime import UTC, datetime
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any, TypeAlias

import orjson

from shadow.model import CompareRules, Difference, Response

__all__ = ["diff_json", "diff_responses", "match_pointer", "parse_json_body"]

_EXCERPT_CHARS = 120
_LONG_DIGITS = re.compile(rb"\d{19}")
_NUMBER_TEXT = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
# Subtraction for tolerance checks runs in a private context so the caller's decimal settings
# (and an overflow trap on absurd exponents) cannot change the answer; overflow just means "far".
_DECIMAL = Context(prec=60)
_PRECISIONS = {"datetime": ("", "s", "ms", "us"), "number": ("",), "case": ("",)}
_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "list",
    dict: "dict",
}

# A node's location: None for the root, else (parent location, key or index).
_Path: TypeAlias = "tuple[_Path, str | int] | None"
_Norm: TypeAlias = tuple[str, str]  # (kind, precision), e.g. ("datetime", "ms")
_Frame: TypeAlias = "tuple[_Path, Any, Any, _State, _Norm | None]"
_Item: TypeAlias = "tuple[Any, Any, _State, _Norm | None]"  # (key or None, value, state, norm)
_Position: TypeAlias = tuple[int, int]  # (pattern index, segments consumed)


# --- public API ------------------------------------------------------------------------------


def diff_responses(primary: Response, candidate: Response, rules: CompareRules) -> list[Difference]:
    """Every difference between two responses: status, the headers named in `rules`, body."""
    out: list[Difference] = []
    if rules.compare_status and primary.status != candidate.status:
        out.append(Difference("status", "status", primary.status, candidate.status))
    out.extend(_diff_headers(primary, candidate, rules.headers))
    # Identical bytes are equal whatever they hold; most pairs stop here without parsing.
    if primary.body != candidate.body:
        out.extend(_diff_bodies(primary.body, candidate.body, rules))
    return out


def diff_json(primary: Any, candidate: Any, rules: CompareRules) -> list[Difference]:
    """Differences between two parsed JSON values, located by RFC 6901 pointers."""
    machine = _compile(rules)
    out: list[Difference] = []
    stack: list[_Frame] = [(None, primary, candidate, machine.root, None)]
    while stack:
        path, p, c, state, norm = stack.pop()
        if state.ignored or p is c:
            continue
        norm = state.norm or norm
        kind_p, kind_c = _kind(p), _kind(c)
        if kind_p != kind_c or kind_p not in ("dict", "list"):
            found = _diff_scalars(p, c, kind_p, kind_c, norm, rules.tolerance)
            if found is not None:
                out.append(Difference(_pointer(path), found, p, c))
        elif _same_text(p, c):
            continue
        elif kind_p == "dict":
            stack.extend(reversed(_dict_children((path, p, c, state, norm), out)))
        elif state.unordered:
            _diff_multiset((path, p, c, state, norm), out)
        else:
            stack.extend(reversed(_list_children((path, p, c, state, norm), out)))
    return out


def match_pointer(pattern: str, pointer: str) -> bool:
    """Whether `pointer` is matched by `pattern` (`*` = one segment, `**` = zero or more)."""
    state = _compile_patterns((pattern,), (), ()).root
    for segment in _parse_pointer(pointer):
        state = state.step(segment)
    return state.ignored


def parse_json_body(body: bytes) -> tuple[bool, Any]:
    """`(True, value)` when `body` is JSON text, else `(False, None)`; never raises."""
    # orjson silently turns an integer beyond 64 bits into a float, losing digits, so text with
    # a run of 19 digits (the shortest such integer) goes to the exact stdlib parser, as does
    # text orjson refuses (nesting past 1024). NaN and Infinity are refused: they are not JSON.
    if not _LONG_DIGITS.search(body):
        try:
            return True, orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return True, json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


# --- responses -------------------------------------------------------------------------------


def _diff_headers(primary: Response, candidate: Response, names: Iterable[str]) -> list[Difference]:
    out: list[Difference] = []
    for wanted in dict.fromkeys(name.lower() for name in names):
        p, c = _header_value(primary, wanted), _header_value(candidate, wanted)
        if p != c:
            out.append(Difference(f"header:{wanted}", "header", p, c))
    return out


def _header_value(response: Response, wanted: str) -> str | None:
    # Repeated headers are joined as RFC 9110 allows, so a changed second value still shows.
    values = [value for key, value in response.headers if key.lower() == wanted]
    return ", ".join(values) if values else None


def _diff_bodies(primary: bytes, candidate: bytes, rules: CompareRules) -> list[Difference]:
    ok_p, value_p = parse_json_body(primary)
    ok_c, value_c = parse_json_body(candidate) if ok_p else (False, None)
    if ok_p and ok_c:
        return diff_json(value_p, value_c, rules)
    if _compile(rules).root.ignored:
        return []
    return [Difference("/", "body", _summarize(primary), _summarize(candidate))]


def _summarize(body: bytes) -> dict[str, Any]:
    # A character takes at most 4 bytes, so 4x the excerpt's bytes always yield enough text.
    text = body[: 4 * _EXCERPT_CHARS].decode("utf-8", "replace")
    return {
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest()[:16],
        "excerpt": text[:_EXCERPT_CHARS],
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- the walk --------------------------------------------------------------------------------


def _same_text(p: Any, c: Any) -> bool:
    """Whether two containers certainly hold the same JSON, found at C speed.

    Python's `==` is necessary for JSON equality (it only blurs 1, 1.0 and True) and stops at
    the first difference; equal orjson texts are sufficient. Anything in between, including
    values orjson cannot write or `==` cannot compare without deep recursion, gets walked.
    """
    try:
        return bool(p == c) and orjson.dumps(p) == orjson.dumps(c)
    except (orjson.JSONEncodeError, RecursionError):
        return False


def _dict_children(frame: _Frame, out: list[Difference]) -> list[_Frame]:
    path, p, c, state, norm = frame
    children: list[_Frame] = []
    for key, value in p.items():
        child = state.step(key)
        if key in c:
            children.append(((path, key), value, c[key], child, norm))
        elif not child.ignored:
            out.append(Difference(_pointer((path, key)), "missing", value, None))
    for key, value in c.items():
        if key not in p and not state.step(key).ignored:
            out.append(Difference(_pointer((path, key)), "extra", None, value))
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


def _diff_multiset(frame: _Frame, out: list[Difference]) -> None:
    path, p, c, state, norm = frame
    keys_p, keys_c = _canonical_keys(p, c, state, norm)
    # Each key's candidate indices in descending order, so pop() matches the earliest first.
    pool: dict[bytes, list[int]] = {}
    for index in range(len(keys_c) - 1, -1, -1):
        pool.setdefault(keys_c[index], []).append(index)
    missing: list[int] = []
    for index, key in enumerate(keys_p):
        slots = pool.get(key)
        if slots:
            slots.pop()
        else:
            missing.append(index)
    extra = sorted(i for slots in pool.values() for i in slots)
    out.extend(_unmatched(path, p, missing, state, "missing"))
    out.extend(_unmatched(path, c, extra, state, "extra"))


def _unmatched(
    path: _Path, values: list[Any], indices: Iterable[int], state: _State, kind: str
) -> list[Difference]:
    """`missing` or `extra` differences for the elements at `indices` that are not ignored."""
    return [
        Difference(_pointer((path, i)), kind, *_sides(kind, values[i]))
        for i in indices
        if not state.step_index(i).ignored
    ]


def _sides(kind: str, value: Any) -> tuple[Any, Any]:
    return (value, None) if kind == "missing" else (None, value)


def _diff_scalars(
    p: Any, c: Any, kind_p: str, kind_c: str, norm: _Norm | None, tolerance: float
) -> str | None:
    """The kind of difference between two non-container values (or mismatched kinds), if any."""
    if norm is not None:
        a, b = _normalize(p, norm), _normalize(c, norm)
        if a is not None and b is not None:
            if a == b:
                return None
            if isinstance(a, Decimal) and isinstance(b, Decimal):
                return None if _decimal_close(a, b, tolerance) else "value"
            return "value"
    if kind_p != kind_c:
        return "type"
    if p == c:
        return None
    if kind_p in ("int", "float") and tolerance > 0 and abs(p - c) <= tolerance:
        return None
    return "value"


def _kind(value: Any) -> str:
    kind = _KINDS.get(type(value))
    if kind is None:  # only hand-built values hold subclasses; bool is tried before int
        bases = (bool, int, float, str, list, dict)
        kind = next((_KINDS[t] for t in bases if isinstance(value, t)), type(value).__name__)
    return kind


def _pointer(path: _Path) -> str:
    segments: list[str] = []
    while path is not None:
        path, segment = path
        text = str(segment)
        if "~" in text or "/" in text:
            text = text.replace("~", "~0").replace("/", "~1")
        segments.append(text)
    segments.reverse()
    return "/" + "/".join(segments)


# --- normalization and canonical forms -------------------------------------------------------


def _normalize(value: Any, norm: _Norm) -> Hashable | None:
    """`value` as normalization `norm` sees it, or None when the normalization does not apply."""
    kind, precision = norm
    if kind == "datetime":
        return _parse_instant(value, precision)
    if kind == "number":
        return _as_decimal(value)
    if kind == "case" and isinstance(value, str):
        return value.casefold()
    return None


def _parse_instant(value: Any, precision: str) -> datetime | None:
    if not isinstance(value, str) or len(value) < 8 or not value[:4].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if precision == "s":
        return moment.replace(microsecond=0)
    if precision == "ms":
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment


def _as_decimal(value: Any) -> Decimal | None:
    kind = _kind(value)
    if kind == "int":
        return Decimal(value)
    if kind == "float":
        # repr is the shortest text that round-trips, so 0.1 and "0.1" come out equal.
        return Decimal(repr(value))
    if kind == "str" and _NUMBER_TEXT.fullmatch(value):
        return Decimal(value)
    return None


def _decimal_close(a: Decimal, b: Decimal, tolerance: float) -> bool:
    if tolerance <= 0 or not (a.is_finite() and b.is_finite()):
        return False
    try:
        return _DECIMAL.abs(_DECIMAL.subtract(a, b)) <= Decimal(repr(tolerance))
    except ArithmeticError:
        return False


def _canonical_keys(
    p: list[Any], c: list[Any], state: _State, norm: _Norm | None
) -> tuple[list[bytes], list[bytes]]:
    """Byte forms of both arrays' elements; equal forms mean equal elements under the rules."""
    if norm is None and not state.live:
        # Both sides must use the same form, hence one try around both.
        try:
            dumps, option = orjson.dumps, orjson.OPT_SORT_KEYS
            return [dumps(v, option=option) for v in p], [dumps(v, option=option) for v in c]
        except orjson.JSONEncodeError:  # big ints, deep nesting, lone surrogates
            pass
    return (
        [_fingerprint(v, state.step_index(i), norm) for i, v in enumerate(p)],
        [_fingerprint(v, state.step_index(i), norm) for i, v in enumerate(c)],
    )


def _fingerprint(value: Any, state: _State, norm: _Norm | None) -> bytes:
    """A digest of `value` as the rules see it, built bottom-up with an explicit stack.

    Digests rather than nested tuples: comparing or hashing deep tuples recurses in C. Ignored
    members are dropped, normalizations applied, and unordered arrays digest their sorted parts.
    """
    top: list[bytes] = []
    # Open containers: (tag, key digest, digests of finished children, children still to do).
    frames: list[tuple[bytes, bytes, list[bytes], list[_Item]]] = [
        (b"", b"", top, [(None, value, state, norm)])
    ]
    while frames:
        tag, key, parts, pending = frames[-1]
        if not pending:
            frames.pop()
            if frames:
                ordered = parts if tag == b"[" else sorted(parts)
                frames[-1][2].append(key + _digest(tag + b"".join(ordered)))
            continue
        child_key, node, node_state, node_norm = pending.pop()
        prefix = b"" if child_key is None else _digest(b"k" + _utf8(str(child_key)))
        opened = _open(node, node_state, node_norm)
        if opened is None:
            parts.append(prefix + _digest(_leaf_text(node, node_state, node_norm)))
        else:
            frames.append((opened[0], prefix, [], opened[1]))
    return top[0]


def _open(node: Any, state: _State, norm: _Norm | None) -> tuple[bytes, list[_Item]] | None:
    """The tag and children of a container that is not ignored, else None."""
    kind = _kind(node)
    if state.ignored or kind not in ("dict", "list"):
        return None
    norm = state.norm or norm
    if kind == "dict":
        children = [(k, v, state.step(k), norm) for k, v in node.items()]
        return b"{", [child for child in children if not child[2].ignored]
    items = [(None, node[i], state.step_index(i), norm) for i in range(len(node) - 1, -1, -1)]
    return (b"(" if state.unordered else b"["), items


def _leaf_text(node: Any, state: _State, norm: _Norm | None) -> bytes:
    """Unambiguous bytes for a scalar: a type tag, then its (normalized) value."""
    if state.ignored:
        return b"x"
    norm = state.norm or norm
    normal = None if norm is None else _normalize(node, norm)
    if isinstance(normal, datetime):
        return b"t" + normal.isoformat().encode()
    if isinstance(normal, Decimal):
        return b"d" + _decimal_text(normal).encode()
    if isinstance(normal, str):
        return b"c" + _utf8(normal)
    kind = _kind(node)
    if kind in ("bool", "null"):
        return b"b" + repr(node).encode()
    if kind == "int":
        return b"i" + hex(node).encode()  # hex: no digit limit, unlike str() of a huge int
    if kind == "float":
        return b"f" + (float(node) + 0.0).hex().encode()  # + 0.0 folds -0.0 into 0.0, as == does
    return (b"s" if kind == "str" else kind.encode() + b":") + _utf8(str(node))


def _decimal_text(number: Decimal) -> str:
    """One spelling per numeric value: 1, 1.0 and 1e0 all give "1e0"."""
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # infinity (from an overflowing float)
        return str(number)
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if digits == (0,):
        return "0"
    return f"{'-' if sign else ''}{''.join(map(str, digits))}e{exponent}"


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# --- pointer patterns ------------------------------------------------------------------------


def _parse_pointer(text: str) -> tuple[str, ...]:
    """Unescaped segments of a pointer or pattern; "" and "/" are both the root."""
    if text in ("", "/"):
        return ()
    body = text.removeprefix("/")
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in body.split("/"))


class _State:
    """One set of live pattern positions: a node of the lazily built DFA over segments."""

    __slots__ = ("_machine", "_next", "_positions", "ignored", "live", "norm", "unordered")

    def __init__(self, machine: _Machine, positions: frozenset[_Position]) -> None:
        self._machine = machine
        self._positions = positions
        self._next: dict[str | None, _State] = {}
        patterns, actions = machine.patterns, machine.actions
        done = sorted(i for i, pos in positions if pos == len(patterns[i]))
        self.ignored = any(actions[i] == "ignore" for i in done)
        self.unordered = any(actions[i] == "unordered" for i in done)
        norms = [machine.norms[i] for i in done if machine.norms[i] is not None]
        self.norm: _Norm | None = norms[0] if norms else None
        self.live = any(pos < len(patterns[i]) for i, pos in positions)

    def step(self, segment: str) -> _State:
        """The state after descending into `segment`."""
        if not self.live:
            return self._machine.dead
        # Segments no pattern spells out all behave alike, which bounds the cache.
        key = segment if segment in self._machine.literals else None
        state = self._next.get(key)
        if state is None:
            state = self._next[key] = self._machine.advance(self._positions, segment)
        return state

    def step_index(self, index: int) -> _State:
        return self.step(str(index)) if self.live else self._machine.dead


class _Machine:
    """The compiled patterns of one CompareRules and the DFA states built from them so far."""

    def __init__(
        self,
        ignore: tuple[str, ...],
        unordered: tuple[str, ...],
        normalize: tuple[tuple[str, str], ...],
    ) -> None:
        entries = [(p, "ignore") for p in ignore]
        entries += [(p, "unordered") for p in unordered]
        entries += [(p, "normalize") for p, _ in normalize]
        self.patterns = tuple(_parse_pointer(pattern) for pattern, _ in entries)
        self.actions = tuple(action for _, action in entries)
        self.norms: tuple[_Norm | None, ...] = (None,) * (len(entries) - len(normalize))
        self.norms += tuple(_parse_norm(p, spec) for p, spec in normalize)
        self.literals = frozenset(s for pat in self.patterns for s in pat if s not in ("*", "**"))
        self._interned: dict[frozenset[_Position], _State] = {}
        self.dead = self._intern(frozenset())
        self.root = self._intern(self._closure((i, 0) for i in range(len(entries))))

    def advance(self, positions: frozenset[_Position], segment: str) -> _State:
        moved: list[_Position] = []
        for i, pos in positions:
            pattern = self.patterns[i]
            if pos == len(pattern):
                continue
            if pattern[pos] == "**":
                moved.append((i, pos))  # `**` swallows this segment and stays
            elif pattern[pos] in ("*", segment):
                moved.append((i, pos + 1))
        return self._intern(self._closure(moved))

    def _closure(self, positions: Iterable[_Position]) -> frozenset[_Position]:
        # `**` also matches zero segments, so a position before it is also one after it.
        result: set[_Position] = set()
        todo = list(positions)
        while todo:
            i, pos = todo.pop()
            if (i, pos) not in result:
                result.add((i, pos))
                if pos < len(self.patterns[i]) and self.patterns[i][pos] == "**":
                    todo.append((i, pos + 1))
        return frozenset(result)

    def _intern(self, positions: frozenset[_Position]) -> _State:
        state = self._interned.get(positions)
        if state is None:
            state = self._interned[positions] = _State(self, positions)
        return state


def _parse_norm(pattern: str, spec: str) -> _Norm:
    kind, _, precision = spec.partition(":")
    if precision not in _PRECISIONS.get(kind, ()):
        raise ValueError(
            f"normalize {pattern!r}: unknown kind {spec!r}; "
            "expected datetime, datetime:s, datetime:ms, datetime:us, number or case"
        )
    return kind, precision


def _compile(rules: CompareRules) -> _Machine:
    return _compile_patterns(rules.ignore, rules.unordered, rules.normalize)


@lru_cache(maxsize=256)
def _compile_patterns(
    ignore: tuple[str, ...], unordered: tuple[str, ...], normalize: tuple[tuple[str, str], ...]
) -> _Machine:
    # Keyed on the patterns alone, so rules differing only in headers, status or tolerance
    # share one machine (and its cached states).
    return _Machine(ignore, unordered, normalize)
