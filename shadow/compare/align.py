"""Two sequences aligned as `diff` aligns lines, with a bounded cost on any input.

difflib's matcher is quadratic when both sides hold long runs of equal items (ten thousand
`<item>` siblings, a CSV of repeated rows). The common prefix and suffix are taken off first,
which leaves the usual change (a few items inserted, removed or changed) tiny; a middle still
larger than `MAX_CELLS` is paired by position, as JSON arrays are.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from difflib import SequenceMatcher

__all__ = ["MAX_CELLS", "Opcode", "align"]

MAX_CELLS = 250_000  # len(middle a) x len(middle b) that difflib may take on
Opcode = tuple[str, int, int, int, int]  # as SequenceMatcher.get_opcodes(): tag, a0, a1, b0, b1


def align(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[Opcode]:
    """Opcodes (`equal`, `replace`, `delete`, `insert`) turning `a` into `b`."""
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    out: list[Opcode] = []
    if start:
        out.append(("equal", 0, start, 0, start))
    if start in (end_a, end_b):  # only an insertion or only a removal
        out.append(("delete", start, end_a, start, start))
        out.append(("insert", end_a, end_a, start, end_b))
    elif (end_a - start) * (end_b - start) <= MAX_CELLS:
        matcher = SequenceMatcher(None, a[start:end_a], b[start:end_b], autojunk=False)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            out.append((tag, a0 + start, a1 + start, b0 + start, b1 + start))
    else:
        shared = min(end_a, end_b) - start
        out.append(("replace", start, start + shared, start, start + shared))
        if end_a > start + shared:
            out.append(("delete", start + shared, end_a, end_b, end_b))
        if end_b > start + shared:
            out.append(("insert", end_a, end_a, start + shared, end_b))
    if end_a < len(a):
        out.append(("equal", end_a, len(a), end_b, len(b)))
    return [op for op in out if op[1] < op[2] or op[3] < op[4]]
