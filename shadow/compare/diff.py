"""Compare one primary response with one candidate response and list what differs.

Everything here is a pure function of its arguments: no I/O, no clock, no event loop. Pointer
patterns live in `shadow.compare.pointers`, normalizers in `shadow.compare.normalize`, and the
canonical forms used to match values as multisets in `shadow.compare.fingerprint`.

Design notes, stated once:

* JSON types are kept apart: Python's `1 == 1.0 == True` is not JSON equality, so values of
  different JSON kinds are a `type` difference unless a `number` normalization applies.
* Large JSON bodies are compared as texts first (`shadow.compare.jsontext.shallow`): a
  level is read into its members' raw texts, members whose texts are equal are equal under
  any rule and are never parsed, and only the differing ones are opened, down to where
  values are parsed and walked as below. It finds exactly what parsing both bodies would.
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

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeAlias

from shadow.compare.bodies import diff_other_bodies, summarize
from shadow.compare.differences import DEFAULT_MAX_DIFFERENCES, Differences
from shadow.compare.fingerprint import all_scalars, canonical_keys, fingerprint, leaf_text
from shadow.compare.jsontext import Raw, is_utf8, parse_json_body, shallow
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

_Frame: TypeAlias = "tuple[Path, Any, Any, State, Norm | None]"

# Raw texts (`_diff_texts`): bodies of this many bytes together, and not so far apart in
# length that they differ in most places (`_APART` times the difference past the sum);
# members of at least
# `_OPEN_MIN` are opened (smaller ones are parsed whole: at that size parsing costs less),
# until the texts opened add up to `_ROOM` times the two bodies. A level is parsed whole
# where opening it leaves little unparsed: more than `_FEW` members on one side only, or
# more than `_FEW` differing and most do, or more than one differing and their texts are
# two thirds of the level's (two bodies formatted apart, or every level in another order).
# A member only the exact parser reads sends the pair back to the parsing path.
_TEXT_WALK_MIN = 4096
_APART = 8
_OPEN_MIN = 1024
_ROOM = 3
_FEW = 8


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
    _walk(primary, candidate, rules, out)
    return out


def _walk(primary: Any, candidate: Any, rules: CompareRules, out: list[Difference]) -> bool:
    """The walk behind `diff_json`. Values may also be raw JSON texts (`Raw`, both sides, from
    `_diff_texts`), opened only where their texts differ: then False means the walk gave up
    on a text that only `parse_json_body` reads, with `out` holding part of the
    differences."""
    machine = compile_rules(rules)
    # Beneath the DFA's dead state no pattern applies; with no normalizer from above and no
    # tolerance, no rule does: that subtree takes the rule-free walk.
    ruleless = machine.dead if rules.tolerance <= 0 and rules.relative_tolerance <= 0 else None
    room = _ROOM * (len(primary) + len(candidate)) if type(primary) is Raw else 0
    stack: list[_Frame] = [(None, primary, candidate, machine.root, None)]
    while stack:
        frame = stack.pop()
        path, p, c, state, norm = frame
        if state.ignored or p is c:
            continue
        norm = state.norm or norm
        if type(p) is Raw:
            if p == c:  # the same text holds the same JSON, whatever the rules
                continue
            size = len(p) + len(c)
            try:
                if _OPEN_MIN <= size <= room and not _whole_arrays(state):
                    room -= size
                    opened = _open(frame, norm, out)
                    if opened is not None:
                        stack.extend(reversed(opened))
                        continue
                p, c = _parsed(p), _parsed(c)
            except _Unreadable:
                return False
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
    return True


# --- responses -------------------------------------------------------------------------------


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
    if _diff_texts(primary, candidate, rules, out):
        return
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


def _diff_texts(primary: bytes, candidate: bytes, rules: CompareRules, out: Differences) -> bool:
    """Two large JSON bodies compared without parsing the parts whose texts are equal:
    whether it did (else `out` is as it was, for the parsing path)."""
    size = len(primary) + len(candidate)
    # Far apart in length, the two are formatted apart or differ in most places: parse them.
    if size < _TEXT_WALK_MIN or _APART * abs(len(primary) - len(candidate)) > size:
        return False
    if not (is_utf8(primary) and is_utf8(candidate)):
        return False
    kept, total = len(out), out.total
    if _walk(Raw(primary), Raw(candidate), rules, out):
        return True
    del out[kept:]
    out.total = total
    return False


# --- raw texts -------------------------------------------------------------------------------


class _Unreadable(Exception):
    """A raw text that `parse_json_body` does not read: the text walk gives up."""


def _parsed(text: Raw) -> Any:
    ok, value = parse_json_body(bytes(text))
    if not ok:
        raise _Unreadable
    return value


def _open(frame: _Frame, norm: Norm | None, out: list[Difference]) -> list[_Frame] | None:
    """Two differing raw texts a level down: frames for the members whose texts differ, the
    members only one side has reported. None to parse the pair whole instead: not both
    objects or both arrays, or opening them leaves little unparsed (`_little_left`)."""
    path, p, c, state, _ = frame
    open_p, open_c = shallow(p), shallow(c)
    if open_p is None or open_c is None or type(open_p) is not type(open_c):
        return None
    if isinstance(open_p, dict):
        assert isinstance(open_c, dict)
        return _open_members(path, open_p, open_c, state, norm, out, len(p))
    assert isinstance(open_c, list)
    return _open_elements(path, open_p, open_c, state, norm, out, len(p))


def _whole_arrays(state: State) -> bool:
    """Whether a rule compares the arrays here as wholes (their elements' values needed)."""
    return state.sorted or state.unordered or state.unordered_key is not None


def _open_members(
    path: Path,
    p: dict[str, Raw],
    c: dict[str, Raw],
    state: State,
    norm: Norm | None,
    out: list[Difference],
    size: int,
) -> list[_Frame] | None:
    frames: list[_Frame] = [
        ((path, key), text, c[key], state.step(key), norm)
        for key, text in p.items()
        if key in c and text != c[key]
    ]
    only_p = [key for key in p if key not in c]
    only_c = [key for key in c if key not in p]
    if _little_left(frames, len(p) - len(only_p), len(only_p) + len(only_c), size):
        return None
    # As `_dict_children`: the primary's members missing, the candidate's extra, then the rest.
    for keys, texts, kind in ((only_p, p, "missing"), (only_c, c, "extra")):
        for key in keys:
            child = state.step(key)
            if child.ignored:
                continue
            value = _parsed(texts[key])
            if not (child.null_is_missing and value is None):
                out.append(Difference(format_pointer((path, key)), kind, *_sides(kind, value)))
    return frames


def _open_elements(
    path: Path,
    p: list[Raw],
    c: list[Raw],
    state: State,
    norm: Norm | None,
    out: list[Difference],
    size: int,
) -> list[_Frame] | None:
    shared = min(len(p), len(c))
    frames: list[_Frame] = [
        ((path, i), p[i], c[i], state.step_index(i), norm) for i in range(shared) if p[i] != c[i]
    ]
    if _little_left(frames, shared, len(p) + len(c) - 2 * shared, size):
        return None
    # As `_list_children`: the primary's tail missing, then the candidate's extra.
    for texts, kind in ((p, "missing"), (c, "extra")):
        for i in range(shared, len(texts)):
            if state.step_index(i).ignored:
                continue
            value = _parsed(texts[i])
            out.append(Difference(format_pointer((path, i)), kind, *_sides(kind, value)))
    return frames


def _little_left(frames: list[_Frame], shared: int, one_sided: int, size: int) -> bool:
    """Whether parsing a level whole costs less than its opened members: many of them to
    parse or open one by one, or most of its primary text (`size` bytes) still to open."""
    differing = len(frames)
    if one_sided > _FEW or (differing > _FEW and 2 * differing > shared):
        return True
    return differing > 1 and 3 * sum(len(frame[1]) for frame in frames) > 2 * size


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
