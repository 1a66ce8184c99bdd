"""One endpoint's section of the HTML report: counts, latency, diff paths, examples, errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from shadow.model import statuses_text
from shadow.report.diffview import Row, common_affixes, diff_rows, unified_excerpt
from shadow.report.plots import Plotter
from shadow.report.text import fmt_ms

Curve = Sequence[tuple[float, float]]
OPEN_EXAMPLES = 3


def slug(index: int) -> str:
    """The anchor of the endpoint ranked `index`: made by the report, never from an event."""
    return f"ep-{index}"


def endpoint_section(
    index: int,
    name: str,
    entry: Mapping[str, Any],
    curves: Mapping[str, Curve] | None,
    plotter: Plotter,
) -> str:
    anchor = slug(index)
    bad = entry["mismatched"] or entry["errors"]
    tag = (
        f'<span class="tag bad">{entry["mismatched"]} mismatched · {entry["errors"]} errors</span>'
        if bad
        else '<span class="tag good">all matched</span>'
    )
    counts = (
        f"{entry['requests']} request{'' if entry['requests'] == 1 else 's'} · {entry['matched']} matched · "
        f"{entry['mismatched']} mismatched · {entry['errors']} errors · {entry['noise']} noise"
    )
    if entry["both_failed"]:
        alike = ", ".join(f"{cause} × {n}" for cause, n in entry["both_failed"].items())
        counts += f" · failed alike on both sides: {escape(alike)}"
    if entry["body_not_comparable"]:
        counts += " · body not comparable (status and headers compared)"
    if entry["statuses"]:
        counts += f"<br>answers: {escape(statuses_text(entry['statuses']))}"
    examples = _unique_examples(entry)
    parts = [
        f'<section class="panel endpoint" id="{anchor}">',
        f'<h2><a href="#{anchor}">{escape(name)}</a>{tag}</h2>',
        f'<p class="counts">{counts}</p>',
        _latency_block(entry, curves, plotter),
        _paths_table(anchor, entry, examples),
        _examples(anchor, examples),
        _errors(entry),
        _noise(entry),
        "</section>",
    ]
    return "\n".join(p for p in parts if p)


def _unique_examples(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Each kept exchange once, in the order of the paths it is an example of."""
    seen: dict[int, Mapping[str, Any]] = {}  # by identity: a kept exchange is one object
    for diff in entry["diffs"].values():
        for example in diff["examples"]:
            seen.setdefault(id(example), example)
    return list(seen.values())


def _latency_block(
    entry: Mapping[str, Any], curves: Mapping[str, Curve] | None, plotter: Plotter
) -> str:
    latency = entry["latency_ms"]
    if not latency:
        return ""
    rows = "".join(
        f'<tr><td class="name">{escape(target)}</td><td>{v.get("count", "-")}</td>'
        + "".join(f"<td>{fmt_ms(v.get(k))}</td>" for k in ("p50", "p90", "p99", "max"))
        + "</tr>"
        for target, v in latency.items()
    )
    table = (
        '<table><thead><tr><th class="name">ms</th><th>count</th><th>p50</th><th>p90</th>'
        f"<th>p99</th><th>max</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="plot-note">latency {escape(_source_note(entry["latency_source"]))}</p>'
    )
    if not curves:
        return f"<h3>Latency</h3>{table}"
    svg = plotter.latency(curves, sparse=entry["latency_source"] == "summary")
    return (
        f'<h3>Latency</h3><div class="split"><div class="plot">{svg}</div><div>{table}</div></div>'
    )


def _source_note(source: Any) -> str:
    return {
        "events": "from every exchange",
        "summary": "from the runs' summaries",
        "partial": "from mismatch and error events only",
    }.get(str(source), "")


def _paths_table(anchor: str, entry: Mapping[str, Any], examples: list[Mapping[str, Any]]) -> str:
    if not entry["diffs"]:
        return ""
    position = {id(ex): i for i, ex in enumerate(examples)}
    requests = entry["requests"] or 1
    rows = []
    for path, diff in entry["diffs"].items():
        kinds = " ".join(
            f'<span class="tag kind">{escape(k)} {n}</span>' for k, n in diff["kinds"].items()
        )
        links = " ".join(
            f'<a href="#{anchor}-ex-{position[id(ex)]}">#{position[id(ex)] + 1}</a>'
            for ex in diff["examples"]
        )
        share = f"{100 * diff['exchanges'] / requests:.1f}%"
        rows.append(
            f"<tr><td><code>{escape(path)}</code></td><td>{kinds}</td><td>{diff['count']}</td>"
            f"<td>{diff['exchanges']}</td><td>{share}</td><td>{links or '-'}</td></tr>"
        )
    return (
        '<h3>Differences</h3><table class="paths"><thead><tr><th>path</th><th>kind</th>'
        "<th>diffs</th><th>exchanges</th><th>of requests</th><th>examples</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _examples(anchor: str, examples: list[Mapping[str, Any]]) -> str:
    """The first few examples open, the rest folded (a click, no script, opens them)."""
    shown = "".join(_example(anchor, i, ex) for i, ex in enumerate(examples[:OPEN_EXAMPLES]))
    rest = examples[OPEN_EXAMPLES:]
    if not rest:
        return shown
    folded = "".join(_example(anchor, i, ex) for i, ex in enumerate(rest, OPEN_EXAMPLES))
    return f"{shown}<details><summary>{len(rest)} more examples</summary>{folded}</details>"


def _example(anchor: str, index: int, example: Mapping[str, Any]) -> str:
    status = _mapping(example.get("status"))
    latency = _mapping(example.get("latency_ms"))
    sides = " · ".join(
        f"{escape(str(side))} {escape(str(code))}"
        + (f" in {fmt_ms(latency.get(side))} ms" if side in latency else "")
        for side, code in status.items()
    )
    head = (
        f"<b>example #{index + 1}</b> · run {escape(str(example.get('run_id')))} · "
        f"seq {escape(str(example.get('seq')))} · id {escape(str(example.get('id')))} · {sides}"
    )
    diffs = example.get("diffs") or []
    shown = f"{len(diffs)} of {example.get('diff_count', len(diffs))} differences"
    return (
        f'<div class="example" id="{anchor}-ex-{index}"><div class="head">{head}</div>'
        f"{_request(example)}{_side_by_side(diffs)}{_unified(diffs)}"
        f'<p class="hint" style="padding:0 12px">{shown}; unchanged parts of the bodies '
        "are left out</p></div>"
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _request(example: Mapping[str, Any]) -> str:
    request = _mapping(example.get("request"))
    line = f"{request.get('method', '?')} {request.get('path', '?')}"
    curl = example.get("curl")
    notes = []
    if isinstance(curl, str):
        target = example.get("target_url")
        where = f" (this run's primary: {target})" if isinstance(target, str) else ""
        notes.append(
            f"set TARGET to the server to ask{where}; each $NAME placeholder stands for a "
            "secret header's value, left out of the report"
        )
    if "body_excerpt" in request or request.get("clipped"):
        notes.append("the request was too long to keep whole here: the events file has it all")
    hint = "".join(f'<div class="hint">{escape(n)}</div>' for n in notes)
    command = f'<pre class="curl">{escape(curl)}</pre>' if isinstance(curl, str) else ""
    return f'<div class="request"><code class="line">{escape(line)}</code>{command}{hint}</div>'


def _unified(diffs: list[Mapping[str, Any]]) -> str:
    """The lines of a text body that differ, as a short unified excerpt ("" when none)."""
    lines = unified_excerpt(diffs)
    return f'<pre class="unified">{escape(chr(10).join(lines))}</pre>' if lines else ""


def _side_by_side(diffs: list[Mapping[str, Any]]) -> str:
    rows = "".join(_row(row) for row in diff_rows(diffs))
    return (
        '<table class="sxs"><thead><tr><th class="primary">primary</th>'
        '<th class="candidate">candidate</th><th class="kind"></th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _row(row: Row) -> str:
    if not row.changed:
        return (
            f'<tr><td class="ctx">{escape(row.left or "")}</td>'
            f'<td class="ctx">{escape(row.right or "")}</td><td class="kind"></td></tr>'
        )
    left, right = _marked(row.left, row.right)
    return (
        f"<tr>{_side(left, 'del', row.left is None)}{_side(right, 'ins', row.right is None)}"
        f'<td class="kind">{escape(row.kind)}</td></tr>'
    )


def _side(html_text: str, cls: str, absent: bool) -> str:
    if absent:
        return '<td class="absent">(absent)</td>'
    return f'<td class="{cls}">{html_text}</td>'


def _marked(left: str | None, right: str | None) -> tuple[str, str]:
    """Both sides escaped, the part where they differ wrapped in <mark>."""
    if left is None or right is None:
        return escape(left or ""), escape(right or "")
    start, end = common_affixes(left, right)

    def mark(text: str) -> str:
        middle = text[start : len(text) - end]
        return (
            escape(text[:start])
            + (f"<mark>{escape(middle)}</mark>" if middle else "")
            + escape(text[len(text) - end :])
        )

    return mark(left), mark(right)


def _errors(entry: Mapping[str, Any]) -> str:
    if not entry["errors_by_kind"]:
        return ""
    rows = []
    for kind, info in entry["errors_by_kind"].items():
        sides = ", ".join(f"{escape(str(s))} {n}" for s, n in info["sides"].items())
        example = info["example"] or {}
        request = example.get("request") or {}
        where = f"seq {example.get('seq')}: {request.get('method', '?')} {request.get('path', '?')}"
        rows.append(
            f"<tr><td><code>{escape(kind)}</code></td><td>{info['count']}</td><td>{sides}</td>"
            f'<td class="name"><code>{escape(where)}</code><br>'
            f"{escape(str(example.get('message', '')))}</td></tr>"
        )
    return (
        '<h3>Errors</h3><table class="paths"><thead><tr><th>kind</th><th>count</th>'
        '<th>side</th><th class="name">example</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _noise(entry: Mapping[str, Any]) -> str:
    if not entry["noise_paths"]:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(path)}</code></td><td>{count}</td></tr>"
        for path, count in entry["noise_paths"].items()
    )
    return (
        '<h3>Suppressed as noise</h3><table class="paths"><thead><tr><th>path</th>'
        f"<th>differences</th></tr></thead><tbody>{rows}</tbody></table>"
    )
