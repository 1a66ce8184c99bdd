"""The report as one self-contained HTML file: inline CSS, inline SVG plots, no script at all.

Everything taken from the events (endpoint names, paths, values, headers, messages: all of it
written by the servers under test or by whoever made the file) is HTML-escaped where it is
written out, and a Content-Security-Policy forbids scripts and every network fetch, so a
hostile value can neither run nor phone home. The page needs no network to be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

from shadow import __version__
from shadow.model import statuses_text
from shadow.report.html_endpoint import endpoint_section, slug
from shadow.report.plots import COLORS, Plotter
from shadow.report.summary import Report
from shadow.report.text import fmt_ms, fmt_rate, fmt_ratio

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_PLOTS = 20  # endpoints drawn (the first by impact); the rest keep their table
MIN_PLOT_SAMPLES = 5  # a curve through fewer points says less than the table beside it


def render_html(report: Report) -> str:
    data = report.data
    plotter = Plotter()
    css = resources.files("shadow.report").joinpath("report.css").read_text("utf-8")
    body = [
        _header(data),
        _cards(data),
        _endpoint_table(data),
        _latency(report, plotter),
        _over_time(report, plotter),
    ]
    for index, (name, entry) in enumerate(data["endpoints"].items()):
        curves = report.curves.get(name) if index < MAX_PLOTS and _enough(entry) else None
        body.append(endpoint_section(index, name, entry, curves, plotter))
    body.append(_inputs(data))
    title = f"shadow report: {data['verdict']['status']}"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in body if part)
        + f"\n<footer>shadow {escape(__version__)} · generated {generated}</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def _enough(entry: Mapping[str, Any]) -> bool:
    if entry["latency_source"] == "summary":
        return True
    counts = [v.get("count", 0) for v in entry["latency_ms"].values()]
    return max(counts, default=0) >= MIN_PLOT_SAMPLES


def _header(data: Mapping[str, Any]) -> str:
    verdict = data["verdict"]
    status = str(verdict["status"])
    rows = []
    for run in data["runs"]:
        rows.append(("run", _run_line(run)))
        targets = " ".join(
            f'<span class="target"><span class="swatch" style="background:'
            f'{COLORS.get(name, "#999")}"></span>{escape(name)} '
            f"<code>{escape(str(url))}</code></span>"
            for name, url in run["targets"].items()
        )
        if targets:
            rows.append(("targets", targets))
        if run["sources"]:
            rows.append(
                ("replayed", ", ".join(f"<code>{escape(str(s))}</code>" for s in run["sources"]))
            )
        for gone in run["server_exits"]:
            tail = escape("\n".join(gone["log_tail"]))
            rows.append(("server exit", _server_exit(gone, tail)))
    if data["statuses"]:
        rows.append(("answers", escape(statuses_text(data["statuses"]))))
    if data["both_failed"]:
        alike = ", ".join(f"{cause} × {n}" for cause, n in data["both_failed"].items())
        rows.append(("failed alike", escape(alike) + " (the same failure on both sides)"))
    if data["body_not_comparable"]:
        names = ", ".join(f"<code>{escape(name)}</code>" for name in data["body_not_comparable"])
        rows.append(("body not comparable", names))
    inputs = ", ".join(f"<code>{escape(s['path'])}</code>" for s in data["inputs"])
    rows.append(("events", inputs))
    meta = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return (
        '<header class="panel">\n<div class="top"><h1>shadow report</h1>'
        f'<span class="verdict {escape(status)}">{escape(status.replace("_", " "))}</span></div>\n'
        f'<p class="reason">{escape(str(verdict["reason"]))}</p>\n'
        + "".join(f'<p class="reason">because {escape(str(r))}</p>\n' for r in verdict["reasons"])
        + f'<dl class="meta">{meta}</dl>\n</header>'
    )


def _server_exit(gone: Mapping[str, Any], tail: str) -> str:
    return (
        f"{escape(str(gone['target']))} exited unexpectedly "
        f'(code {escape(str(gone["returncode"]))})<pre class="tail">{tail}</pre>'
    )


def _run_line(run: Mapping[str, Any]) -> str:
    duration = run["duration_s"]
    took = f"{duration:.1f} s" if isinstance(duration, int | float) else "duration unknown"
    parts = [f'<b class="mono">{escape(run["run_id"])}</b>']
    if run["started"]:
        parts.append(f"started {escape(str(run['started']))}")
    parts.append(took)
    if run["finished"]:
        parts.append(f"exit {escape(str(run['exit_code']))}")
        if run["interrupted"]:
            parts.append("interrupted")
    else:
        parts.append("<b>no run_finished</b> (cut short? counts from its events)")
    parts.append(f"{run['requests']} requests")
    return " · ".join(parts)


def _cards(data: Mapping[str, Any]) -> str:
    totals = data["totals"]
    cards = [
        ("requests", totals["requests"], ""),
        ("matched", totals["matched"], ""),
        ("mismatched", totals["mismatched"], "bad" if totals["mismatched"] else ""),
        ("errors", totals["errors"], "bad" if totals["errors"] else ""),
        ("input errors", totals["input_errors"], "warn" if totals["input_errors"] else ""),
        ("noise", totals["noise"], ""),
        ("runs", len(data["runs"]), ""),
        ("malformed lines", data["malformed_lines"], "warn" if data["malformed_lines"] else ""),
    ]
    items = "".join(
        f'<div class="card {cls}"><div class="n">{value}</div><div class="l">{label}</div></div>'
        for label, value, cls in cards
    )
    return f'<section class="cards">{items}</section>'


def _cell(value: Any, hot: bool = False) -> str:
    if value == 0:
        return '<td class="zero">0</td>'
    return f'<td class="hot">{value}</td>' if hot else f"<td>{value}</td>"


# A ratio is painted only when the difference also matters in absolute terms: 0.4 ms against
# 0.8 ms is twice as slow and no one's problem.
SIGNIFICANT_MS = 5.0


def _ratio_cell(value: Any, primary_ms: Any = None, candidate_ms: Any = None) -> str:
    if not isinstance(value, int | float):
        return '<td class="zero">-</td>'
    cls = "slower" if value > 1.1 else "faster" if value < 0.9 else ""
    numbers = isinstance(primary_ms, int | float) and isinstance(candidate_ms, int | float)
    if not numbers or abs(candidate_ms - primary_ms) < SIGNIFICANT_MS:
        cls = ""
    return f'<td class="{cls}">{fmt_ratio(value)}</td>'


def _latency_cells(latency: Mapping[str, Any], ratio: Mapping[str, Any]) -> str:
    p, c = latency.get("primary") or {}, latency.get("candidate") or {}
    out = ""
    for key in ("p50", "p99"):
        out += f"<td>{fmt_ms(p.get(key))}</td><td>{fmt_ms(c.get(key))}</td>"
        out += _ratio_cell(ratio.get(key), p.get(key), c.get(key))
    return out


def _endpoint_table(data: Mapping[str, Any]) -> str:
    head = (
        '<tr><th class="name" rowspan="2">endpoint</th><th rowspan="2">requests</th>'
        '<th rowspan="2">matched</th><th rowspan="2">mismatched</th><th rowspan="2">rate</th>'
        '<th rowspan="2">errors</th>'
        '<th rowspan="2">noise</th><th class="group" colspan="3">p50 ms</th>'
        '<th class="group" colspan="3">p99 ms</th></tr>\n<tr>'
        + "<th>primary</th><th>candidate</th><th>ratio</th>" * 2
        + "</tr>"
    )
    rows = []
    for index, (name, ep) in enumerate(data["endpoints"].items()):
        bad = ep["mismatched"] or ep["errors"]
        rows.append(
            f'<tr class="{"bad" if bad else ""}"><td class="name">'
            f'<a href="#{slug(index)}">{escape(name)}</a></td>'
            f"<td>{ep['requests']}</td>{_cell(ep['matched'])}"
            f"{_cell(ep['mismatched'], True)}<td>{fmt_rate(ep['mismatched'], ep['requests'])}</td>"
            f"{_cell(ep['errors'], True)}{_cell(ep['noise'])}"
            f"{_latency_cells(ep['latency_ms'], ep['ratio'])}</tr>"
        )
    t, overall = data["totals"], data["latency_ms"]
    rows.append(
        f'<tr class="total"><td class="name">all</td><td>{t["requests"]}</td>'
        f"{_cell(t['matched'])}{_cell(t['mismatched'], True)}"
        f"<td>{fmt_rate(t['mismatched'], t['requests'])}</td>{_cell(t['errors'], True)}"
        f"{_cell(t['noise'])}{_latency_cells(overall['targets'], overall['ratio'])}</tr>"
    )
    return (
        '<section class="panel" id="endpoints"><h2>Endpoints</h2>\n'
        f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
        '<p class="plot-note">ratio = candidate / primary (below 1: the candidate is faster). '
        "A ratio is coloured only when the two also differ by "
        f"{SIGNIFICANT_MS:g} ms or more. Sorted by mismatch rate, then mismatches and errors."
        "</p></section>"
    )


_SOURCES = {
    "events": "from every exchange's event",
    "summary": "from the runs' summaries (percentiles only)",
    "partial": "from mismatch and error events only: run with --emit all for every exchange",
}


def _latency(report: Report, plotter: Plotter) -> str:
    curves = report.overall_curves
    if not curves:
        return ""
    source = report.data["latency_ms"]["source"]
    svg = plotter.latency(curves, sparse=source == "summary", wide=True)
    note = escape(_SOURCES.get(str(source), ""))
    return (
        '<section class="panel" id="latency"><h2>Latency, all endpoints</h2>\n'
        f'<div class="plot">{svg}</div><p class="plot-note">Percentile curve, {note}.</p>'
        "</section>"
    )


def _over_time(report: Report, plotter: Plotter) -> str:
    if not report.progress:
        return ""
    svg = plotter.progress(report.progress)
    if svg is None:
        return ""
    return (
        '<section class="panel" id="over-time"><h2>Over time</h2>\n'
        f'<div class="plot">{svg}</div><p class="plot-note">From the runs\' progress events; '
        "mismatched % is the share of each interval's finished exchanges.</p></section>"
    )


def _inputs(data: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><td class="name"><code>{escape(s["path"])}</code></td><td>{s["lines"]}</td>'
        f"<td>{s['events']}</td>{_cell(s['malformed'], True)}</tr>"
        for s in data["inputs"]
    )
    table = (
        '<table><thead><tr><th class="name">file</th><th>lines</th><th>events</th>'
        f"<th>malformed</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    notes = [escape(w) for w in data["warnings"]]
    notes += [
        escape(f"input error {e['source']}:{e['line']}: {e['message']}")
        for e in data["input_errors"]
    ]
    listed = "".join(f"<li>{n}</li>" for n in notes)
    warnings = f'<ul class="plain warnings">{listed}</ul>' if notes else ""
    return f'<section class="panel" id="inputs"><h2>Inputs</h2>{table}{warnings}</section>'
