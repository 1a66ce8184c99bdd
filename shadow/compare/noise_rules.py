"""Write what calibration learned as a TOML fragment a user reviews and adds to a config.

One `[[compare.endpoint]]` block per endpoint and route (with the `match_header`,
`match_body` and `match_name` criteria that picked its records, so a rule learned for one
operation of an RPC route never applies to another), holding `ignore` paths,
`ignore_headers` and `normalize` entries, each with a comment giving the rates it was learned
from. Paths that were noisy but refused, or too rarely noisy to learn, are written as comments so
the review sees them too. The text is parsed back in the tests, so it stays valid TOML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shadow.model import Criterion

# Where an endpoint's records come from: method, route, and the criteria beyond them.
Route = tuple[str, str, tuple[Criterion, ...]]

MODES = {
    "secondary": "the secondary's answer",
    "repeat": "the primary's answer to the same request sent again",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One noisy path of one endpoint at the end of a run, and what was made of it."""

    endpoint: str
    pattern: str
    noise: int
    pairs: int
    raw: int
    compared: int
    verdict: str  # learned | refused | weak
    reason: str = ""  # why refused or not learned
    normalizer: str | None = None

    def rates(self) -> str:
        return (
            f"legacy {self.noise}/{self.pairs} pairs ({_percent(self.noise, self.pairs)}), "
            f"candidate {self.raw}/{self.compared} ({_percent(self.raw, self.compared)})"
        )


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_rules(
    findings: Sequence[Finding],
    routes: Mapping[str, Sequence[Route]],
    mode: str,
    pairs: int,
    run_id: str,
    stamp: str,
) -> str:
    lines = [
        f"# Noise rules learned by `shadow run --learn-noise` on {stamp} (run {run_id}):",
        f"# {pairs} calibration pairs, each a primary answer against {MODES[mode]}.",
        "#",
        "# Review every rule, then add these blocks to the config. Each [[compare.endpoint]]",
        "# block adds its rules to the endpoint it names and to no other.",
        '# "legacy a/b": the primary disagreed with itself at that path in a of b pairs;',
        '# "candidate c/d": the candidate differed from the primary there in c of d exchanges.',
    ]
    by_endpoint: dict[str, list[Finding]] = {}
    for finding in findings:
        by_endpoint.setdefault(finding.endpoint, []).append(finding)
    if not by_endpoint:
        lines.append("#\n# Nothing was noisy: no rules to add.")
    for endpoint, found in by_endpoint.items():
        lines += ["", f"# --- {endpoint}"]
        lines += _comments(found)
        learned = [f for f in found if f.verdict == "learned"]
        if learned:
            for method, template, match in routes.get(endpoint, ()):
                lines += _block(endpoint, method, template, match, learned)
    return "\n".join(lines) + "\n"


def _comments(found: Sequence[Finding]) -> list[str]:
    out = []
    for f in found:
        if f.verdict == "refused":
            out.append(f"# refused: {toml_string(f.pattern)}: {f.rates()}; {f.reason}")
        elif f.verdict == "weak":
            out.append(f"# not learned: {toml_string(f.pattern)}: {f.rates()}; {f.reason}")
    return out


def _match_lines(match: tuple[Criterion, ...]) -> list[str]:
    """`match_header = { ... }`, `match_body = { ... }`, `match_name = "..."` as needed."""
    lines = []
    for kind, key in (("header", "match_header"), ("body", "match_body")):
        pairs = [f"{toml_string(k)} = {_toml_scalar(v)}" for c, k, v in match if c == kind]
        if pairs:
            lines.append(f"{key} = {{ {', '.join(pairs)} }}")
    names = [value for kind, _, value in match if kind == "name"]
    if names:
        lines.append(f"match_name = {toml_string(names[0])}")
    return lines


def _toml_scalar(value: Any) -> str:
    if isinstance(value, str):
        return toml_string(value)
    return orjson.dumps(value).decode()  # true, false, 12, 1.5: the same in TOML


def _block(
    endpoint: str,
    method: str,
    template: str,
    match: tuple[Criterion, ...],
    learned: Sequence[Finding],
) -> list[str]:
    lines = [
        "[[compare.endpoint]]",
        f"name = {toml_string(endpoint)}",
        f"method = {toml_string(method)}",
        f"path = {toml_string(template)}",
        *_match_lines(match),
    ]
    ignore = [f for f in learned if f.normalizer is None and not f.pattern.startswith("header:")]
    headers = [f for f in learned if f.pattern.startswith("header:")]
    normalize = [f for f in learned if f.normalizer is not None]
    if ignore:
        lines.append("ignore = [")
        lines += [
            f"  {toml_string(f.pattern)},  # {f.rates()}" + (f"; {f.reason}" if f.reason else "")
            for f in ignore
        ]
        lines.append("]")
    if headers:
        lines.append("ignore_headers = [")
        lines += [
            f"  {toml_string(f.pattern.removeprefix('header:'))},  # {f.rates()}" for f in headers
        ]
        lines.append("]")
    if normalize:
        lines += ["", "[compare.endpoint.normalize]"]
        lines += [
            f"{toml_string(f.pattern)} = {toml_string(f.normalizer or '')}  # {f.rates()}"
            for f in normalize
        ]
    lines.append("")
    return lines
