"""`[thresholds]` and `[noise]`: what beyond the compare rules decides a run's verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue, check_at_least, check_fraction
from shadow.model import DIFF_KINDS, SAFE_METHODS


@dataclass(frozen=True, slots=True)
class Limits:
    """Allowed rates (0..1) of mismatched and of failed exchanges."""

    mismatch_rate: float = 0.0
    error_rate: float = 0.0

    def __post_init__(self) -> None:
        check_fraction("mismatch_rate", self.mismatch_rate)
        check_fraction("error_rate", self.error_rate)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """`[thresholds]`: what makes exit code 1.

    An endpoint listed under `endpoint` is judged by its own limits and left out of the overall
    rates; every other endpoint is judged together by the overall ones. A real difference of a
    kind in `fail_on` fails the run whatever the rates.
    """

    mismatch_rate: float = 0.0
    error_rate: float = 0.0
    input_errors: int = 0
    fail_on: tuple[str, ...] = ()
    endpoints: Mapping[str, Limits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fraction("mismatch_rate", self.mismatch_rate)
        check_fraction("error_rate", self.error_rate)
        check_at_least("input_errors", self.input_errors, 0)
        for kind in self.fail_on:
            if kind not in DIFF_KINDS:
                raise InvalidValue(
                    "fail_on", f"unknown kind {kind!r} (use {', '.join(DIFF_KINDS)})"
                )


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """`[noise]`: calibration against the primary itself (the rule is in shadow/compare/noise.py).

    `enabled` None means: on when a secondary target is configured, off otherwise.
    """

    enabled: bool | None = None
    repeat_methods: tuple[str, ...] = SAFE_METHODS
    min_samples: int = 1
    min_rate: float = 0.05
    ratio: float = 0.5
    sample: float = 1.0  # the fraction of reads calibrated (writes always go to a secondary)

    def __post_init__(self) -> None:
        check_at_least("min_samples", self.min_samples, 1)
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
        )
        limits.done()
    thresholds = t.build(
        Thresholds,
        mismatch_rate=t.number("mismatch_rate"),
        error_rate=t.number("error_rate"),
        input_errors=t.integer("input_errors"),
        fail_on=tuple(dict.fromkeys(fail_on)) if fail_on else UNSET,
        endpoints=endpoints,
    )
    t.done()
    return thresholds
