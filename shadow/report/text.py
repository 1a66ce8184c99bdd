"""The report as plain text for a terminal of 100 columns: header, endpoint table, top diffs."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from shadow.model import statuses_text
from shadow.report.examples import dumps

WIDTH = 100
NAME_WIDTH = 20
TOP_DIFFS = 20
TOP_ERRORS = 10
VALUE_WIDTH = 32


# Event values come from servers: a control character (an escape sequence) must not reach the
# terminal, so each one prints as U+FFFD; newlines in values are folded into spaces by `clip`.
_CONTROLS = {c: "\ufffd" for c in (*range(32), *range(127, 160)) if c != ord("\n")}


def clip(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split()) if ("\n" in text or "\t" in text or "\r" in text) else text
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:.0f}"


def fmt_ratio(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def render_text(data: Mapping[str, Any]) -> str:
    lines = _header(data)
    lines += ["", *_endpoint_table(data)]
    lines += _trust(data)
    lines += _top_diffs(data)
    lines += _errors(data)
    lines += _notes(data)
    return "\n".join(lines).translate(_CONTROLS) + "\n"


HEADLINE_DIFFS = 5


def render_headline(data: Mapping[str, Any]) -> str:
    """The top of the text report, what closes a run on a terminal: verdict, counts, the top
    differing paths (with one example each) and the error kinds; no endpoint table."""
    lines = _header(data)
    lines += _top_diffs(data, HEADLINE_DIFFS)
    lines += _errors(data)
    return "\n".join(lines).translate(_CONTROLS) + "\n"


def _header(data: Mapping[str, Any]) -> list[str]:
    totals, verdict, runs = data["totals"], data["verdict"], data["runs"]
    lines = [
        clip(f"shadow report: {verdict['status'].upper()} ({verdict['reason']})", WIDTH),
        *(
            line
            for reason in verdict.get("reasons", ())
            for line in textwrap.wrap(f"because {reason}", WIDTH, subsequent_indent="  ")
        ),
        clip(
            f"{totals['requests']} requests: {totals['matched']} matched, "
            f"{totals['mismatched']} mismatched, {totals['errors']} errors, "
            f"{totals['input_errors']} input errors, {totals['skipped']} skipped, "
            f"{totals['noise']} noise",
            WIDTH,
        ),
    ]
    if data["statuses"]:
        lines.append(clip(f"statuses: {statuses_text(data['statuses'])}", WIDTH))
    for run in runs:
        duration = run["duration_s"]
        took = f"{duration:.1f} s" if isinstance(duration, int | float) else "? s"
        state = "" if run["finished"] else " (no run_finished)"
        targets = "  ".join(f"{k} {v}" for k, v in run["targets"].items())
        lines.append(clip(f"run {run['run_id']}{state}: {took}, exit {run['exit_code']}", WIDTH))
        if targets:
            lines.append(clip(f"  targets: {targets}", WIDTH))
        if run["sources"]:
            lines.append(clip("  replayed: " + ", ".join(map(str, run["sources"])), WIDTH))
        lines += [
            clip(f"  ! {gone['target']} exited unexpectedly ({gone['returncode']})", WIDTH)
            for gone in run["server_exits"]
        ]
    lines += [
        clip(f"events: {s['path']} ({s['events']} events, {s['malformed']} malformed lines)", WIDTH)
        for s in data["inputs"]
    ]
    return lines


def _trust(data: Mapping[str, Any]) -> list[str]:
    """Endpoints whose matches prove little (the same error on both sides), their answers
    when not all were 2xx, and those whose body could not be compared."""
    lines = []
    for name, ep in data["endpoints"].items():
        if ep["both_failed"]:
            causes = ", ".join(f"{cause} {n}" for cause, n in ep["both_failed"].items())
            lines.append(clip(f"  {name}: failed alike on both sides: {causes}", WIDTH))
        if any(
            k not in ("2xx", "failed") and not k.isdigit()
            for c in ep["statuses"].values()
            for k in c
        ):
            lines.append(clip(f"  {name}: {statuses_text(ep['statuses'])}", WIDTH))
    if data["body_not_comparable"]:
        names = ", ".join(data["body_not_comparable"])
        lines += textwrap.wrap(
            f"body not comparable (the primary's own answers differ, not JSON; status and "
            f"headers compared): {names}",
            WIDTH,
            subsequent_indent="  ",
        )
    return ["", "answers", *lines] if lines else []


def fmt_rate(mismatched: int, requests: int) -> str:
    """A mismatch rate as a percentage ("-" without requests)."""
    if not requests:
        return "-"
    rate = 100 * mismatched / requests
    return f"{rate:.0f}%" if rate >= 10 or rate == 0 else f"{rate:.1f}%"


def _row(name: str, counts: tuple[int, int, int, int], latency: Mapping[str, Any]) -> list[str]:
    p, c = latency["targets"].get("primary", {}), latency["targets"].get("candidate", {})
    ratio = latency["ratio"]
    requests, mismatched, errors, noise = counts
    numbers = f"{requests:>9}{mismatched:>11}{fmt_rate(mismatched, requests):>5}"
    numbers += f"{errors:>7}{noise:>6}"
    cells = ""
    for key in ("p50", "p99"):
        cells += f" {fmt_ms(p.get(key)):>7}{fmt_ms(c.get(key)):>7}{fmt_ratio(ratio[key]):>6}"
    name = clip(name, WIDTH)
    if len(name) < NAME_WIDTH:
        return [f"{name:{NAME_WIDTH}}{numbers}{cells}"]
    # A long name gets a line of its own rather than being cut.
    return [name, f"{'':{NAME_WIDTH}}{numbers}{cells}"]


def _endpoint_table(data: Mapping[str, Any]) -> list[str]:
    group = f" {'primary':>7}{'cand.':>7}{'ratio':>6}"
    lines = [
        f"{'':{NAME_WIDTH + 38}} p50 ms {'─' * 13} p99 ms {'─' * 13}",
        f"{'endpoint':{NAME_WIDTH}}{'requests':>9}{'mismatched':>11}{'rate':>5}{'errors':>7}"
        f"{'noise':>6}" + group * 2,
    ]
    for name, ep in data["endpoints"].items():
        counts = (ep["requests"], ep["mismatched"], ep["errors"], ep["noise"])
        lines += _row(name, counts, {"targets": ep["latency_ms"], "ratio": ep["ratio"]})
    t = data["totals"]
    lines += _row(
        "all", (t["requests"], t["mismatched"], t["errors"], t["noise"]), data["latency_ms"]
    )
    lines.append(_latency_note(data))
    return lines


def _latency_note(data: Mapping[str, Any]) -> str:
    sources = {ep["latency_source"] for ep in data["endpoints"].values()}
    sources.add(data["latency_ms"]["source"])
    said = {
        "events": "every exchange",
        "summary": "the runs' summaries",
        "partial": "mismatch and error events only (run with --emit all for all)",
    }
    parts = [said[s] for s in ("events", "summary", "partial") if s in sources]
    note = "ratio = candidate / primary; latencies from " + (" / ".join(parts) or "no events")
    return clip(note, WIDTH)


def _top_diffs(data: Mapping[str, Any], top: int = TOP_DIFFS) -> list[str]:
    rows = data["top_diffs"]
    if not rows:
        return ["", "no differences"]
    lines = ["", "top differences (by exchanges affected)", f"{'exch.':>7}{'diffs':>7}  where"]
    for row in rows[:top]:
        kinds = clip(",".join(row["kinds"]), 30)
        where = f"{row['endpoint']} {row['path']}"
        lines.append(
            f"{row['exchanges']:>7}{row['count']:>7}  {clip(where, WIDTH - 18 - len(kinds))}"
            f"  {kinds}"
        )
        diff = data["endpoints"][row["endpoint"]]["diffs"][row["path"]]
        if diff["examples"]:
            lines += _example_lines(diff["examples"][0], row["path"])
    if len(rows) > top:
        lines.append(f"  ... {len(rows) - top} more paths in --json and --html")
    return lines


def _example_lines(example: Mapping[str, Any], path: str) -> list[str]:
    from shadow.model import fold_indices

    diff = next(
        (d for d in example.get("diffs", []) if fold_indices(str(d.get("path"))) == path), None
    )
    lines = []
    if diff is not None:
        primary = "(absent)" if diff.get("kind") == "extra" else _json(diff.get("primary"))
        candidate = "(absent)" if diff.get("kind") == "missing" else _json(diff.get("candidate"))
        lines.append(
            f"{'':16}primary {clip(primary, VALUE_WIDTH):<{VALUE_WIDTH}}"
            f" candidate {clip(candidate, VALUE_WIDTH)}"
        )
    request = example.get("request") or {}
    where = f"{request.get('method', '?')} {request.get('path', '?')}"
    lines.append(
        clip(f"{'':16}e.g. seq {example.get('seq')} id {example.get('id')}: {where}", WIDTH)
    )
    return lines


def _json(value: Any) -> str:
    return dumps(value).decode("utf-8", "replace")


def _errors(data: Mapping[str, Any]) -> list[str]:
    rows = [
        (info["count"], name, kind, info)
        for name, ep in data["endpoints"].items()
        for kind, info in ep["errors_by_kind"].items()
    ]
    if not rows:
        return []
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    lines = ["", "errors by kind", f"{'count':>7}  where"]
    for count, name, kind, info in rows[:TOP_ERRORS]:
        lines.append(clip(f"{count:>7}  {name} {kind} (" + _sides(info["sides"]) + ")", WIDTH))
        example = info["example"] or {}
        if example.get("message"):
            lines.append(clip(f"{'':9}e.g. seq {example.get('seq')}: {example['message']}", WIDTH))
    return lines


def _sides(sides: Mapping[str, int]) -> str:
    return ", ".join(f"{side} {n}" for side, n in sides.items())


def _notes(data: Mapping[str, Any]) -> list[str]:
    lines = []
    for item in data["input_errors"]:
        where = f"{item['source']}:{item['line']}"
        lines.append(clip(f"input error {where}: {item['message']}", WIDTH))
    if data["other_events"]:
        counted = ", ".join(f"{kind} {n}" for kind, n in data["other_events"].items())
        lines.append(clip(f"other events: {counted}", WIDTH))
    for warning in data["warnings"]:  # wrapped, not cut: every word of a warning matters
        lines += textwrap.wrap(f"warning: {warning}", WIDTH, subsequent_indent="  ")
    return ["", *lines] if lines else []
