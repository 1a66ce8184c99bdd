"""`ignore` and `normalize` rules applied to the paths of bodies that are not JSON.

Path syntax, one per kind of body (README "Bodies that are not JSON"):

* XML and HTML: `/order/item[2]/@sku`: element names from the root down, `[k]` (from 1) when
  the parent holds more than one child of that name, `@name` for an attribute, `prefix:name`
  for a namespaced one. A pattern segment `item` matches `item` and every `item[k]`; `*` is
  one segment, `@*` any attribute, `**` any number of segments.
* text: `line:12`, a line counted from 1; patterns `line:12`, `line:3-5` and `line:*`.
* url-encoded forms are JSON-like (`/field`, `/field/1` for a repeated field) and go through
  the JSON walk with its rules as they are.

A rule that matches a node also covers what lies beneath it, as in JSON: an ignored element
hides its attributes and children; a normalizer set on one applies to every value beneath it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from shadow.compare.normalize import Norm, numbers_close, parse_norm
from shadow.compare.normalize import normalize as normalize_value
from shadow.model import LINE_PATTERN, CompareRules

__all__ = ["PathRules", "split_markup_path"]

_INDEXED = re.compile(r"(.+)\[([0-9]+)\]")


def split_markup_path(path: str) -> tuple[str, ...]:
    """`/a/b[2]/@c` -> ("a", "b[2]", "@c"); the root "/" -> ()."""
    body = path.removeprefix("/")
    return tuple(body.split("/")) if body else ()


def _segment_matches(pattern: str, segment: str) -> bool:
    if pattern in ("*", segment) or (pattern == "@*" and segment.startswith("@")):
        return True
    indexed = _INDEXED.fullmatch(segment)
    return indexed is not None and indexed.group(1) == pattern


def _glob(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Whether `pattern` matches `path` itself or one of its ancestors."""
    # positions[i]: the pattern positions alive after i path segments (`**` stays alive).
    alive = _closure(pattern, {0})
    for segment in path:
        if len(pattern) in alive:
            return True  # an ancestor matched
        moved = set()
        for pos in alive:
            if pos < len(pattern):
                if pattern[pos] == "**":
                    moved.add(pos)
                elif _segment_matches(pattern[pos], segment):
                    moved.add(pos + 1)
        alive = _closure(pattern, moved)
        if not alive:
            return False
    return len(pattern) in alive


def _closure(pattern: tuple[str, ...], positions: set[int]) -> set[int]:
    out = set(positions)
    for pos in sorted(positions):
        while pos < len(pattern) and pattern[pos] == "**":
            pos += 1
            out.add(pos)
    return out


def _line_matches(pattern: str, line: int) -> bool:
    spec = pattern.removeprefix("line:")
    if spec == "*":
        return True
    first, _, last = spec.partition("-")
    return int(first) <= line <= int(last or first)


@dataclass(frozen=True, slots=True)
class PathRules:
    """What a rule set says about one path of a markup or text body."""

    ignore: tuple[str, ...]
    normalize: tuple[tuple[str, Norm], ...]
    tolerance: float = 0.0
    relative_tolerance: float = 0.0

    @classmethod
    def of(cls, rules: CompareRules) -> PathRules:
        norms = tuple((p, parse_norm(p, spec)) for p, spec in rules.normalize)
        return cls(rules.ignore, norms, rules.tolerance, rules.relative_tolerance)

    def ignored(self, path: str) -> bool:
        return any(_matches(pattern, path) for pattern in self.ignore)

    def norm(self, path: str) -> Norm | None:
        """The first normalizer whose pattern matches `path` or an ancestor of it."""
        return next((n for p, n in self.normalize if _matches(p, path)), None)

    def equal(self, path: str, primary: str, candidate: str) -> bool:
        """Whether two texts at `path` are equal under the normalizer that applies there."""
        if primary == candidate:
            return True
        norm = self.norm(path)
        if norm is None or norm[0] in ("sorted", "null_is_missing"):
            return False
        a, b = normalize_value(primary, norm), normalize_value(candidate, norm)
        if a is None or b is None:
            return False
        if a == b:
            return True
        absolute, relative = self.tolerance, self.relative_tolerance
        return (
            isinstance(a, Decimal)
            and isinstance(b, Decimal)
            and numbers_close(a, b, absolute, relative)
        )


def _matches(pattern: str, path: str) -> bool:
    if path.startswith("line:"):
        if not LINE_PATTERN.fullmatch(pattern):
            return False
        return _line_matches(pattern, int(path.removeprefix("line:")))
    if not pattern.startswith("/"):
        return False
    return _glob(split_markup_path(pattern), split_markup_path(path))
