"""Running totals of a replay, in memory that does not grow with the number of records.

Counts are per endpoint and per diff path, each table capped (a path or endpoint beyond the
cap is counted under "(other)"), and latencies go into HDR histograms, so an hours-long soak
keeps the same footprint as a thirteen-request scenario.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from shadow.config.verdict import Thresholds
from shadow.model import (
    MAX_ENDPOINTS,
    MAX_PATHS_PER_ENDPOINT,
    OTHER,
    REPEAT,
    Exchange,
    Failure,
    Response,
)
from shadow.run.latencies import LATENCY_MAX_US, bucket_us, fold

# Per-endpoint latency costs ~28 KB a target (two significant digits): kept for this many.
MAX_LATENCY_ENDPOINTS = 100
MAX_ERROR_KINDS = 32  # (target, kind) pairs; the replayer's kinds are a short vocabulary
_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


def new_histogram(digits: int = 3) -> HdrHistogram:
    return HdrHistogram(1, LATENCY_MAX_US, digits)


def record_ms(histogram: HdrHistogram, latency_ms: float) -> None:
    histogram.record_value(min(LATENCY_MAX_US, max(1, int(latency_ms * 1000))))


def latency_ratio(latency: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """candidate / primary for each percentile (above 1: the candidate is slower)."""
    primary, candidate = latency.get("primary", {}), latency.get("candidate", {})
    return {
        name: round(candidate[name] / value, 3) if value and name in candidate else None
        for name, value in primary.items()
    }


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    if histogram.get_total_count() == 0:
        return {}
    out = {name: histogram.get_value_at_percentile(p) / 1000 for name, p in _PERCENTILES}
    out["max"] = histogram.get_max_value() / 1000
    return {k: round(v, 3) for k, v in out.items()}


def _over(
    what: str, counts: EndpointTally, mismatch_rate: float, error_rate: float | None
) -> list[str]:
    """The rates of `counts` that exceed their limits, as reasons (`error_rate` None: the
    error rate is not judged)."""
    if counts.requests <= 0:
        return []
    out = []
    for name, count, limit in (
        ("mismatch", counts.mismatched, mismatch_rate),
        ("error", counts.errors, error_rate),
    ):
        if limit is not None and count / counts.requests > limit:
            out.append(
                f"{what} {name} rate {count}/{counts.requests} above the {name}_rate "
                f"threshold {limit:g}"
            )
    return out


_FAILED = ("failed",)


@functools.lru_cache(maxsize=1024)
def status_keys(status: int) -> tuple[str, str]:
    """The keys an answer counts under: its class (`2xx`...) and its exact code."""
    code = str(status)
    return f"{code[0]}xx", code


def count_answers(exchange: Exchange, *into: dict[str, dict[str, int]]) -> None:
    """Each target's answer, counted in every table of `into` (per target: class and code, or
    `failed` for a request that got no answer). The primary's second answer is not a target's."""
    for target, outcome in exchange.outcomes.items():
        if target == REPEAT:
            continue
        keys = status_keys(outcome.status) if isinstance(outcome, Response) else _FAILED
        for table in into:
            counts = table.get(target)
            if counts is None:
                counts = table[target] = {}
            for key in keys:
                counts[key] = counts.get(key, 0) + 1


def both_failed(exchange: Exchange) -> str | None:
    """How both sides failed alike (the status, or the transport error's kind), if they did:
    the same status >= 400 that the record or its endpoint does not declare as expected
    (`expect_status`), or the same kind of transport error."""
    p, c = exchange.outcomes.get("primary"), exchange.outcomes.get("candidate")
    if isinstance(p, Response) and isinstance(c, Response):
        if p.status != c.status or p.status < 400:
            return None
        expected = exchange.record.expect_status or exchange.rules.expect_status
        return None if p.status == expected else str(p.status)
    if isinstance(p, Failure) and isinstance(c, Failure) and p.kind == c.kind:
        return p.kind
    return None


def _sorted_counts(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(slots=True)
class EndpointTally:
    requests: int = 0
    matched: int = 0
    mismatched: int = 0
    errors: int = 0
    diffs: dict[str, int] = field(default_factory=dict)
    _latency: dict[str, HdrHistogram] | None = None  # per target; None past the cap
    # Answers counted per target and bucket (shadow.run.latencies), folded in when read.
    pending_latency: dict[str, dict[int, int]] = field(default_factory=dict)
    noise: dict[str, int] = field(default_factory=dict)  # differences suppressed, per path
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # per target
    both_failed: dict[str, int] = field(default_factory=dict)  # per status or error kind
    both_failed_errors: int = 0  # of those, transport errors (counted in `errors`)

    @property
    def latency(self) -> dict[str, HdrHistogram] | None:
        """Per target (2 significant digits); None past the cap."""
        histograms = self._latency
        if histograms is not None:
            for target, counts in self.pending_latency.items():
                if counts:
                    fold(histograms.setdefault(target, new_histogram(2)), counts)
        return histograms

    @latency.setter
    def latency(self, histograms: dict[str, HdrHistogram] | None) -> None:
        self._latency = histograms

    def agreed(self) -> int:
        """Exchanges where the two sides answered alike: the matched ones and the transport
        errors of one kind on both sides."""
        return self.matched + self.both_failed_errors

    def count_diff(self, path: str, counts: dict[str, int] | None = None) -> None:
        counts = self.diffs if counts is None else counts
        if path not in counts and len(counts) >= MAX_PATHS_PER_ENDPOINT:
            path = OTHER
        counts[path] = counts.get(path, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "errors": self.errors,
            "diffs": dict(sorted(self.diffs.items(), key=lambda kv: (-kv[1], kv[0]))),
            "noise": dict(sorted(self.noise.items(), key=lambda kv: (-kv[1], kv[0]))),
            "statuses": _by_target(self.statuses),
            "both_failed": _sorted_counts(self.both_failed),
        }


def _by_target(statuses: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per target, primary first, each target's counts in order."""
    order = {"primary": 0, "candidate": 1, "secondary": 2}
    ranked = sorted(statuses.items(), key=lambda kv: (order.get(kv[0], 9), kv[0]))
    return {target: _status_order(counts) for target, counts in ranked}


def _status_order(counts: dict[str, int]) -> dict[str, int]:
    """Classes first (`2xx`, ..., `failed`), then the exact codes, each in order."""
    return dict(sorted(counts.items(), key=lambda kv: (kv[0][1:] != "xx", kv[0])))


def _both_failed_reason(what: str, tally: EndpointTally, limit: float) -> str | None:
    """Why `tally`'s matched exchanges prove nothing (None: they do, or it allows them)."""
    agreed, failed = tally.agreed(), sum(tally.both_failed.values())
    if agreed <= 0 or failed / agreed <= limit:
        return None
    (cause, _), *others = sorted(tally.both_failed.items(), key=lambda kv: (-kv[1], kv[0]))
    if cause.isdigit():
        answered = f"answered {cause}" if not others else f"answered the same error ({cause}...)"
    else:
        answered = f"failed with {cause}" if not others else f"failed alike ({cause}...)"
    key = cause[:1] + "xx" if cause.isdigit() and cause not in _HINTS else cause
    hint = _HINTS.get(key) if not others else None
    # Transport errors are errors, not matches: then the share is of the exchanges alike.
    noun = "exchanges answered alike" if tally.both_failed_errors else "matched exchanges"
    return f"{failed} of {agreed} {noun}{what} {answered} on both sides" + (
        f": {hint}" if hint else ""
    )


_HINTS = {
    "401": "are the credentials right?",
    "403": "are the credentials right?",
    "407": "are the credentials right?",
    "404": "are the paths right for these servers?",
    "405": "are the methods right for these servers?",
    "5xx": "are the servers healthy?",
    "refused": "are the servers up at these urls?",
    "timeout": "are the servers answering at all?",
}


class Tally:
    def __init__(self, targets: list[str]) -> None:
        self.requests = self.matched = self.mismatched = self.errors = 0
        self.input_errors = self.skipped = self.noise = 0
        self.by_endpoint: dict[str, EndpointTally] = {}
        # Each answer is recorded once per target, in the current interval; an interval is
        # folded into the closed total when progress takes it (a native array addition), so
        # the hot path pays for one histogram per target, not two.
        self._closed_latency = {name: new_histogram() for name in targets}
        self.interval_latency = {name: new_histogram() for name in targets}  # for progress
        # The current interval's answers, per target and bucket, folded in when read: a
        # dict increment per answer instead of HdrHistogram's pure-Python record_value.
        self._interval_counts: dict[str, dict[int, int]] = {name: {} for name in targets}
        self.warmup = {"requests": 0, "matched": 0, "mismatched": 0, "errors": 0}
        self.kinds: dict[str, int] = {}  # real differences per kind, for `fail_on`
        self.error_kinds: dict[tuple[str, str], int] = {}  # (target, failure kind), --metrics
        self._latency_endpoints = 0
        self.statuses: dict[str, dict[str, int]] = {}  # per target, over the whole run
        self.both_failed: dict[str, int] = {}
        self.both_failed_errors = 0
        self.interrupted = False  # stopped by a signal: an empty run is not a failure then

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
        self._record_latency(ep, exchange)
        count_answers(exchange, ep.statuses, self.statuses)
        self.noise += len(exchange.noise)
        for diff in exchange.noise:
            ep.count_diff(diff.path, ep.noise)
        failed_alike = both_failed(exchange)
        if failed := exchange.failed_sides():
            self.errors += 1
            ep.errors += 1
            self._count_error_kinds(exchange, failed)
            if failed_alike is not None:
                self._count_both_failed(ep, failed_alike, error=True)
            return "error"
        if exchange.diffs or exchange.diffs_left_out:
            self.mismatched += 1
            ep.mismatched += 1
            for diff in exchange.diffs:
                ep.count_diff(diff.path)
                self.kinds[diff.kind] = self.kinds.get(diff.kind, 0) + 1
            return "mismatch"
        self.matched += 1
        ep.matched += 1
        if failed_alike is not None:
            self._count_both_failed(ep, failed_alike, error=False)
        return "match"

    def _count_error_kinds(self, exchange: Exchange, sides: list[str]) -> None:
        for side in sides:
            outcome = exchange.outcomes[side]
            kind = outcome.kind if isinstance(outcome, Failure) else OTHER
            key = (side, kind)
            if key not in self.error_kinds and len(self.error_kinds) >= MAX_ERROR_KINDS:
                key = (side, OTHER)
            self.error_kinds[key] = self.error_kinds.get(key, 0) + 1

    def _count_both_failed(self, ep: EndpointTally, cause: str, error: bool) -> None:
        for tally in (ep, self):
            tally.both_failed[cause] = tally.both_failed.get(cause, 0) + 1
            tally.both_failed_errors += int(error)

    def _record_latency(self, ep: EndpointTally, exchange: Exchange) -> None:
        pending: dict[str, dict[int, int]] | None = ep.pending_latency
        if ep._latency is None:
            if self._latency_endpoints < MAX_LATENCY_ENDPOINTS:
                self._latency_endpoints += 1
                ep.latency = {name: new_histogram(2) for name in self._closed_latency}
            else:
                pending = None
        for side, outcome in exchange.outcomes.items():
            if isinstance(outcome, Response):
                interval = self._interval_counts.get(side)
                if interval is None:
                    continue
                key = bucket_us(outcome.latency_ms)
                interval[key] = interval.get(key, 0) + 1
                if pending is not None:
                    counts = pending.get(side)
                    if counts is None:
                        counts = pending[side] = {}
                    counts[key] = counts.get(key, 0) + 1

    def _fold_interval(self) -> None:
        for name, counts in self._interval_counts.items():
            if counts:
                fold(self.interval_latency[name], counts)

    def add_warmup(self, exchange: Exchange) -> str:
        """Count an exchange sent while a target warmed up: outside the verdict and latency."""
        if exchange.failed_sides():
            outcome, key = "error", "errors"
        elif exchange.diffs or exchange.diffs_left_out:
            outcome, key = "mismatch", "mismatched"
        else:
            outcome, key = "match", "matched"
        self.warmup["requests"] += 1
        self.warmup[key] += 1
        return outcome

    def take_interval_latency(self) -> dict[str, dict[str, float]]:
        """Percentiles per target since the previous call, then start a new interval."""
        self._fold_interval()
        out = {}
        for name, histogram in self.interval_latency.items():
            out[name] = percentiles_ms(histogram)
            self._closed_latency[name].add(histogram)
            histogram.reset()
        return out

    def add_latency(self, target: str, histogram: HdrHistogram) -> None:
        """Add a whole histogram (another worker's) to a target's run total."""
        closed = self._closed_latency.setdefault(target, new_histogram())
        self.interval_latency.setdefault(target, new_histogram())
        self._interval_counts.setdefault(target, {})
        closed.add(histogram)

    @property
    def latency(self) -> dict[str, HdrHistogram]:
        """The whole run's latency per target so far (a fresh copy)."""
        self._fold_interval()
        out = {}
        for name, closed in self._closed_latency.items():
            total = new_histogram()
            total.add(closed)
            total.add(self.interval_latency[name])
            out[name] = total
        return out

    def add_unfinished(self, endpoint: str) -> None:
        """A record admitted but never finished (the run was cut short): an error."""
        self.requests += 1
        self.errors += 1
        ep = self.endpoint(endpoint)
        ep.requests += 1
        ep.errors += 1

    def exit_code(self, thresholds: Thresholds) -> int:
        return 1 if self.failures(thresholds) else 0

    def agreed(self) -> int:
        return self.matched + self.both_failed_errors

    def failed_on_errors_only(self, thresholds: Thresholds) -> bool:
        """The run fails its thresholds, and only by its rates of request errors (timeouts,
        refused connections...): nothing it compared differed beyond the limits."""
        return bool(self.failures(thresholds)) and not self.failures(thresholds, errors=False)

    def failures(self, thresholds: Thresholds, *, errors: bool = True) -> list[str]:
        """Why the run fails its thresholds (empty: it passes); `errors=False` leaves the
        error rates out."""
        out = []
        if self.requests == 0:
            # Stopped before any exchange is no more a pass than an empty log.
            out.append(self._nothing_compared())
        if self.input_errors > thresholds.input_errors:
            out.append(f"{self.input_errors} input errors (allowed {thresholds.input_errors})")
        out += [
            f"{n} {kind} differences (fail_on)"
            for kind in thresholds.fail_on
            if (n := self.kinds.get(kind, 0))
        ]
        rest = EndpointTally(self.requests, 0, self.mismatched, self.errors)
        for name, limits in thresholds.endpoints.items():
            ep = self.by_endpoint.get(name)
            if ep is None:
                continue
            rest.requests -= ep.requests
            rest.mismatched -= ep.mismatched
            rest.errors -= ep.errors
            error_rate = limits.error_rate if errors else None
            out += _over(f"endpoint {name!r}", ep, limits.mismatch_rate, error_rate)
        error_rate = thresholds.error_rate if errors else None
        out += _over("overall", rest, thresholds.mismatch_rate, error_rate)
        return out + self._both_failed_reasons(thresholds)

    def _both_failed_reasons(self, thresholds: Thresholds) -> list[str]:
        """Matched exchanges that are mostly the same failure on both sides, per endpoint
        (each by its own limit, else the overall one), then overall when no endpoint said it."""
        out = []
        rest = EndpointTally(matched=self.matched, both_failed=dict(self.both_failed))
        rest.both_failed_errors = self.both_failed_errors
        for name, ep in sorted(self.by_endpoint.items()):
            limits = thresholds.endpoints.get(name)
            limit = thresholds.both_failed_rate
            if limits is not None and limits.both_failed_rate is not None:
                limit = limits.both_failed_rate  # judged alone, left out of the overall rate
                rest.matched -= ep.matched
                rest.both_failed_errors -= ep.both_failed_errors
                for cause, count in ep.both_failed.items():
                    rest.both_failed[cause] -= count
            reason = _both_failed_reason(f" of {name!r}", ep, limit)
            if reason is not None:
                out.append(reason)
        rest.both_failed = {cause: n for cause, n in rest.both_failed.items() if n > 0}
        if not out:
            reason = _both_failed_reason("", rest, thresholds.both_failed_rate)
            out += [reason] if reason is not None else []
        return out

    def _nothing_compared(self) -> str:
        why = []
        if self.skipped:
            why.append(f"{self.skipped} skipped by [replay] methods")
        if self.input_errors:
            why.append(f"{self.input_errors} could not be read")
        if self.warmup["requests"]:
            why.append(f"{self.warmup['requests']} sent during a warm-up")
        if self.interrupted:
            why.append("stopped before any record was sent")
        detail = "; ".join(why) if why else "the logs held no record"
        return f"nothing was compared ({detail})"

    def _endpoint_summary(self, ep: EndpointTally) -> dict[str, Any]:
        out = ep.to_dict()
        if ep.latency is not None:
            latency = {name: percentiles_ms(h) for name, h in ep.latency.items()}
            out["latency_ms"] = latency
            out["latency_ratio"] = latency_ratio(latency)
        return out

    def summary(self) -> dict[str, Any]:
        latency = {name: percentiles_ms(h) for name, h in self.latency.items()}
        return {
            "requests": self.requests,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "errors": self.errors,
            "input_errors": self.input_errors,
            "skipped": self.skipped,
            "noise": self.noise,
            "by_endpoint": {
                name: self._endpoint_summary(ep) for name, ep in sorted(self.by_endpoint.items())
            },
            "latency_ms": latency,
            "latency_ratio": latency_ratio(latency),
            "warmup": dict(self.warmup),
            "statuses": _by_target(self.statuses),
            "both_failed": _sorted_counts(self.both_failed),
        }
