"""Progress of a long run: periodic samples of counts, pace, latency and server resources.

A sample costs a scan of the process table (to find each managed server's process group) and
a percentile pass over small histograms, so it is taken every `progress_interval_s` seconds;
the cheap checks (behind schedule, the live view) run on a shorter tick. Server RSS and CPU
are summed over the whole process group: `cargo run` and `manage.py runserver` serve from a
child of the process shadow started. CPU is in percent of one core since the previous sample.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Callable, Mapping

import psutil

from shadow.model import Behind, Exchange, Failure, Response, Sample, Usage
from shadow.replay.pacing import Dispatch
from shadow.run.tally import Tally

TICK_S = 0.5


def own_cpu_s() -> float:
    """User plus system CPU seconds of this process so far (its threads included, not its
    children: the servers it started are not shadow's cost)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


class UsageSampler:
    """RSS and CPU of a changing set of processes; keeps psutil handles for CPU deltas."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, leader: int | None, pids: list[int]) -> Usage:
        kept: dict[int, psutil.Process] = {}
        rss, cpu = 0, 0.0
        for pid in pids:
            try:
                proc = self._procs.get(pid) or psutil.Process(pid)
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    cpu += proc.cpu_percent(None)  # 0.0 the first time a process is seen
            except psutil.Error:
                continue  # ended between the listing and the look-up
            kept[pid] = proc
        self._procs = kept
        return Usage(leader, len(kept), rss, round(cpu, 1))


class Progress:
    """Takes samples of a running replay."""

    def __init__(
        self,
        tally: Tally,
        dispatch: Dispatch,
        in_flight: Callable[[], int],
        groups: Callable[[], Mapping[str, tuple[int | None, list[int]]]],
        behind_warning_s: float,
    ) -> None:
        self.tally = tally
        self.dispatch = dispatch
        self.in_flight = in_flight
        self.groups = groups
        self.behind_warning_s = behind_warning_s
        self._samplers: dict[str, UsageSampler] = {}
        self._own = UsageSampler()
        self._last = (time.perf_counter(), 0)
        self._behind = False

    def sample(self) -> Sample:
        now = time.perf_counter()
        dispatch, tally = self.dispatch, self.tally
        last_time, last_sent = self._last
        self._last = (now, dispatch.sent)
        servers = {}
        for name, (leader, pids) in self.groups().items():
            sampler = self._samplers.setdefault(name, UsageSampler())
            servers[name] = sampler.sample(leader, pids)
        pid = os.getpid()
        return Sample(
            elapsed_s=dispatch.elapsed_s(now),
            sent=dispatch.sent,
            counts={
                "requests": tally.requests,
                "matched": tally.matched,
                "mismatched": tally.mismatched,
                "errors": tally.errors,
                "warmup": tally.warmup["requests"],
            },
            rate=(dispatch.sent - last_sent) / (now - last_time) if now > last_time else 0.0,
            target_rate=dispatch.target_rate(now),
            backlog=dispatch.backlog(now),
            lag_s=dispatch.lag_s(now),
            in_flight=self.in_flight(),
            latency_ms=tally.take_interval_latency(),
            servers=servers,
            shadow=self._own.sample(pid, [pid]),
            statuses={target: dict(counts) for target, counts in tally.statuses.items()},
        )

    def behind(self) -> Behind | None:
        """A Behind when the lag first passes the warning level; again only after the run
        has caught up to half of it (so a run hovering at the level does not flood)."""
        if self.behind_warning_s <= 0:
            return None
        lag = self.dispatch.lag_s()
        if self._behind:
            self._behind = lag > self.behind_warning_s / 2
            return None
        if lag <= self.behind_warning_s:
            return None
        self._behind = True
        dispatch = self.dispatch
        return Behind(lag, dispatch.backlog(), dispatch.target_rate(), self.in_flight())


async def watch(
    progress: Progress,
    interval_s: float,
    on_sample: Callable[[Sample], None],
    on_behind: Callable[[Behind], None],
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Until cancelled: a sample every `interval_s` (0: never), checks and refreshes every tick."""
    loop = asyncio.get_running_loop()
    next_sample = loop.time() + interval_s
    while True:
        await asyncio.sleep(TICK_S)
        if (behind := progress.behind()) is not None:
            on_behind(behind)
        if on_tick is not None:
            on_tick()
        if interval_s > 0 and loop.time() >= next_sample:
            while next_sample <= loop.time():
                next_sample += interval_s
            on_sample(progress.sample())


class TimeoutStreaks:
    """Timeouts in a row per target; says when a target reaches `after` of them (once, until
    it answers again)."""

    def __init__(self, after: int) -> None:
        self.after = after
        self._streaks: dict[str, int] = {}

    def observe(self, exchange: Exchange) -> list[tuple[str, int]]:
        """The targets that just became unresponsive, with their streak."""
        tripped = []
        for side, outcome in exchange.outcomes.items():
            if isinstance(outcome, Failure) and outcome.kind == "timeout":
                streak = self._streaks.get(side, 0) + 1
                self._streaks[side] = streak
                if streak == self.after:
                    tripped.append((side, streak))
            elif isinstance(outcome, Response):
                self._streaks[side] = 0
        return tripped
