"""Write what calibration learned as a TOML fragment a user reviews and adds to a config.

One `[[compare.endpoint]]` block per endpoint and route, holding `ignore` paths,
`ignore_headers` and `normalize` entries, each with a comment giving the rates it was learned
from. Paths that were noisy but refused, or too rarely noisy to learn, are written as comments so
the review sees them too. The text is parsed back in the tests, so it stays valid TOML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
    routes: Mapping[str, Sequence[tuple[str, str]]],
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
            for method, template in routes.get(endpoint, ()):
                lines += _block(endpoint, method, template, learned)
    return "\n".join(lines) + "\n"


def _comments(found: Sequence[Finding]) -> list[str]:
    out = []
    for f in found:
        if f.verdict == "refused":
            out.append(f"# refused: {toml_string(f.pattern)}: {f.rates()}; {f.reason}")
        elif f.verdict == "weak":
            out.append(f"# not learned: {toml_string(f.pattern)}: {f.rates()}; {f.reason}")
    return out


def _block(endpoint: str, method: str, template: str, learned: Sequence[Finding]) -> list[str]:
    lines = [
        "[[compare.endpoint]]",
        f"name = {toml_string(endpoint)}",
        f"method = {toml_string(method)}",
        f"path = {toml_string(template)}",
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
