"""Command-line values: each converter's bounds, and flags laid over a config."""

from __future__ import annotations

import argparse

import pytest

from shadow.config import flags
from shadow.config.replay import MAX_CONCURRENCY, RateSpec
from shadow.errors import UsageError


@pytest.mark.parametrize(
    ("convert", "text"),
    [
        (flags.number, "nan"),
        (flags.number, "inf"),
        (flags.timeout, "0"),
        (flags.timeout, "-1"),
        (flags.positive, "0"),
        (flags.non_negative, "-0.5"),
        (flags.positive_int, "0"),
        (flags.concurrency, str(MAX_CONCURRENCY + 1)),
        (flags.workers, "100000"),
        (flags.exit_code, "0"),
        (flags.exit_code, "256"),
        (flags.address, "9100"),
        (flags.address, "host:99999"),
        (flags.shard, "3/3"),
        (flags.duration, "0s"),
        (flags.seed, "-1"),
    ],
)
def test_a_value_out_of_bounds_is_refused(convert: object, text: str) -> None:
    assert callable(convert)
    with pytest.raises(argparse.ArgumentTypeError):
        convert(text)


def test_values_in_bounds_are_converted() -> None:
    assert flags.timeout("2.5") == 2.5
    assert flags.concurrency(str(MAX_CONCURRENCY)) == MAX_CONCURRENCY
    assert flags.address("[::1]:9100") == ("::1", 9100)
    assert flags.exit_code("143") == 143
    assert flags.duration("2m") == 120.0
    assert flags.rate("5:50:1m") == RateSpec(5.0, 50.0, 60.0)


def test_speed_and_rate_exclude_each_other() -> None:
    args = argparse.Namespace(speed=2.0, rate=RateSpec(1.0, 1.0))
    with pytest.raises(UsageError, match="exclude each other"):
        flags.resolve_rate(args, None)  # type: ignore[arg-type]
