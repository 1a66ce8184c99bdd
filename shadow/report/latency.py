"""Latency distributions per endpoint and target, in memory that does not grow with the events.

Recording into an HDR histogram costs microseconds a value in Python, too slow for a million
events, so values are first counted in a dict keyed by the value rounded to 9 significant
bits (0.2 %), which holds at most a few thousand keys however many events arrive. The HDR
histogram is built from those counts once, at the end, and gives the percentiles and curves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

_KEEP_BITS = 9
_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000  # one hour
_SIGNIFICANT_DIGITS = 2  # 1 %: plenty for a report, and 7x fewer counts to walk
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
SUMMARY_KEYS = ("p50", "p90", "p99", "max")
# The percentile curve: dense where tails matter.
CURVE_PERCENTILES = (
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 96.0,
    97.0, 97.5, 98.0, 98.5, 99.0, 99.25, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999, 100.0,
)  # fmt: skip


class LatencyBuckets:
    """Counts of latencies (microseconds, rounded to 9 significant bits)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def add(self, latency_ms: float) -> None:
        micros = int(latency_ms * 1000)
        if micros < _LOWEST_US:
            micros = _LOWEST_US
        elif micros > _HIGHEST_US:
            micros = _HIGHEST_US
        shift = micros.bit_length() - _KEEP_BITS
        if shift > 0:
            micros = (micros >> shift) << shift
        counts = self.counts
        counts[micros] = counts.get(micros, 0) + 1
        self.total += 1


def to_histogram(buckets: Iterable[LatencyBuckets]) -> HdrHistogram:
    histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)
    for bucket in buckets:
        for micros, count in bucket.counts.items():
            histogram.record_value(micros, count)
    return histogram


def percentiles_ms(histogram: HdrHistogram) -> dict[str, Any]:
    """`count`, `p50`, `p90`, `p99`, `max` in milliseconds; `{}` for an empty histogram."""
    count = histogram.get_total_count()
    if not count:
        return {}
    values = histogram.get_percentile_to_value_dict([p for _, p in PERCENTILES])
    out: dict[str, Any] = {"count": count}
    for name, p in PERCENTILES:
        out[name] = round(values[p] / 1000, 3)
    out["max"] = round(histogram.get_max_value() / 1000, 3)
    return out


def curve_ms(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, milliseconds) points of the distribution, for plotting."""
    if not histogram.get_total_count():
        return []
    # Past 1 - 1/count a percentile only repeats the maximum: the curve stops there.
    last = 100.0 * (1 - 1 / histogram.get_total_count())
    wanted = [p for p in CURVE_PERCENTILES[:-1] if p <= last]
    values = histogram.get_percentile_to_value_dict(wanted)
    points = [(p, values[p] / 1000) for p in wanted]
    points.append((100.0, histogram.get_max_value() / 1000))
    return points


def read_summary(value: Any) -> dict[str, float]:
    """The percentiles of one target in a `run_finished` (or per-endpoint) `latency_ms`."""
    if not isinstance(value, Mapping):
        return {}
    return {
        key: float(value[key])
        for key in SUMMARY_KEYS
        if isinstance(value.get(key), int | float) and not isinstance(value.get(key), bool)
    }


def merge_summaries(summaries: list[dict[str, float]]) -> dict[str, Any]:
    """Percentiles of several runs: the highest of each. The percentiles of a merged
    distribution lie between the lowest and highest of its parts, so this errs slow."""
    merged: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        values = [s[key] for s in summaries if key in s]
        if values:
            merged[key] = round(max(values), 3)
    return merged


def merge_encoded(encoded: list[str]) -> HdrHistogram | None:
    """One histogram from several runs' encoded HDR histograms (a sharded run's
    `run_finished` carries them: shadow.run.merge), so the merged percentiles are exactly
    those of one run over all their records; None if one cannot be decoded."""
    merged: HdrHistogram | None = None
    for text in encoded:
        try:
            if merged is None:
                merged = HdrHistogram.decode(text.encode("ascii"))
            else:
                merged.decode_and_add(text.encode("ascii"))
        except Exception:  # noqa: BLE001 - any malformed encoding: fall back to the percentiles
            return None
    return merged


def exact_ms(histogram: HdrHistogram) -> dict[str, Any]:
    """`count`, `p50`, `p90`, `p99`, `max` in milliseconds, as a run computes its own
    (shadow.run.tally): the same histogram gives the same figures."""
    out: dict[str, Any] = {"count": histogram.get_total_count()}
    for name, p in PERCENTILES:
        out[name] = round(histogram.get_value_at_percentile(p) / 1000, 3)
    out["max"] = round(histogram.get_max_value() / 1000, 3)
    return out


def summary_curve(summary: Mapping[str, float]) -> list[tuple[float, float]]:
    marks = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    return [(marks[key], summary[key]) for key in SUMMARY_KEYS if key in summary]
