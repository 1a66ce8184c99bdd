"""The aggregation as one JSON-able object with stable keys, plus what the plots need.

This object is the report: `--json` prints it, and the text and HTML views render it (the
HTML also draws the latency curves and progress series kept beside it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadow.model import MAX_ENDPOINTS, OTHER, fold_indices
from shadow.report.aggregate import Aggregator, DiffTally, EndpointEvents, RunState
from shadow.report.latency import (
    curve_ms,
    merge_summaries,
    percentiles_ms,
    read_summary,
    summary_curve,
    to_histogram,
)
from shadow.report.read import InputStats
from shadow.report.runs import COUNT_KEYS, TOTAL_KEYS, mapping, number, run_entry, verdict, warnings
from shadow.report.series import Point

REPORT_SCHEMA = 1
TOP_DIFFS = 50
_TARGET_ORDER = {"primary": 0, "candidate": 1, "secondary": 2}

Curve = list[tuple[float, float]]


@dataclass
class Report:
    """`data` is the JSON form; the rest is what only the HTML plots need."""

    data: dict[str, Any]
    curves: dict[str, dict[str, Curve]] = field(default_factory=dict)  # endpoint -> target
    overall_curves: dict[str, Curve] = field(default_factory=dict)
    progress: dict[str, list[Point]] = field(default_factory=dict)  # run id -> points


@dataclass
class _Endpoint:
    """An endpoint's outcomes over all runs, and the latency summaries of finished runs."""

    requests: int = 0
    matched: int = 0
    mismatched: int = 0
    errors: int = 0
    noise: int = 0
    noise_paths: dict[str, int] = field(default_factory=dict)
    latency: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def build_report(agg: Aggregator, inputs: list[InputStats]) -> Report:
    totals = dict.fromkeys(TOTAL_KEYS, 0)
    finals: dict[str, _Endpoint] = {}
    overall_summaries: dict[str, list[dict[str, float]]] = {}
    for run in agg.runs.values():
        _fold_run(run, agg, finals, totals, overall_summaries)
    targets = _targets(agg)
    report = Report(data={})
    endpoints = {
        name: _endpoint_entry(name, finals.get(name, _Endpoint()), agg.endpoints.get(name), report)
        for name in [*finals, *(n for n in agg.endpoints if n not in finals)]
    }
    ranked = dict(sorted(endpoints.items(), key=lambda kv: _impact(kv[0], kv[1])))
    runs = [run_entry(run) for run in agg.runs.values()]
    report.data = {
        "schema": REPORT_SCHEMA,
        "verdict": verdict(runs, totals),
        "totals": totals,
        "targets": targets,
        "runs": runs,
        "inputs": [stats.to_dict() for stats in inputs],
        "malformed_lines": sum(stats.malformed for stats in inputs),
        "latency_ms": _overall_latency(agg, totals, overall_summaries, runs, report),
        "endpoints": ranked,
        "top_diffs": _top_diffs(ranked),
        "input_errors": agg.input_errors,
        "other_events": dict(sorted(agg.other_events.items())),
        "warnings": warnings(agg, inputs, finals),
    }
    report.data["latency_ms"]["ratio"] = _ratios(report.data["latency_ms"]["targets"])
    report.progress = {
        run.run_id: run.progress.points for run in agg.runs.values() if run.progress.points
    }
    report.data["progress"] = {
        run_id: [p.to_dict() for p in points] for run_id, points in report.progress.items()
    }
    return report


def _final(finals: dict[str, _Endpoint], name: str) -> _Endpoint:
    if name not in finals and len(finals) >= MAX_ENDPOINTS:
        name = OTHER
    return finals.setdefault(name, _Endpoint())


def _fold_run(
    run: RunState,
    agg: Aggregator,
    finals: dict[str, _Endpoint],
    totals: dict[str, int],
    overall: dict[str, list[dict[str, float]]],
) -> None:
    finished = run.finished
    if finished is None:
        for name, counts in run.counts.items():
            ep = _final(finals, name)
            for key in (*COUNT_KEYS, "noise"):
                setattr(ep, key, getattr(ep, key) + getattr(counts, key))
                totals[key] += getattr(counts, key)
            _add_paths(ep.noise_paths, counts.noise_paths)
        totals["input_errors"] += run.input_errors
        return
    for key in TOTAL_KEYS:
        totals[key] += number(finished.get(key))
    for target, value in mapping(finished.get("latency_ms")).items():
        summary = read_summary(value)
        if summary:
            overall.setdefault(str(target), []).append(summary)
    for name, info in mapping(finished.get("by_endpoint")).items():
        if isinstance(info, Mapping):
            _fold_endpoint_summary(run, agg, _final(finals, str(name)), str(name), info)


def _fold_endpoint_summary(
    run: RunState, agg: Aggregator, ep: _Endpoint, name: str, info: Mapping[str, Any]
) -> None:
    for key in COUNT_KEYS:
        setattr(ep, key, getattr(ep, key) + number(info.get(key)))
    from_events = run.counts.get(name)
    noise = info.get("noise")
    if noise is not None:
        ep.noise += number(noise)
        if isinstance(noise, Mapping):
            _add_paths(ep.noise_paths, {fold_indices(str(k)): number(v) for k, v in noise.items()})
    elif from_events is not None:
        ep.noise += from_events.noise
        _add_paths(ep.noise_paths, from_events.noise_paths)
    diffs = mapping(info.get("diffs"))
    if diffs and (from_events is None or from_events.mismatched == 0):
        # The summary knows of differences whose mismatch events are not in the input.
        events = agg.endpoints.setdefault(name, EndpointEvents())
        for path, count in diffs.items():
            tally = events.diff(fold_indices(str(path)))
            tally.count += number(count)
            tally.from_summary += number(count)
    for target, value in mapping(info.get("latency_ms")).items():
        summary = read_summary(value)
        if summary:
            ep.latency.setdefault(str(target), []).append(summary)


def _add_paths(into: dict[str, int], paths: Mapping[str, int]) -> None:
    for path, count in paths.items():
        into[path] = into.get(path, 0) + count


def _targets(agg: Aggregator) -> list[str]:
    names: set[str] = set()
    for run in agg.runs.values():
        names.update(str(k) for k in mapping(run.started and run.started.get("targets")))
    for ep in agg.endpoints.values():
        names.update(ep.latency)
    return sorted(names, key=lambda n: (_TARGET_ORDER.get(n, 9), n))


def _endpoint_entry(
    name: str, final: _Endpoint, events: EndpointEvents | None, report: Report
) -> dict[str, Any]:
    latency, source, curves = _endpoint_latency(final, events)
    if curves:
        report.curves[name] = curves
    return {
        "requests": final.requests,
        "matched": final.matched,
        "mismatched": final.mismatched,
        "errors": final.errors,
        "noise": final.noise,
        "mismatch_rate": mismatch_rate(final.mismatched, final.requests),
        "latency_source": source,
        "latency_ms": latency,
        "ratio": _ratios(latency),
        "diffs": _diff_entries(events),
        "errors_by_kind": _error_entries(events),
        "noise_paths": dict(sorted(final.noise_paths.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _endpoint_latency(
    final: _Endpoint, events: EndpointEvents | None
) -> tuple[dict[str, Any], str | None, dict[str, Curve]]:
    """Percentiles per target and where they come from: every exchange's event (`events`),
    the runs' summaries (`summary`), or only the exchanges that had events (`partial`)."""
    if events is not None and events.latency and events.exchanges == final.requests:
        return _from_buckets(events, "events")
    if final.latency:
        merged = {t: merge_summaries(s) for t, s in final.latency.items()}
        return merged, "summary", {t: summary_curve(s) for t, s in merged.items()}
    if events is not None and events.latency:
        return _from_buckets(events, "partial")
    return {}, None, {}


def _from_buckets(
    events: EndpointEvents, source: str
) -> tuple[dict[str, Any], str, dict[str, Curve]]:
    latency, curves = {}, {}
    for target, buckets in events.latency.items():
        histogram = to_histogram([buckets])
        latency[target] = percentiles_ms(histogram)
        curves[target] = curve_ms(histogram)
    return latency, source, curves


def _overall_latency(
    agg: Aggregator,
    totals: dict[str, int],
    summaries: dict[str, list[dict[str, float]]],
    runs: list[dict[str, Any]],
    report: Report,
) -> dict[str, Any]:
    exchanges = sum(ep.exchanges for ep in agg.endpoints.values())
    every_run_summarised = all(r["finished"] for r in runs) and summaries
    if exchanges == totals["requests"] or not every_run_summarised:
        by_target: dict[str, list[Any]] = {}
        for ep in agg.endpoints.values():
            for target, buckets in ep.latency.items():
                by_target.setdefault(target, []).append(buckets)
        source = "events" if exchanges == totals["requests"] else "partial"
        out: dict[str, Any] = {}
        for target, buckets_list in by_target.items():
            histogram = to_histogram(buckets_list)
            out[target] = percentiles_ms(histogram)
            report.overall_curves[target] = curve_ms(histogram)
        return {"source": source if out else None, "targets": out}
    merged = {t: merge_summaries(s) for t, s in summaries.items()}
    report.overall_curves = {t: summary_curve(s) for t, s in merged.items()}
    return {"source": "summary", "targets": merged}


def _ratios(latency: Mapping[str, Any]) -> dict[str, float | None]:
    primary, candidate = latency.get("primary") or {}, latency.get("candidate") or {}
    out: dict[str, float | None] = {}
    for key in ("p50", "p99"):
        p, c = primary.get(key), candidate.get(key)
        out[key] = round(c / p, 2) if p and c is not None else None
    return out


def _diff_entries(events: EndpointEvents | None) -> dict[str, Any]:
    if events is None:
        return {}
    ranked = sorted(events.diffs.items(), key=lambda kv: (-kv[1].exchanges, -kv[1].count, kv[0]))
    return {path: _diff_entry(tally) for path, tally in ranked}


def _diff_entry(tally: DiffTally) -> dict[str, Any]:
    return {
        "count": tally.count,
        "exchanges": tally.exchanges,
        "kinds": dict(sorted(tally.kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "from_summary": tally.from_summary,
        "examples": tally.examples,
    }


def _error_entries(events: EndpointEvents | None) -> dict[str, Any]:
    if events is None:
        return {}
    ranked = sorted(events.errors.items(), key=lambda kv: (-kv[1].count, kv[0]))
    return {
        kind: {"count": t.count, "sides": dict(sorted(t.sides.items())), "example": t.example}
        for kind, t in ranked
    }


def mismatch_rate(mismatched: int, requests: int) -> float | None:
    """The share of an endpoint's requests that mismatched (None without requests)."""
    return round(mismatched / requests, 4) if requests else None


def _impact(name: str, entry: Mapping[str, Any]) -> tuple[float, int, int, int, str]:
    """Worst first: the highest mismatch rate, then the most mismatches and errors (an
    endpoint that always differs ranks above a busy one that sometimes does)."""
    return (
        -(entry["mismatch_rate"] or 0.0),
        -(entry["mismatched"] + entry["errors"]),
        -entry["mismatched"],
        -entry["requests"],
        name,
    )


def _top_diffs(endpoints: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        {
            "endpoint": name,
            "path": path,
            "count": diff["count"],
            "exchanges": diff["exchanges"],
            "kinds": diff["kinds"],
        }
        for name, entry in endpoints.items()
        for path, diff in entry["diffs"].items()
    ]
    rows.sort(key=lambda r: (-r["exchanges"], -r["count"], r["endpoint"], r["path"]))
    return rows[:TOP_DIFFS]
