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
    exact_ms,
    merge_encoded,
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
    hdr: dict[str, list[str]] = field(default_factory=dict)  # target -> the runs' histograms
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # per target
    both_failed: dict[str, int] = field(default_factory=dict)


def _add_statuses(into: dict[str, dict[str, int]], statuses: Any) -> None:
    """Add a summary's `statuses` (per target: class or code -> answers) into `into`."""
    for target, counts in mapping(statuses).items():
        _add_paths(into.setdefault(str(target), {}), _counts(counts))


def _counts(value: Any) -> dict[str, int]:
    return {str(k): number(v) for k, v in mapping(value).items()}


def _ordered_statuses(statuses: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Per target, classes (`2xx`, `failed`) before codes, each in order."""
    return {
        target: dict(sorted(counts.items(), key=lambda kv: (kv[0].isdigit(), kv[0])))
        for target, counts in sorted(statuses.items(), key=lambda kv: _TARGET_ORDER.get(kv[0], 9))
    }


def _by_count(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _calibration_lists(agg: Aggregator) -> list[str]:
    """Endpoints whose body was not comparable in any run (its calibration says so)."""
    names: set[str] = set()
    for run in agg.runs.values():
        calibration = mapping(run.finished.get("calibration") if run.finished else None)
        listed = calibration.get("body_not_comparable")
        if isinstance(listed, list):
            names.update(str(name) for name in listed)
    return sorted(names)


def build_report(agg: Aggregator, inputs: list[InputStats]) -> Report:
    totals = dict.fromkeys(TOTAL_KEYS, 0)
    finals: dict[str, _Endpoint] = {}
    overall_summaries: dict[str, list[dict[str, float]]] = {}
    overall_hdr: dict[str, list[str]] = {}
    statuses: dict[str, dict[str, int]] = {}
    both_failed: dict[str, int] = {}
    for run in agg.runs.values():
        _fold_run(run, agg, finals, totals, (overall_summaries, overall_hdr))
        if run.finished is not None:
            _add_statuses(statuses, run.finished.get("statuses"))
            _add_paths(both_failed, _counts(run.finished.get("both_failed")))
    not_comparable = _calibration_lists(agg)
    targets = _targets(agg)
    report = Report(data={})
    endpoints = {
        name: _endpoint_entry(name, finals.get(name, _Endpoint()), agg.endpoints.get(name), report)
        | {"body_not_comparable": name in not_comparable}
        for name in [*finals, *(n for n in agg.endpoints if n not in finals)]
    }
    ranked = dict(sorted(endpoints.items(), key=lambda kv: _impact(kv[0], kv[1])))
    runs = [run_entry(run) for run in agg.runs.values()]
    report.data = {
        "schema": REPORT_SCHEMA,
        "verdict": verdict(runs, totals),
        "totals": totals,
        "statuses": _ordered_statuses(statuses),
        "both_failed": _by_count(both_failed),
        "body_not_comparable": not_comparable,
        "targets": targets,
        "runs": runs,
        "inputs": [stats.to_dict() for stats in inputs],
        "malformed_lines": sum(stats.malformed for stats in inputs),
        "latency_ms": _overall_latency(agg, totals, (overall_summaries, overall_hdr), runs, report),
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
    overall: tuple[dict[str, list[dict[str, float]]], dict[str, list[str]]],
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
    shard = mapping(finished.get("shard"))
    _add_latency(overall, finished.get("latency_ms"), shard.get("latency_hdr"))
    endpoint_hdr = mapping(shard.get("endpoint_latency_hdr"))
    for name, info in mapping(finished.get("by_endpoint")).items():
        if isinstance(info, Mapping):
            ep = _final(finals, str(name))
            _fold_endpoint_summary(run, agg, ep, str(name), info)
            _add_latency((ep.latency, ep.hdr), info.get("latency_ms"), endpoint_hdr.get(name))


def _add_latency(
    into: tuple[dict[str, list[dict[str, float]]], dict[str, list[str]]],
    percentiles: Any,
    histograms: Any,
) -> None:
    """One run's percentiles per target, and its encoded histogram of each where it has one
    (a sharded run's), kept side by side: the merge is exact only if every run has one."""
    summaries, hdr = into
    encoded = mapping(histograms)
    for target, value in mapping(percentiles).items():
        summary = read_summary(value)
        if summary:
            summaries.setdefault(str(target), []).append(summary)
            if isinstance(encoded.get(target), str):
                hdr.setdefault(str(target), []).append(encoded[target])


def _fold_endpoint_summary(
    run: RunState, agg: Aggregator, ep: _Endpoint, name: str, info: Mapping[str, Any]
) -> None:
    for key in COUNT_KEYS:
        setattr(ep, key, getattr(ep, key) + number(info.get(key)))
    _add_statuses(ep.statuses, info.get("statuses"))
    _add_paths(ep.both_failed, _counts(info.get("both_failed")))
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
        "statuses": _ordered_statuses(final.statuses),
        "both_failed": _by_count(final.both_failed),
    }


def _endpoint_latency(
    final: _Endpoint, events: EndpointEvents | None
) -> tuple[dict[str, Any], str | None, dict[str, Curve]]:
    """Percentiles per target and where they come from: every exchange's event (`events`),
    the runs' summaries (`summary`), or only the exchanges that had events (`partial`)."""
    if events is not None and events.latency and events.exchanges == final.requests:
        return _from_buckets(events, "events")
    if final.latency:
        merged, curves = _merged_summaries(final.latency, final.hdr)
        return merged, "summary", curves
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
    summaries: tuple[dict[str, list[dict[str, float]]], dict[str, list[str]]],
    runs: list[dict[str, Any]],
    report: Report,
) -> dict[str, Any]:
    exchanges = sum(ep.exchanges for ep in agg.endpoints.values())
    every_run_summarised = all(r["finished"] for r in runs) and summaries[0]
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
    merged, report.overall_curves = _merged_summaries(*summaries)
    return {"source": "summary", "targets": merged}


def _merged_summaries(
    summaries: Mapping[str, list[dict[str, float]]], hdr: Mapping[str, list[str]]
) -> tuple[dict[str, Any], dict[str, Curve]]:
    """The runs' latency per target: exact, from their histograms merged, when every run
    has one (shards do); else each percentile the highest of the runs', which errs slow."""
    merged: dict[str, Any] = {}
    curves: dict[str, Curve] = {}
    for target, parts in summaries.items():
        encoded = hdr.get(target, [])
        histogram = merge_encoded(encoded) if len(encoded) == len(parts) else None
        if histogram is not None and histogram.get_total_count():
            merged[target], curves[target] = exact_ms(histogram), curve_ms(histogram)
        else:
            merged[target] = merge_summaries(parts)
            curves[target] = summary_curve(merged[target])
    return merged, curves


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
