"""An example's differences laid out as two aligned JSON documents, primary beside candidate.

Events carry the differing values with their JSON Pointers, not whole bodies, so the view
rebuilds the part of each body that leads to them: the objects and arrays on the way, then the
two values. Unchanged members are left out (arrays show a gap as `…`), so both columns keep
the same shape and each changed value sits level with its counterpart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_VALUE_LINES = 40
_INDENT = "  "


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the view. A side is None where that answer has nothing (missing/extra).

    `kind` is set on the first line of a changed value, `changed` on all its lines.
    """

    left: str | None
    right: str | None
    changed: bool = False
    kind: str = ""


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    diffs: list[Mapping[str, Any]] = field(default_factory=list)


def diff_rows(diffs: list[Mapping[str, Any]]) -> list[Row]:
    """The rows for one example: status and headers first, then the body's skeleton."""
    rows: list[Row] = []
    root = _Node()
    for diff in diffs:
        path = diff.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            rows += _leaf(diff, f"{path}: ", 0)
            continue
        node = root
        for segment in _segments(path):
            node = node.children.setdefault(segment, _Node())
        node.diffs.append(diff)
    _render(root, "", 0, rows)
    return rows


def _segments(pointer: str) -> list[str]:
    if pointer == "/":  # shadow's name for the whole body
        return []
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


def _render(node: _Node, label: str, depth: int, rows: list[Row]) -> None:
    for diff in node.diffs:
        rows += _leaf(diff, label, depth)
    if not node.children:
        return
    is_array = all(key.isdigit() for key in node.children)
    pad = _INDENT * depth
    opener, closer = ("[", "]") if is_array else ("{", "}")
    rows.append(Row(pad + label + opener, pad + label + opener))
    keys = sorted(node.children, key=int) if is_array else list(node.children)
    expected = 0
    for key in keys:
        if is_array:
            if int(key) != expected:  # elements before this one are unchanged
                gap = _INDENT * (depth + 1) + "…"
                rows.append(Row(gap, gap))
            expected = int(key) + 1
        child_label = "" if is_array else json.dumps(key, ensure_ascii=False) + ": "
        _render(node.children[key], child_label, depth + 1, rows)
    rows.append(Row(pad + closer, pad + closer))


def _pretty(value: Any) -> list[str]:
    lines = json.dumps(value, indent=2, ensure_ascii=False, default=str).splitlines()
    if len(lines) > MAX_VALUE_LINES:
        more = len(lines) - MAX_VALUE_LINES
        lines = [*lines[:MAX_VALUE_LINES], f"… {more} more lines"]
    return lines


def _leaf(diff: Mapping[str, Any], label: str, depth: int) -> list[Row]:
    kind = str(diff.get("kind", ""))
    left = [] if kind == "extra" else _pretty(diff.get("primary"))
    right = [] if kind == "missing" else _pretty(diff.get("candidate"))
    pad = _INDENT * depth
    cont = pad + " " * len(label)
    rows = []
    for i in range(max(len(left), len(right))):
        prefix = pad + label if i == 0 else cont
        rows.append(
            Row(
                prefix + left[i] if i < len(left) else None,
                prefix + right[i] if i < len(right) else None,
                changed=True,
                kind=kind if i == 0 else "",
            )
        )
    return rows


def unified_excerpt(diffs: list[Mapping[str, Any]]) -> list[str]:
    """A text body's `line:N` differences as `diff -u` shows them: `@@ line 3 @@`, `-`, `+`."""
    out: list[str] = []
    last = -2
    for diff in diffs:
        path, kind = str(diff.get("path", "")), diff.get("kind")
        number = path.removeprefix("line:")
        if not path.startswith("line:") or not number.isdigit():
            continue
        if int(number) not in (last, last + 1):
            out.append(f"@@ line {number} @@")
        last = int(number)
        if kind != "extra":
            out.append(f"-{diff.get('primary')}")
        if kind != "missing":
            out.append(f"+{diff.get('candidate')}")
    if len(out) > MAX_VALUE_LINES:
        out = [*out[:MAX_VALUE_LINES], f"… {len(out) - MAX_VALUE_LINES} more lines"]
    return out


def common_affixes(left: str, right: str) -> tuple[int, int]:
    """Lengths of the longest common prefix and suffix (not overlapping) of two strings."""
    limit = min(len(left), len(right))
    start = 0
    while start < limit and left[start] == right[start]:
        start += 1
    end = 0
    while end < limit - start and left[-1 - end] == right[-1 - end]:
        end += 1
    return start, end
