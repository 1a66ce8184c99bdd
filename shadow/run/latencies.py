"""Latencies counted at HDR histogram precision in a dict, folded into the histograms when read."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LATENCY_MAX_US = 3_600_000_000  # one hour, in microseconds
# A histogram of 3 significant digits from 1 µs (the finest shadow keeps) has 2048
# sub-buckets (2 x 10**3, rounded up to a power of 2): a value and every other value of its
# bucket share their top 11 bits. A histogram of 2 digits has 256 sub-buckets, each a union
# of whole 3-digit buckets, so one key serves both.
_KEPT_BITS = 11


def bucket_us(latency_ms: float) -> int:
    """The lowest value (µs) of the 3-digit HDR bucket `latency_ms` falls in: recording it
    counts in the same bucket as recording the value itself, in any histogram of 1 to 3
    digits from 1 µs, and gives the same percentiles, minimum and maximum."""
    value = min(LATENCY_MAX_US, max(1, int(latency_ms * 1000)))
    shift = value.bit_length() - _KEPT_BITS
    return value if shift <= 0 else value >> shift << shift


def count(counts: dict[int, int], latency_ms: float) -> None:
    key = bucket_us(latency_ms)
    counts[key] = counts.get(key, 0) + 1


def fold(histogram: HdrHistogram, counts: dict[int, int]) -> None:
    """Move `counts` into `histogram` (one record per bucket, not per answer)."""
    for value, n in counts.items():
        histogram.record_value(value, n)
    counts.clear()
