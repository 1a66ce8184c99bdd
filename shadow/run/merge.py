"""Merge the summaries of runs that each replayed one shard into the summary of the whole run.

A shard's `run_finished` carries, under `shard`, what merging needs beyond the counts (which
simply add up): its latency HDR histograms, encoded (HdrHistogram's compressed base64 form),
per target and per endpoint, so the merged percentiles are those of one run over all the
records rather than a bound; and its real differences per kind, for `fail_on`. `absorb` adds
one such summary into a Tally, after which the Tally's own summary and thresholds apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

from shadow.config.settings import Shard
from shadow.model import MAX_PATHS_PER_ENDPOINT, OTHER, Sample, Usage
from shadow.run.tally import EndpointTally, Tally, new_histogram

_COUNTS = ("requests", "matched", "mismatched", "errors")


def _encode(histograms: Mapping[str, HdrHistogram]) -> dict[str, str]:
    return {
        name: h.encode().decode("ascii")
        for name, h in histograms.items()
        if h.get_total_count() > 0
    }


def shard_summary(tally: Tally, shard: Shard | None) -> dict[str, Any]:
    """`{"shard": ...}` for a sharded run's `run_finished`; nothing for a whole run."""
    if shard is None:
        return {}
    endpoints = {
        name: _encode(ep.latency)
        for name, ep in sorted(tally.by_endpoint.items())
        if ep.latency is not None and any(h.get_total_count() for h in ep.latency.values())
    }
    return {
        "shard": {
            "index": shard.index,
            "count": shard.count,
            "latency_hdr": _encode(tally.latency),
            "endpoint_latency_hdr": endpoints,
            "diff_kinds": dict(sorted(tally.kinds.items())),
            "both_failed_errors": {
                name: ep.both_failed_errors
                for name, ep in sorted(tally.by_endpoint.items())
                if ep.both_failed_errors
            },
        }
    }


def _add_paths(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for path, count in counts.items():
        if path not in into and len(into) >= MAX_PATHS_PER_ENDPOINT:
            path = OTHER
        into[path] = into.get(path, 0) + int(count)


def _add_histogram(into: dict[str, HdrHistogram], target: str, encoded: str, digits: int) -> None:
    histogram = into.get(target)
    if histogram is None:
        histogram = into[target] = new_histogram(digits)
    histogram.decode_and_add(encoded.encode("ascii"))


def absorb(tally: Tally, finished: Mapping[str, Any]) -> None:
    """Add one shard's `run_finished` into `tally` (counts, paths, histograms, kinds)."""
    for key in (*_COUNTS, "input_errors", "skipped", "noise"):
        setattr(tally, key, getattr(tally, key) + int(finished.get(key, 0)))
    for key, value in (finished.get("warmup") or {}).items():
        tally.warmup[key] = tally.warmup.get(key, 0) + int(value)
    extra = finished.get("shard") or {}
    for kind, count in (extra.get("diff_kinds") or {}).items():
        tally.kinds[kind] = tally.kinds.get(kind, 0) + int(count)
    for target, encoded in (extra.get("latency_hdr") or {}).items():
        total: dict[str, HdrHistogram] = {}
        _add_histogram(total, target, encoded, 3)
        tally.add_latency(target, total[target])
    for target, counts in (finished.get("statuses") or {}).items():
        _add_paths(tally.statuses.setdefault(target, {}), counts)
    _add_paths(tally.both_failed, finished.get("both_failed") or {})
    errors_alike = extra.get("both_failed_errors") or {}
    tally.both_failed_errors += sum(int(n) for n in errors_alike.values())
    latency = extra.get("endpoint_latency_hdr") or {}
    for name, counts in (finished.get("by_endpoint") or {}).items():
        ep = tally.endpoint(name)
        _add_endpoint(ep, counts, latency.get(name) or {})
        ep.both_failed_errors += int(errors_alike.get(name, 0))


def _add_endpoint(ep: EndpointTally, counts: Mapping[str, Any], latency: Mapping[str, str]) -> None:
    ep.requests += int(counts.get("requests", 0))
    ep.matched += int(counts.get("matched", 0))
    ep.mismatched += int(counts.get("mismatched", 0))
    ep.errors += int(counts.get("errors", 0))
    _add_paths(ep.diffs, counts.get("diffs") or {})
    _add_paths(ep.noise, counts.get("noise") or {})
    for target, statuses in (counts.get("statuses") or {}).items():
        _add_paths(ep.statuses.setdefault(target, {}), statuses)
    _add_paths(ep.both_failed, counts.get("both_failed") or {})
    if latency:
        if ep.latency is None:
            ep.latency = {}
        for target, encoded in latency.items():
            _add_histogram(ep.latency, target, encoded, 2)


def merge_pacing(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The pace of the whole run: records and rates add up, lags and passes take the worst."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    targets = [p.get("target_rate") for p in parts]
    return {
        "mode": parts[0].get("mode"),
        "sent": sum(int(p.get("sent", 0)) for p in parts),
        "passes": max(int(p.get("passes", 0)) for p in parts),
        "elapsed_s": max(float(p.get("elapsed_s", 0.0)) for p in parts),
        "achieved_rate": round(sum(float(p.get("achieved_rate", 0.0)) for p in parts), 2),
        "target_rate": None if None in targets else round(sum(targets), 2),  # type: ignore[arg-type]
        "max_lag_s": max(float(p.get("max_lag_s", 0.0)) for p in parts),
    }


def merge_calibration(parts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Calibration pairs add up, endpoints whose body is not comparable are put together;
    None when no shard calibrated."""
    given = [p for p in parts if p]
    if not given:
        return None
    return {
        "mode": given[0].get("mode"),
        "pairs": sum(int(p.get("pairs", 0)) for p in given),
        "discarded": sum(int(p.get("discarded", 0)) for p in given),
        "body_not_comparable": sorted(
            {str(name) for p in given for name in p.get("body_not_comparable") or ()}
        ),
    }


def merge_progress(
    latest: Sequence[Mapping[str, Any]],
    fresh: Sequence[Mapping[str, Any]],
    elapsed_s: float,
    servers: Mapping[str, Usage],
    shadow: Usage,
) -> Sample:
    """One `progress` sample from the workers' latest ones: counts add up; interval figures
    (rate, in flight, latency) come from the reports made since the last sample, latency
    percentiles as the highest of the workers' (an upper bound)."""

    def total(key: str, reports: Sequence[Mapping[str, Any]]) -> int:
        return sum(int(p.get(key) or 0) for p in reports)

    def total_or_none(key: str) -> float | None:
        values: list[Any] = [p.get(key) for p in latest]
        if any(v is None for v in values):
            return None
        return sum(float(v) for v in values)

    latency: dict[str, dict[str, float]] = {}
    for report in fresh:
        for target, values in (report.get("latency_ms") or {}).items():
            merged = latency.setdefault(target, {})
            for name, value in values.items():
                merged[name] = max(merged.get(name, 0.0), float(value))
    statuses: dict[str, dict[str, int]] = {}
    for report in latest:
        for target, counts in (report.get("statuses") or {}).items():
            _add_paths(statuses.setdefault(target, {}), counts)
    backlog = total_or_none("backlog")
    return Sample(
        elapsed_s=elapsed_s,
        sent=total("sent", latest),
        counts={key: total(key, latest) for key in ("requests", "matched", "mismatched", "errors")}
        | {"warmup": total("warmup", latest)},
        rate=sum(float(p.get("rate") or 0.0) for p in fresh),
        target_rate=total_or_none("target_rate"),
        backlog=None if backlog is None else int(backlog),
        lag_s=max((float(p.get("lag_s") or 0.0) for p in fresh), default=0.0),
        in_flight=total("in_flight", fresh),
        latency_ms=latency,
        servers=servers,
        shadow=shadow,
        statuses=statuses,
    )
