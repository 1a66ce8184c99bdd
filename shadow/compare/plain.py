"""The walk beneath a node no compare rule reaches: strict JSON equality, nothing else.

`diff_json` hands a subtree here when no pattern is live below it (the rules' DFA is in its
dead state), no normalizer is inherited from above and no numeric tolerance is set: then no
ignore, normalizer, unordered, sorted or null_is_missing rule can apply to any node beneath,
and the walk only has to find differences. It finds exactly what `diff_json` would, in the
same order: per object its missing members (the primary's order), then its extra ones (the
candidate's), then its common members walked in the primary's order; per array the common
indices walked, the tail reported `missing` or `extra`.

Cheaper than the general walk in three ways: no rule lookup per node; the children of a
container are filtered at C speed, `==` on each pair and one orjson text of all the equal
ones per side (so a changed leaf among thousands of equal siblings costs one pass over
them, not a frame each); and once `out` keeps no more differences (`Differences.full`),
the ones found past the cap are counted without building them.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import orjson

from shadow.compare.differences import Differences
from shadow.compare.normalize import json_kind
from shadow.compare.pointers import Path, format_pointer
from shadow.model import Difference

__all__ = ["diff_plain", "same_json"]

# (location, primary, candidate, whether `==` already said they differ)
_Frame: TypeAlias = "tuple[Path, Any, Any, bool]"
_CONTAINERS = ("dict", "list")
_SCALARS = frozenset((str, int, float, bool, type(None)))  # exact types: no subclass


def same_json(p: Any, c: Any) -> bool:
    """Whether two values certainly hold the same JSON, found at C speed.

    Python's `==` is necessary for JSON equality (it only blurs 1, 1.0 and True) and stops
    at the first difference; equal orjson texts are sufficient, first in member order, then
    with sorted keys (members in another order are still equal). Anything in between,
    including values orjson cannot write or `==` cannot compare without deep recursion, is
    left to a walk.
    """
    try:
        if p != c:
            return False
        dumps = orjson.dumps
        return dumps(p) == dumps(c) or (
            dumps(p, option=orjson.OPT_SORT_KEYS) == dumps(c, option=orjson.OPT_SORT_KEYS)
        )
    except (orjson.JSONEncodeError, RecursionError):
        return False


def diff_plain(path: Path, p: Any, c: Any, out: list[Difference]) -> None:
    """Append to `out` the differences between `p` and `c` at `path`, under no rule."""
    stack: list[_Frame] = [(path, p, c, False)]
    while stack:
        path, p, c, unequal = stack.pop()
        kind = type(p)
        if kind is not type(c) or (kind is not dict and kind is not list):
            kind_p, kind_c = json_kind(p), json_kind(c)  # subclasses have a kind too
            if kind_p != kind_c or kind_p not in _CONTAINERS:
                if kind_p != kind_c:
                    _report(out, path, "type", p, c)
                elif p != c:
                    _report(out, path, "value", p, c)
                continue
        if not unequal and same_json(p, c):
            continue
        if isinstance(p, dict):
            pairs = _dict_pairs(path, p, c, out)
        else:
            pairs = [(i, a, b) for i, (a, b) in enumerate(zip(p, c, strict=False)) if a is not b]
            shared = min(len(p), len(c))
            for i in range(shared, len(p)):
                _report(out, (path, i), "missing", p[i], None)
            for i in range(shared, len(c)):
                _report(out, (path, i), "extra", None, c[i])
        stack.extend(reversed(_differing(path, pairs)))


def _dict_pairs(
    path: Path, p: dict[str, Any], c: dict[str, Any], out: list[Difference]
) -> list[tuple[Any, Any, Any]]:
    pairs = []
    for key, value in p.items():
        if key in c:
            other = c[key]
            if value is not other:
                pairs.append((key, value, other))
        else:
            _report(out, (path, key), "missing", value, None)
    for key, value in c.items():
        if key not in p:
            _report(out, (path, key), "extra", None, value)
    return pairs


def _differing(path: Path, pairs: list[tuple[Any, Any, Any]]) -> list[_Frame]:
    """Frames for the children that may differ, in order. Scalars of one type are compared
    here; containers `==` calls equal are proven equal together, by one orjson text of them
    all per side (else every child gets a frame: they are then walked one by one)."""
    frames: list[_Frame] = []
    equal_p: list[Any] = []
    equal_c: list[Any] = []
    for key, a, b in pairs:
        kind = type(a)
        if kind is type(b):
            if kind in _SCALARS:
                if a != b:
                    frames.append(((path, key), a, b, True))
                continue
            if kind is dict or kind is list:
                try:
                    same = a == b
                except RecursionError:  # too deep for `==`: the walk will tell
                    frames.append(((path, key), a, b, False))
                    continue
                if same:
                    equal_p.append(a)
                    equal_c.append(b)
                else:
                    frames.append(((path, key), a, b, True))
                continue
        frames.append(((path, key), a, b, False))
    if equal_p and not same_json(equal_p, equal_c):
        return [((path, key), a, b, False) for key, a, b in pairs]
    return frames


def _report(out: list[Difference], path: Path, kind: str, p: Any, c: Any) -> None:
    if isinstance(out, Differences) and out.full:
        out.total += 1  # past the cap: counted, not built
    else:
        out.append(Difference(format_pointer(path), kind, p, c))
