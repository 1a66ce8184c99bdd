"""Per-run entries of the report, its verdict and its warnings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shadow.model import MAX_ENDPOINTS, OTHER
from shadow.report.aggregate import MAX_EXAMPLES, Aggregator, RunState
from shadow.report.read import InputStats
from shadow.report.series import parse_ts

COUNT_KEYS = ("requests", "matched", "mismatched", "errors")
TOTAL_KEYS = (*COUNT_KEYS, "input_errors", "skipped", "noise")


def number(value: Any) -> int:
    """A count from a summary field: an int, or the sum of a (nested) mapping of counts."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, Mapping):
        return sum(number(v) for v in value.values())
    return 0


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def run_entry(run: RunState) -> dict[str, Any]:
    started, finished = run.started or {}, run.finished or {}
    targets = {}
    for name, info in mapping(started.get("targets")).items():
        url = info.get("url") if isinstance(info, Mapping) else None
        targets[str(name)] = run.urls.get(str(name), url)
    for name, url in run.urls.items():
        targets.setdefault(name, url)
    entry: dict[str, Any] = {
        "run_id": run.run_id,
        "inputs": run.inputs,
        "started": started.get("ts", run.first_ts),
        "finished": run.finished is not None,
        "targets": targets,
        "sources": started.get("sources", []),
        "settings": started.get("settings", {}),
        "duration_s": finished.get("duration_s", _elapsed(run)),
    }
    for key in TOTAL_KEYS:
        entry[key] = number(finished[key]) if key in finished else _event_total(run, key)
    entry["exit_code"] = finished.get("exit_code")
    reasons = finished.get("reasons")
    entry["reasons"] = [str(r) for r in reasons] if isinstance(reasons, list) else []
    entry["interrupted"] = finished.get("interrupted")
    entry["server_exits"] = run.server_exits
    entry["duplicates"] = run.duplicates
    return entry


def _event_total(run: RunState, key: str) -> int:
    if key == "input_errors":
        return run.input_errors
    if key == "skipped":
        return 0
    return sum(getattr(c, key) for c in run.counts.values())


def _elapsed(run: RunState) -> float | None:
    first, last = parse_ts(run.first_ts), parse_ts(run.last_ts)
    return round(last - first, 3) if first is not None and last is not None else None


def verdict(runs: list[dict[str, Any]], totals: Mapping[str, int]) -> dict[str, Any]:
    counts = (
        f"{totals['mismatched']} mismatched, {totals['errors']} errors, "
        f"{totals['input_errors']} input errors"
    )
    codes = sorted({r["exit_code"] for r in runs if r["exit_code"] is not None})
    unfinished = [r["run_id"] for r in runs if not r["finished"]]
    if unfinished:
        status, why = "incomplete", f"no run_finished for run {', '.join(unfinished)}"
    elif 3 in codes:
        status, why = "server_failed", "a managed server failed (exit 3)"
    elif any(code != 0 for code in codes):
        status, why = "fail", f"exit {', '.join(map(str, codes))}"
    else:
        status, why = "pass", "exit 0"
    # What each run said it failed (its run_finished.reasons), once each.
    reasons = list(dict.fromkeys(r for run in runs for r in run.get("reasons", ())))
    return {"status": status, "reason": f"{counts}; {why}", "exit_codes": codes, "reasons": reasons}


def warnings(agg: Aggregator, inputs: list[InputStats], finals: Mapping[str, object]) -> list[str]:
    out = []
    for stats in inputs:
        if stats.malformed:
            lines = ", ".join(map(str, stats.malformed_lines))
            more = "" if stats.malformed <= len(stats.malformed_lines) else ", ..."
            out.append(f"{stats.path}: {stats.malformed} malformed line(s) skipped ({lines}{more})")
        if stats.read_error:
            out.append(f"{stats.path}: {stats.read_error}")
    for run in agg.runs.values():
        if run.duplicates:
            out.append(f"run {run.run_id} appears more than once in the input; counted once")
        if run.finished is None:
            out.append(f"run {run.run_id} has no run_finished: counts are from its events")
    if agg.examples_kept >= MAX_EXAMPLES:
        out.append(f"examples capped at {MAX_EXAMPLES}; later differences have none")
    if OTHER in finals or OTHER in agg.endpoints:
        out.append(f"more than {MAX_ENDPOINTS} endpoints: the rest are counted as {OTHER}")
    return out
