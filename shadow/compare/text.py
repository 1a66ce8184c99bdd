"""Two text bodies compared line by line: each changed, missing or extra line at `line:N`.

Lines are split on "\n" only, so a changed line ending (CRLF for LF) or a final newline that
comes or goes is a difference too. Lines are aligned as `diff -u` aligns them
(`shadow.compare.align`), so one inserted line is one `extra`, not a change on every line after
it. A changed line and a missing
one are numbered as in the primary's body, an extra one as in the candidate's.
"""

from __future__ import annotations

from shadow.compare.align import align
from shadow.compare.bodypaths import PathRules
from shadow.model import Difference

__all__ = ["diff_lines"]


def diff_lines(primary: str, candidate: str, rules: PathRules) -> list[Difference]:
    """Every line that differs between two texts, by the rules' `line:` patterns."""
    lines_p, lines_c = primary.split("\n"), candidate.split("\n")
    out: list[Difference] = []
    for tag, p0, p1, c0, c1 in align(lines_p, lines_c):
        if tag == "equal":
            continue
        paired = min(p1 - p0, c1 - c0) if tag == "replace" else 0
        for k in range(paired):
            path = f"line:{p0 + k + 1}"
            a, b = lines_p[p0 + k], lines_c[c0 + k]
            if not rules.ignored(path) and not rules.equal(path, a, b):
                out.append(Difference(path, "value", a, b))
        out += _unpaired(lines_p, range(p0 + paired, p1), "missing", rules)
        out += _unpaired(lines_c, range(c0 + paired, c1), "extra", rules)
    return out


def _unpaired(lines: list[str], at: range, kind: str, rules: PathRules) -> list[Difference]:
    """`missing` (primary's lines) or `extra` (candidate's) differences, unless ignored."""
    sides = (lambda line: (line, None)) if kind == "missing" else (lambda line: (None, line))
    return [
        Difference(f"line:{i + 1}", kind, *sides(lines[i]))
        for i in at
        if not rules.ignored(f"line:{i + 1}")
    ]
