"""Pacing: when each record is due to start (constant rate, ramp, recorded timing).

The choice made here, once: an open model with bounded memory.

A schedule says when record n is due without looking at the servers; the replay never waits
for an answer before deciding when the next record starts. Each record carries its due time
into the replay, and latency is measured from that due time, not from the moment the request
finally went out. When the servers slow down, the time a record spent waiting to be sent
therefore counts against them (no coordinated omission).

What the schedule does not do is admit without limit. The replay keeps at most twice its
concurrency records admitted but unfinished; when the servers cannot keep up, the dispatcher
waits for a free slot, and records not yet sent stay unread in the input (plus a few batches
in the reader's bounded queue) instead of piling up in memory. They keep their due times: as
soon as a slot frees they go out back to back, and their latency includes the wait. The
shortfall is reported instead of hidden: `lag_s` (how late the next record to send is) and
`backlog` (records due but not sent) in every `progress` event, a `behind_schedule` event
when the lag passes `behind_warning_s`, and `achieved_rate` against the schedule in
`run_finished.pacing`. Memory is bounded by the concurrency, whatever the schedule asks; the
price is that a run that cannot keep up sends fewer requests than its schedule, and says so.

Recorded timing (`--speed`) replays the gaps between the records' `ts` values, divided by the
speed and capped at `max_wait_s`. A record without `ts` starts right after the one before; a
`ts` earlier than the previous one (a second log, or an out-of-order capture) starts at once
and the timeline continues from it. `--loop` restarts the timeline at each pass.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from shadow.config.replay import RateSpec


class Pacer(Protocol):
    """A schedule; `due` is called once per record, in order, and returns its start offset
    in seconds from the start of the replay (None: as soon as allowed)."""

    mode: str

    def due(self, ts: float | None) -> float | None: ...

    def new_pass(self) -> None: ...

    def due_by(self, elapsed_s: float) -> int | None:
        """How many records are due by `elapsed_s` (None when the schedule cannot say)."""
        ...

    def rate_at(self, elapsed_s: float) -> float | None:
        """The scheduled rate at `elapsed_s`, records per second (None: not a rate schedule)."""
        ...


class Unpaced:
    mode = "none"

    def due(self, ts: float | None) -> float | None:
        return None

    def new_pass(self) -> None:
        pass

    def due_by(self, elapsed_s: float) -> int | None:
        return None

    def rate_at(self, elapsed_s: float) -> float | None:
        return None


class RatePacer:
    """Record n is due when the integral of the rate reaches n; a constant rate is a ramp
    of zero length. Offsets are computed from n, so no rounding error accumulates."""

    def __init__(self, spec: RateSpec) -> None:
        self.spec = spec
        self.mode = "rate" if spec.ramp_s == 0 else "ramp"
        self._n = 0
        self._slope = (spec.end - spec.start) / spec.ramp_s if spec.ramp_s else 0.0
        self._ramp_count = spec.ramp_s * (spec.start + spec.end) / 2  # records due in the ramp

    def due(self, ts: float | None) -> float:
        offset = self.offset_of(self._n)
        self._n += 1
        return offset

    def new_pass(self) -> None:
        pass  # the schedule runs on across passes

    def offset_of(self, n: int) -> float:
        spec = self.spec
        if n <= 0:
            return 0.0
        if spec.ramp_s and n < self._ramp_count:
            # n = a t + k t^2 / 2, solved for t in the form without cancellation
            return 2 * n / (spec.start + math.sqrt(spec.start**2 + 2 * self._slope * n))
        return spec.ramp_s + (n - self._ramp_count) / spec.end

    def due_by(self, elapsed_s: float) -> int | None:
        spec = self.spec
        if elapsed_s < 0:
            return 0
        if elapsed_s < spec.ramp_s:
            count = spec.start * elapsed_s + self._slope * elapsed_s**2 / 2
        else:
            count = self._ramp_count + (elapsed_s - spec.ramp_s) * spec.end
        return math.floor(count + 1e-9) + 1  # record 0 is due at 0

    def rate_at(self, elapsed_s: float) -> float | None:
        spec = self.spec
        if elapsed_s >= spec.ramp_s:
            return spec.end
        return spec.start + self._slope * max(0.0, elapsed_s)


class RecordedPacer:
    """The recorded gaps between `ts` values, divided by `speed`, each capped at `max_wait_s`."""

    mode = "recorded"

    def __init__(self, speed: float, max_wait_s: float) -> None:
        if speed <= 0 or max_wait_s <= 0:
            raise ValueError("speed and max wait must be above 0")
        self.speed = speed
        self.max_wait_s = max_wait_s
        self._offset = 0.0
        self._last_ts: float | None = None

    def due(self, ts: float | None) -> float:
        if ts is not None:
            if self._last_ts is not None and ts > self._last_ts:
                self._offset += min((ts - self._last_ts) / self.speed, self.max_wait_s)
            self._last_ts = ts
        return self._offset

    def new_pass(self) -> None:
        self._last_ts = None  # the next pass starts right after this one ended

    def due_by(self, elapsed_s: float) -> int | None:
        return None

    def rate_at(self, elapsed_s: float) -> float | None:
        return None


def make_pacer(rate: RateSpec | None, speed: float | None, max_wait_s: float) -> Pacer:
    if rate is not None:
        return RatePacer(rate)
    if speed is not None:
        return RecordedPacer(speed, max_wait_s)
    return Unpaced()


class Dispatch:
    """Where the dispatcher stands against its schedule: records sent, how late, how far behind.

    Times are `time.perf_counter()` values; `begin` fixes the schedule's origin.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.started = time.perf_counter()
        self.sent = 0
        self.passes = 0
        self.max_lag_s = 0.0
        self.ended: float | None = None  # when intake stopped
        self._holding: float | None = None  # due time of the record waiting to be admitted

    def begin(self) -> None:
        self.started = time.perf_counter()

    def end(self) -> None:
        if self.ended is None:
            self.ended = time.perf_counter()

    def due(self, ts: float | None) -> float | None:
        """The next record's due time, or None when unpaced."""
        offset = self.pacer.due(ts)
        return None if offset is None else self.started + offset

    def hold(self, due: float | None) -> None:
        self._holding = due

    def admitted(self) -> None:
        if self._holding is not None:
            self.max_lag_s = max(self.max_lag_s, time.perf_counter() - self._holding)
            self._holding = None
        self.sent += 1

    def elapsed_s(self, now: float | None = None) -> float:
        return (time.perf_counter() if now is None else now) - self.started

    def backlog(self, now: float | None = None) -> int | None:
        """Records due by now and not sent yet; None when the schedule cannot count them."""
        due = self.pacer.due_by(self.elapsed_s(now))
        return None if due is None else max(0, due - self.sent)

    def lag_s(self, now: float | None = None) -> float:
        """How late the next record to send is (0 when on schedule)."""
        now = time.perf_counter() if now is None else now
        lag = now - self._holding if self._holding is not None else 0.0
        if isinstance(self.pacer, RatePacer):
            lag = max(lag, self.elapsed_s(now) - self.pacer.offset_of(self.sent))
        return max(0.0, lag)

    def target_rate(self, now: float | None = None) -> float | None:
        return self.pacer.rate_at(self.elapsed_s(now))

    def summary(self) -> dict[str, object]:
        """Pace over the intake: from the first record due to the moment intake stopped."""
        now = self.ended if self.ended is not None else time.perf_counter()
        elapsed = self.elapsed_s(now)
        return {
            "mode": self.pacer.mode,
            "sent": self.sent,
            "passes": self.passes,
            "elapsed_s": round(elapsed, 3),
            "achieved_rate": round(self.sent / elapsed, 2) if elapsed > 0 else 0.0,
            "target_rate": self.target_rate(now),
            "max_lag_s": round(self.max_lag_s, 3),
        }
