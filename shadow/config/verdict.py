"""`[thresholds]` and `[noise]`: what beyond the compare rules decides a run's verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue, check_at_least, check_fraction
from shadow.model import DIFF_KINDS, SAFE_METHODS

# By default a run fails when more than half of its matched exchanges (overall, or of one
# endpoint) are the same error on both sides: agreeing on an error proves nothing.
BOTH_FAILED_RATE = 0.5


@dataclass(frozen=True, slots=True)
class Limits:
    """Allowed rates (0..1) of mismatched and of failed exchanges, and of matched exchanges
    that failed alike on both sides (None: the overall `both_failed_rate`)."""

    mismatch_rate: float = 0.0
    error_rate: float = 0.0
    both_failed_rate: float | None = None

    def __post_init__(self) -> None:
        check_fraction("mismatch_rate", self.mismatch_rate)
        check_fraction("error_rate", self.error_rate)
        if self.both_failed_rate is not None:
            check_fraction("both_failed_rate", self.both_failed_rate)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """`[thresholds]`: what makes exit code 1.

    An endpoint listed under `endpoint` is judged by its own limits and left out of the overall
    rates; every other endpoint is judged together by the overall ones. A real difference of a
    kind in `fail_on` fails the run whatever the rates. `both_failed_rate` is judged overall
    and for every endpoint: the share of matched exchanges that failed alike on both sides
    (the same status >= 400 not declared by `expect_status`, or the same transport error).
    """

    mismatch_rate: float = 0.0
    error_rate: float = 0.0
    input_errors: int = 0
    fail_on: tuple[str, ...] = ()
    endpoints: Mapping[str, Limits] = field(default_factory=dict)
    both_failed_rate: float = BOTH_FAILED_RATE

    def __post_init__(self) -> None:
        check_fraction("mismatch_rate", self.mismatch_rate)
        check_fraction("error_rate", self.error_rate)
        check_fraction("both_failed_rate", self.both_failed_rate)
        check_at_least("input_errors", self.input_errors, 0)
        for kind in self.fail_on:
            if kind not in DIFF_KINDS:
                raise InvalidValue(
                    "fail_on", f"unknown kind {kind!r} (use {', '.join(DIFF_KINDS)})"
                )


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """`[noise]`: calibration against the primary itself (the rule is in shadow/compare/noise.py).

    `enabled` None means on: against the secondary when one is configured, else by repeating
    the safe records to the primary. Each endpoint's safe records are all calibrated until
    it has `full_pairs` calibration requests, then `sample` of them.
    """

    enabled: bool | None = None
    repeat_methods: tuple[str, ...] = SAFE_METHODS
    min_samples: int = 1
    min_rate: float = 0.05
    ratio: float = 0.5
    sample: float = 0.1  # the fraction of reads calibrated past `full_pairs` (writes: all)
    full_pairs: int = 20

    def __post_init__(self) -> None:
        check_at_least("min_samples", self.min_samples, 1)
        check_at_least("full_pairs", self.full_pairs, 0)
        check_fraction("min_rate", self.min_rate)
        check_at_least("ratio", self.ratio, 0)
        check_fraction("sample", self.sample)


def parse_noise(t: Table) -> NoiseConfig:
    methods = t.strings("repeat_methods")
    noise = t.build(
        NoiseConfig,
        enabled=t.flag("enabled"),
        # An empty list means the default, as no list does.
        repeat_methods=tuple(m.upper() for m in methods) if methods else UNSET,
        min_samples=t.integer("min_samples"),
        min_rate=t.number("min_rate"),
        ratio=t.number("ratio"),
        sample=t.number("sample"),
        full_pairs=t.integer("full_pairs"),
    )
    t.done()
    return noise


def parse_thresholds(t: Table) -> Thresholds:
    fail_on = t.strings("fail_on")
    per_endpoint = t.table("endpoint")
    endpoints: dict[str, Limits] = {}
    for name in list(per_endpoint.data):
        limits = per_endpoint.table(name)
        endpoints[name] = limits.build(
            Limits,
            mismatch_rate=limits.number("mismatch_rate"),
            error_rate=limits.number("error_rate"),
            both_failed_rate=limits.number("both_failed_rate"),
        )
        limits.done()
    thresholds = t.build(
        Thresholds,
        mismatch_rate=t.number("mismatch_rate"),
        error_rate=t.number("error_rate"),
        input_errors=t.integer("input_errors"),
        fail_on=tuple(dict.fromkeys(fail_on)) if fail_on else UNSET,
        endpoints=endpoints,
        both_failed_rate=t.number("both_failed_rate"),
    )
    t.done()
    return thresholds
