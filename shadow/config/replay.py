"""`[replay]`: how records are sent (concurrency, timeouts, pacing, lanes, headers, limits)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from shadow.config.correlate import CorrelateConfig, parse_correlate
from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue, check_above, check_at_least, check_choice

MAX_CONCURRENCY = 10_000  # records in flight: past this, file descriptors run out first
NO_ZERO_TIMEOUT = " (every request has a timeout: 0 would mean none; give a long one instead)"
LANE_SOURCES = ("record", "header", "path")
HOST_HEADERS = ("target", "preserve")
TRANSPORTS = ("auto", "aiohttp", "httptools")  # [replay] transport, --transport
RECORDED_AUTH = ("keep", "drop", "replace")

_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """`30s`, `10m`, `2h`, `500ms` or plain seconds -> seconds; ValueError if malformed."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 2h)")
    seconds = float(match["value"]) * _UNITS[match["unit"]]
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: {text[:40]!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class RateSpec:
    """Records per second: `start` rising (or falling) linearly to `end` over `ramp_s`."""

    start: float
    end: float
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        if self.start < 0 or self.end <= 0 or not math.isfinite(self.start + self.end):
            raise ValueError("rates must be finite, the final one above 0")
        if self.ramp_s < 0 or (self.start != self.end and self.ramp_s == 0):
            raise ValueError("a ramp needs a duration above 0")

    @property
    def text(self) -> str:
        if self.ramp_s == 0:
            return f"{self.end:g}"
        return f"{self.start:g}:{self.end:g}:{self.ramp_s:g}s"


def parse_rate(text: str) -> RateSpec:
    """`R` (constant) or `A:B:DURATION` (a ramp from A to B per second) -> RateSpec."""
    parts = text.strip().split(":")
    try:
        if len(parts) == 1:
            rate = float(parts[0])
            return RateSpec(rate, rate)
        if len(parts) == 3:
            return RateSpec(float(parts[0]), float(parts[1]), parse_duration(parts[2]))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    raise ValueError(f"{text!r}: use R (per second) or FROM:TO:DURATION such as 10:200:5m")


@dataclass(frozen=True, slots=True)
class LaneRule:
    """Where a record's lane key comes from: the record, a header, or a regex on the path."""

    source: str = "record"  # record | header | path (the key `from` in the file)
    header: str = ""
    pattern: str = ""

    def __post_init__(self) -> None:
        check_choice("source", self.source, LANE_SOURCES)
        if self.source == "header" and not self.header:
            raise InvalidValue("header", 'missing (lane.from = "header" needs a header name)')
        if self.source == "path":
            try:
                re.compile(self.pattern or "(?!)")
            except re.error as exc:
                raise InvalidValue("pattern", f"not a valid regular expression: {exc}") from None
            if not self.pattern:
                raise InvalidValue("pattern", 'missing (lane.from = "path" needs a regex)')


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    concurrency: int = 16
    timeout_s: float = 10.0
    rate: float = 0.0
    ramp: RateSpec | None = None
    lane: LaneRule = field(default_factory=LaneRule)
    host_header: str = "target"  # target | preserve
    transport: str = "auto"  # auto | aiohttp | httptools (shadow.replay.transports)
    methods: tuple[str, ...] = ()  # empty: all methods
    max_body_bytes: int = 64 << 20
    max_record_bytes: int = 16 << 20
    max_bodies_bytes: int = 512 << 20  # every body held in memory at once, all exchanges
    max_differences: int = 100  # kept per exchange; the rest counted (`diffs_total`)
    max_event_bytes: int = 1 << 20  # one event line; past it, values and diffs are cut
    recorded_auth: str = "keep"  # keep | drop | replace: credentials captured in the log
    progress_interval_s: float = 10.0  # 0: no progress events
    behind_warning_s: float = 5.0  # lag behind the schedule that makes a behind_schedule event
    unresponsive_after: int = 5  # timeouts in a row on a target before server_unresponsive
    # Answer values sent to each target as it answered them (shadow.config.correlate).
    correlate: CorrelateConfig = field(default_factory=CorrelateConfig)

    def __post_init__(self) -> None:
        check_at_least("concurrency", self.concurrency, 1)
        if self.concurrency > MAX_CONCURRENCY:
            raise InvalidValue(
                "concurrency", f"must be at most {MAX_CONCURRENCY}, not {self.concurrency}"
            )
        check_above("timeout_s", self.timeout_s, 0, NO_ZERO_TIMEOUT)
        check_at_least("rate", self.rate, 0)
        check_choice("host_header", self.host_header, HOST_HEADERS)
        check_choice("transport", self.transport, TRANSPORTS)
        check_at_least("max_body_bytes", self.max_body_bytes, 1)
        check_at_least("max_record_bytes", self.max_record_bytes, 64)
        check_at_least("max_bodies_bytes", self.max_bodies_bytes, self.max_body_bytes)
        check_at_least("max_differences", self.max_differences, 1)
        check_at_least("max_event_bytes", self.max_event_bytes, 4096)
        check_choice("recorded_auth", self.recorded_auth, RECORDED_AUTH)
        check_at_least("progress_interval_s", self.progress_interval_s, 0)
        check_at_least("behind_warning_s", self.behind_warning_s, 0)
        check_at_least("unresponsive_after", self.unresponsive_after, 1)
        if self.ramp is not None and self.rate:
            raise InvalidValue("ramp", "set rate or ramp, not both")


def parse_replay(t: Table) -> ReplayConfig:
    lane = t.table("lane")
    lane_rule = lane.build(
        LaneRule,
        {"source": "from"},
        source=lane.text("from"),
        header=lane.text("header"),
        pattern=lane.text("pattern"),
    )
    lane.done()
    methods = t.strings("methods")
    for method in methods or ():
        if not method.isascii() or not method.isalpha():  # "\u017fet".upper() is "SET"
            raise t.fail("methods", f"must be HTTP methods such as GET, not {method[:40]!r}")
    replay = t.build(
        ReplayConfig,
        concurrency=t.integer("concurrency"),
        timeout_s=t.number("timeout_s"),
        rate=t.number("rate"),
        ramp=_ramp(t),
        lane=lane_rule,
        host_header=t.text("host_header"),
        transport=t.text("transport"),
        methods=tuple(m.upper() for m in methods) if methods else UNSET,
        max_body_bytes=t.integer("max_body_bytes"),
        max_record_bytes=t.integer("max_record_bytes"),
        max_bodies_bytes=t.integer("max_bodies_bytes"),
        max_differences=t.integer("max_differences"),
        max_event_bytes=t.integer("max_event_bytes"),
        recorded_auth=t.text("recorded_auth"),
        progress_interval_s=t.number("progress_interval_s"),
        behind_warning_s=t.number("behind_warning_s"),
        unresponsive_after=t.integer("unresponsive_after"),
        correlate=parse_correlate(t),
    )
    t.done()
    return replay


def _ramp(t: Table) -> RateSpec | None:
    text = t.text("ramp")
    if not text:
        return None
    try:
        spec = parse_rate(text)
    except ValueError as exc:
        raise t.fail("ramp", str(exc)) from None
    if spec.ramp_s == 0:
        raise t.fail("ramp", f"{text!r} is not a ramp: use FROM:TO:DURATION such as 10:200:5m")
    return spec
