"""The config tables that decide a verdict: `[compare]` rules, `[noise]` and `[thresholds]`.

Kept apart from shadow/config.py, which reads the tables about servers and replay, and held to
the same standard: every problem is a ConfigError naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shadow.errors import ConfigError
from shadow.model import DIFF_KINDS, NORMALIZERS, SAFE_METHODS, CompareRules

if TYPE_CHECKING:
    from shadow.config.load import _Table


@dataclass(frozen=True, slots=True)
class Limits:
    """Allowed rates (0..1) of mismatched and of failed exchanges."""

    mismatch_rate: float = 0.0
    error_rate: float = 0.0


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


def parse_rules(t: _Table) -> CompareRules:
    """The compare rules of `[compare]` or of one `[[compare.endpoint]]`."""
    normalize = t.str_map("normalize")
    for pattern, kind in normalize.items():
        if kind not in NORMALIZERS:
            raise ConfigError(
                t.source,
                f"{t.key('normalize')}.{pattern}",
                f"unknown normalizer {kind!r} (use one of {', '.join(NORMALIZERS)})",
            )
    plain, keyed = _unordered(t)
    for key, patterns in (("ignore", t.strings("ignore")), ("unordered", plain + tuple(keyed))):
        _check_patterns(t, key, patterns)
    _check_patterns(t, "normalize", tuple(normalize))
    headers = tuple(h.lower() for h in t.strings("headers"))
    return CompareRules(
        ignore=t.strings("ignore"),
        unordered=plain,
        normalize=tuple(normalize.items()),
        headers=headers,
        compare_status=t.flag("status", True),
        tolerance=t.number("tolerance", 0.0),
        unordered_keys=tuple(keyed.items()),
        ignore_headers=tuple(h.lower() for h in t.strings("ignore_headers")),
        relative_tolerance=t.number("relative_tolerance", 0.0),
    )


def _unordered(t: _Table) -> tuple[tuple[str, ...], dict[str, str]]:
    """`unordered` as a list (plain multisets) or a table of pattern -> key member ("" = plain)."""
    if isinstance(t.data.get("unordered"), dict):
        table = t.str_map("unordered")
        plain = tuple(p for p, key in table.items() if not key)
        return plain, {p: key for p, key in table.items() if key}
    return t.strings("unordered"), {}


def _check_patterns(t: _Table, key: str, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        if not pattern.startswith("/"):
            raise t.fail(key, f"pointer pattern {pattern!r} must start with '/'")


def merge_rules(base: CompareRules, extra: CompareRules) -> CompareRules:
    """An endpoint's rules: the global lists plus its own; its scalars where it sets them."""
    return CompareRules(
        ignore=base.ignore + extra.ignore,
        unordered=base.unordered + extra.unordered,
        normalize=base.normalize + extra.normalize,
        headers=tuple(dict.fromkeys(base.headers + extra.headers)),
        compare_status=base.compare_status and extra.compare_status,
        tolerance=max(base.tolerance, extra.tolerance),
        unordered_keys=base.unordered_keys + extra.unordered_keys,
        ignore_headers=tuple(dict.fromkeys(base.ignore_headers + extra.ignore_headers)),
        relative_tolerance=max(base.relative_tolerance, extra.relative_tolerance),
    )


def parse_noise(t: _Table) -> NoiseConfig:
    enabled: Any = t.get("enabled", (bool,), None, "true or false")
    methods = tuple(m.upper() for m in t.strings("repeat_methods")) or SAFE_METHODS
    noise = NoiseConfig(
        enabled=enabled,
        repeat_methods=methods,
        min_samples=t.integer("min_samples", 1, minimum=1),
        min_rate=_rate(t, "min_rate", 0.05),
        ratio=t.number("ratio", 0.5),
        sample=_rate(t, "sample", 1.0),
    )
    t.done()
    return noise


def parse_thresholds(t: _Table) -> Thresholds:
    fail_on = t.strings("fail_on")
    for kind in fail_on:
        if kind not in DIFF_KINDS:
            raise t.fail("fail_on", f"unknown kind {kind!r} (use {', '.join(DIFF_KINDS)})")
    per_endpoint = t.table("endpoint")
    endpoints: dict[str, Limits] = {}
    for name in list(per_endpoint.data):
        limits = per_endpoint.table(name)
        endpoints[name] = Limits(
            mismatch_rate=_rate(limits, "mismatch_rate", 0.0),
            error_rate=_rate(limits, "error_rate", 0.0),
        )
        limits.done()
    thresholds = Thresholds(
        mismatch_rate=_rate(t, "mismatch_rate", 0.0),
        error_rate=_rate(t, "error_rate", 0.0),
        input_errors=t.integer("input_errors", 0),
        fail_on=tuple(dict.fromkeys(fail_on)),
        endpoints=endpoints,
    )
    t.done()
    return thresholds


def _rate(t: _Table, name: str, default: float) -> float:
    value = t.number(name, default)
    if value > 1:
        raise t.fail(name, f"is a fraction of exchanges: at most 1, not {value:g}")
    return value
