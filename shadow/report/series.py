"""`progress` events read defensively into a bounded time series per run.

The fields read, each optional (a missing one only leaves its plot out):
`elapsed_s` or `elapsed` (seconds since the start; else derived from `ts` and the run's
`run_started` ts), `sent` (or `requests`), `matched`, `mismatched`, `errors` (running totals),
`rate` (or `rate_per_s`; else derived from `sent`), the interval's latency per target
(`latency_ms: {name: {p99: ms}}`), and each server's resident memory from
`targets`, `servers` or `processes` (`{name: {rss_bytes | rss_kib | rss_kb | rss_mib | rss_mb |
rss: n}}`) or a top-level `rss_bytes`, `rss_mb` or `rss` mapping `{name: n}`; shadow's own
memory from `shadow` (`{"rss_mb": n}` and the like).
A series keeps at most MAX_POINTS points: when full, every other point goes and from then on
only every second (fourth, ...) event is kept, so a week-long soak plots in bounded memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_POINTS = 2048

_RSS_UNITS = (
    ("rss_bytes", 1),
    ("rss_kib", 1024),
    ("rss_kb", 1024),
    ("rss_mib", 1024**2),
    ("rss_mb", 1024**2),
    ("rss", 1),
)
_CONTAINERS = ("targets", "servers", "processes")


@dataclass(slots=True)
class Point:
    elapsed_s: float
    sent: float | None = None
    rate: float | None = None
    matched: float | None = None
    mismatched: float | None = None
    errors: float | None = None
    rss_bytes: dict[str, float] = field(default_factory=dict)
    p99_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "sent": self.sent,
            "rate": None if self.rate is None else round(self.rate, 3),
            "matched": self.matched,
            "mismatched": self.mismatched,
            "errors": self.errors,
            "rss_bytes": dict(self.rss_bytes),
            "p99_ms": dict(self.p99_ms),
        }


class Series:
    """The progress points of one run, decimated to stay under MAX_POINTS."""

    __slots__ = ("_seen", "_stride", "points")

    def __init__(self) -> None:
        self.points: list[Point] = []
        self._stride = 1
        self._seen = 0

    def add(self, point: Point) -> None:
        self._seen += 1
        if (self._seen - 1) % self._stride:
            return
        self.points.append(point)
        if len(self.points) >= MAX_POINTS:
            self.points = self.points[::2]
            self._stride *= 2


def parse_ts(value: Any) -> float | None:
    """Seconds since the epoch from an event `ts` (ISO-8601, `Z`), or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def read_point(event: Mapping[str, Any], started_at: float | None) -> Point | None:
    elapsed = _number(event, "elapsed_s", "elapsed")
    if elapsed is None:
        now = parse_ts(event.get("ts"))
        if now is None or started_at is None:
            return None
        elapsed = now - started_at
    return Point(
        elapsed_s=elapsed,
        sent=_number(event, "sent", "requests"),
        rate=_number(event, "rate", "rate_per_s"),
        matched=_number(event, "matched"),
        mismatched=_number(event, "mismatched"),
        errors=_number(event, "errors"),
        rss_bytes=_rss_by_target(event),
        p99_ms=_p99_by_target(event.get("latency_ms")),
    )


def _p99_by_target(latency: Any) -> dict[str, float]:
    if not isinstance(latency, Mapping):
        return {}
    out = {}
    for name, info in latency.items():
        p99 = info.get("p99") if isinstance(info, Mapping) else None
        if isinstance(p99, int | float) and not isinstance(p99, bool):
            out[str(name)] = float(p99)
    return out


def _number(event: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = event.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _rss_by_target(event: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in _CONTAINERS:
        container = event.get(key)
        if isinstance(container, Mapping):
            for name, info in container.items():
                rss = _rss_of(info) if isinstance(info, Mapping) else None
                if rss is not None:
                    out[str(name)] = rss
    own = event.get("shadow")
    if isinstance(own, Mapping) and (rss := _rss_of(own)) is not None:
        out["shadow"] = rss
    for key, unit in _RSS_UNITS:
        container = event.get(key)
        if isinstance(container, Mapping):
            for name, value in container.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out.setdefault(str(name), float(value) * unit)
    return out


def _rss_of(info: Mapping[str, Any]) -> float | None:
    for key, unit in _RSS_UNITS:
        value = info.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * unit
    return None
