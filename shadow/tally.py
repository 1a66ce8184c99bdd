"""Running totals of a replay, in memory that does not grow with the number of records.

Counts are per endpoint and per diff path, each table capped (a path or endpoint beyond the
cap is counted under "(other)"), and latencies go into HDR histograms, so an hours-long soak
keeps the same footprint as a thirteen-request scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from shadow.config import Thresholds
from shadow.model import Exchange, Response

MAX_ENDPOINTS = 500
MAX_PATHS_PER_ENDPOINT = 200
OTHER = "(other)"
_LATENCY_MAX_US = 3_600_000_000  # one hour, in microseconds
_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, _LATENCY_MAX_US, 3)


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    if histogram.get_total_count() == 0:
        return {}
    out = {name: histogram.get_value_at_percentile(p) / 1000 for name, p in _PERCENTILES}
    out["max"] = histogram.get_max_value() / 1000
    return {k: round(v, 3) for k, v in out.items()}


@dataclass(slots=True)
class EndpointTally:
    requests: int = 0
    matched: int = 0
    mismatched: int = 0
    errors: int = 0
    diffs: dict[str, int] = field(default_factory=dict)

    def count_diff(self, path: str) -> None:
        if path not in self.diffs and len(self.diffs) >= MAX_PATHS_PER_ENDPOINT:
            path = OTHER
        self.diffs[path] = self.diffs.get(path, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "errors": self.errors,
            "diffs": dict(sorted(self.diffs.items(), key=lambda kv: (-kv[1], kv[0]))),
        }


class Tally:
    def __init__(self, targets: list[str]) -> None:
        self.requests = self.matched = self.mismatched = self.errors = 0
        self.input_errors = self.skipped = self.noise = 0
        self.by_endpoint: dict[str, EndpointTally] = {}
        self.latency = {name: new_histogram() for name in targets}

    def endpoint(self, name: str) -> EndpointTally:
        tally = self.by_endpoint.get(name)
        if tally is None:
            if len(self.by_endpoint) >= MAX_ENDPOINTS:
                name = OTHER
            tally = self.by_endpoint.setdefault(name, EndpointTally())
        return tally

    def add(self, exchange: Exchange) -> str:
        """Count one finished exchange; return its outcome: match, mismatch or error."""
        self.requests += 1
        ep = self.endpoint(exchange.endpoint or OTHER)
        ep.requests += 1
        for side, outcome in exchange.outcomes.items():
            if isinstance(outcome, Response) and side in self.latency:
                self.latency[side].record_value(max(1, int(outcome.latency_ms * 1000)))
        if exchange.failed_sides():
            self.errors += 1
            ep.errors += 1
            return "error"
        if exchange.diffs:
            self.mismatched += 1
            ep.mismatched += 1
            for diff in exchange.diffs:
                ep.count_diff(diff.path)
            return "mismatch"
        self.matched += 1
        ep.matched += 1
        return "match"

    def add_unfinished(self, endpoint: str) -> None:
        """A record admitted but never finished (the run was cut short): an error."""
        self.requests += 1
        self.errors += 1
        ep = self.endpoint(endpoint)
        ep.requests += 1
        ep.errors += 1

    def exit_code(self, thresholds: Thresholds) -> int:
        if self.input_errors > thresholds.input_errors:
            return 1
        if self.requests == 0:
            return 0
        if self.mismatched / self.requests > thresholds.mismatch_rate:
            return 1
        if self.errors / self.requests > thresholds.error_rate:
            return 1
        return 0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "errors": self.errors,
            "input_errors": self.input_errors,
            "skipped": self.skipped,
            "noise": self.noise,
            "by_endpoint": {name: ep.to_dict() for name, ep in sorted(self.by_endpoint.items())},
            "latency_ms": {name: percentiles_ms(h) for name, h in self.latency.items()},
        }
