"""The walk beneath a node no compare rule reaches: strict JSON equality, nothing else.

`diff_json` hands a subtree here when no pattern is live below it (the rules' DFA is in its
dead state), no normalizer is inherited from above and no numeric tolerance is set: then no
ignore, normalizer, unordered, sorted or null_is_missing rule can apply to any node beneath,
and the walk only has to find differences. It finds exactly what `diff_json` would, in the
same order: per object its missing members (the primary's order), then its extra ones (the
candidate's), then its common members walked in the primary's order; per array the common
indices walked, the tail reported `missing` or `extra`.

Cheaper than the general walk in three ways: no rule lookup per node; a node's children
are sorted out in one pass, scalars of one type compared there and containers by their
member-order orjson texts (equal texts, equal JSON: a changed leaf among thousands of equal
siblings costs a text of each, not a frame each), members only one side has looked for only
when the key sets differ; and once `out` keeps no more differences (`Differences.full`),
the ones found past the cap are counted without being built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import orjson

from shadow.compare.differences import Differences
from shadow.compare.normalize import json_kind
from shadow.compare.pointers import Path, format_pointer
from shadow.model import Difference

__all__ = ["diff_plain", "same_json"]

# (location, primary, candidate, what is known of them: one of the three below)
_Frame: TypeAlias = "tuple[Path, Any, Any, int]"
_UNKNOWN, _UNEQUAL, _TEXTS_DIFFER = 0, 1, 2  # `==` is False; their member-order texts differ
_Child: TypeAlias = "tuple[str | int, Any, Any]"  # (key or index, primary, candidate)
_CONTAINERS = ("dict", "list")
_SCALARS = frozenset((str, int, float, bool, type(None)))  # exact types: no subclass


def same_json(p: Any, c: Any, in_order: bool = True) -> bool:
    """Whether two values certainly hold the same JSON, found at C speed.

    Python's `==` is necessary for JSON equality (it only blurs 1, 1.0 and True) and stops
    at the first difference; equal orjson texts are sufficient, first in member order, then
    with sorted keys (members in another order are still equal; `in_order=False` when the
    member-order texts are known to differ). Anything in between,
    including values orjson cannot write or `==` cannot compare without deep recursion, is
    left to a walk.
    """
    try:
        if p != c:
            return False
        dumps = orjson.dumps
        return (in_order and dumps(p) == dumps(c)) or (
            dumps(p, option=orjson.OPT_SORT_KEYS) == dumps(c, option=orjson.OPT_SORT_KEYS)
        )
    except (orjson.JSONEncodeError, RecursionError):
        return False


def diff_plain(path: Path, p: Any, c: Any, out: list[Difference]) -> None:
    """Append to `out` the differences between `p` and `c` at `path`, under no rule."""
    stack: list[_Frame] = [(path, p, c, _UNKNOWN)]
    while stack:
        path, p, c, known = stack.pop()
        if not (type(p) is dict is type(c) or type(p) is list is type(c)):
            kind_p, kind_c = json_kind(p), json_kind(c)  # subclasses have a kind too
            if kind_p != kind_c:
                _report(out, path, "type", p, c)
                continue
            if kind_p not in _CONTAINERS:
                if known == _UNEQUAL or p != c:
                    _report(out, path, "value", p, c)
                continue
        if known != _UNEQUAL and same_json(p, c, known == _UNKNOWN):
            continue
        if isinstance(p, dict):
            if p.keys() == c.keys():
                children: Iterable[_Child] = zip(p, p.values(), map(c.__getitem__, p), strict=True)
            else:
                _members_apart(path, p, c, out)
                children = ((key, value, c[key]) for key, value in p.items() if key in c)
        else:
            shared = min(len(p), len(c))
            for i in range(shared, len(p)):
                _report(out, (path, i), "missing", p[i], None)
            for i in range(shared, len(c)):
                _report(out, (path, i), "extra", None, c[i])
            children = zip(range(shared), p, c, strict=False)
        stack.extend(reversed(_differing(path, children)))


def _members_apart(path: Path, p: dict[str, Any], c: dict[str, Any], out: list[Difference]) -> None:
    """The members only one side has: `missing` in the primary's order, then `extra`."""
    for key, value in p.items():
        if key not in c:
            _report(out, (path, key), "missing", value, None)
    for key, value in c.items():
        if key not in p:
            _report(out, (path, key), "extra", None, value)


def _differing(path: Path, children: Iterable[_Child]) -> list[_Frame]:
    """Frames for the children that may differ, in order: scalars of one type are compared
    here, containers by their orjson texts (equal texts, equal JSON)."""
    frames: list[_Frame] = []
    dumps = orjson.dumps
    for key, a, b in children:
        kind = type(a)
        if a is b:
            continue
        if kind is type(b):
            if kind in _SCALARS:
                if a != b:
                    frames.append(((path, key), a, b, _UNEQUAL))
                continue
            if kind is dict or kind is list:
                try:
                    if dumps(a) == dumps(b):
                        continue
                except (orjson.JSONEncodeError, RecursionError):
                    frames.append(((path, key), a, b, _UNKNOWN))
                    continue
                frames.append(((path, key), a, b, _TEXTS_DIFFER))
                continue
        frames.append(((path, key), a, b, _UNKNOWN))
    return frames


def _report(out: list[Difference], path: Path, kind: str, p: Any, c: Any) -> None:
    if isinstance(out, Differences) and out.full:
        out.total += 1  # past the cap: counted, not built
    else:
        out.append(Difference(format_pointer(path), kind, p, c))
