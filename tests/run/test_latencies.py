"""Latencies counted by bucket in a dict, then folded: the same histograms as recording each."""

from __future__ import annotations

import random

from hdrh.histogram import HdrHistogram

from shadow.run.latencies import LATENCY_MAX_US, bucket_us, count, fold
from shadow.run.tally import new_histogram, percentiles_ms, record_ms

PERCENTILES = (0.0, 1.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0)


def _latencies_ms(n: int) -> list[float]:
    """Sub-millisecond to an hour and past it, zero and negatives included (clamped alike)."""
    rng = random.Random(15)
    out = [0.0, -1.0, 0.0004, 0.001, 2.047, 2.048, 2.049, 3_600_000.0, 7_200_000.0]
    out += [10 ** rng.uniform(-3, 6.6) for _ in range(n)]
    return out


def _same(direct: HdrHistogram, folded: HdrHistogram) -> None:
    assert list(folded.counts) == list(direct.counts)
    assert folded.get_total_count() == direct.get_total_count()
    assert folded.get_min_value() == direct.get_min_value()
    assert folded.get_max_value() == direct.get_max_value()
    assert folded.get_mean_value() == direct.get_mean_value()
    for p in PERCENTILES:
        assert folded.get_value_at_percentile(p) == direct.get_value_at_percentile(p), p
    assert percentiles_ms(folded) == percentiles_ms(direct)


def test_folded_counts_give_the_percentiles_of_direct_recording_at_3_and_2_digits() -> None:
    latencies = _latencies_ms(20_000)
    for digits in (3, 2):
        direct, folded = new_histogram(digits), new_histogram(digits)
        counts: dict[int, int] = {}
        for i, ms in enumerate(latencies):
            record_ms(direct, ms)
            count(counts, ms)
            if i % 7_000 == 0:  # folded now and then, as progress reads an interval
                fold(folded, counts)
        fold(folded, counts)
        assert counts == {}
        _same(direct, folded)


def test_a_bucket_key_is_a_value_of_the_same_bucket_and_the_dict_stays_bounded() -> None:
    histogram = new_histogram(3)
    latencies = _latencies_ms(20_000)
    for ms in latencies:
        key = bucket_us(ms)
        value = min(LATENCY_MAX_US, max(1, int(ms * 1000)))
        assert key == histogram.get_lowest_equivalent_value(value)
    counts: dict[int, int] = {}
    for ms in latencies:
        count(counts, ms)
    # Bounded by the histogram's buckets, not by the number of distinct latencies.
    assert len(counts) <= histogram.counts_len
    assert len(counts) < len({int(ms * 1000) for ms in latencies})
