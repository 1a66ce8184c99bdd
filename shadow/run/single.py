"""A run replayed by this process: intake -> replayer -> pipeline, watched, and drained on a stop.

Stopping (the state is shadow.run.stop's): a signal or a closed stdout stops intake, and the
records already admitted finish under the drain deadline; a second signal, the deadline, or a
managed server dying cancels what is left. The end of `--duration` stops intake and drains
the same way, without counting as an interruption. When a managed server dies, what was in
flight gets a second to fail on its own (as errors with their side) before it is cancelled.
Whatever was admitted and did not finish is reported as an `error` (`cancelled`), so
`requests == matched + mismatched + errors` holds on every path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from shadow.errors import UsageError
from shadow.model import Exchange, InputProblem, Item, Record
from shadow.replay.intake import Intake
from shadow.replay.pacing import Dispatch, make_pacer
from shadow.replay.partition import Partition
from shadow.replay.pool import Replayer
from shadow.replay.transports import choose_transport, open_transport
from shadow.run.hooks import Hooks
from shadow.run.lifecycle import Lifecycle
from shadow.run.live import LiveView
from shadow.run.merge import shard_summary
from shadow.run.pipeline import Pipeline
from shadow.run.progress import Progress, watch
from shadow.run.reset import Resetter
from shadow.servers.supervisor import Supervisor
from shadow.sources import synth
from shadow.sources.opening import is_stream, iter_inputs, merge_by_ts

FAILED_GRACE_S = 1.0  # after a managed server died, for in-flight requests to fail on their own


def with_answers(items: Iterator[Item], methods: tuple[str, ...] = ()) -> Iterator[Item]:
    """`--recorded`: a record the capture holds no answer for is an input error naming it
    (counted, never sent: there is nothing to compare the candidate's answer with). One of a
    method `[replay] methods` leaves out stays a record, for intake to count as skipped."""
    for item in items:
        if (
            isinstance(item, Record)
            and item.response is None
            and (not methods or item.method in methods)
        ):
            yield InputProblem(
                item.source,
                item.line,
                f"{item.method} {item.path[:200]}: "
                + (
                    f"its recorded answer cannot be used: {item.response_problem}"
                    if item.response_problem
                    else "no recorded answer to compare with"
                    " (--recorded needs the primary's answer in the capture)"
                ),
            )
        else:
            yield item


class SingleRun:
    """The job of a run (or of one shard of it) replayed in this process."""

    scope = ""

    def __init__(self, lifecycle: Lifecycle, hooks: Hooks | None = None) -> None:
        self.lifecycle = lifecycle
        self.hooks = hooks
        self.settings = settings = lifecycle.settings
        self.config = settings.config
        self.stop = lifecycle.stop
        self.console = lifecycle.console
        self.pipeline = Pipeline(
            self.config,
            lifecycle.sink,
            lifecycle.tally,
            lifecycle.console,
            emit=settings.emit,
            learning=settings.learn_noise is not None,
            recorded=settings.recorded,
            hooks=hooks,
        )
        self.dispatch = Dispatch(make_pacer(settings.rate, settings.speed, settings.max_wait_s))
        self.resetter: Resetter | None = None  # once the servers are up, when a target has one
        self.replayer: Replayer | None = None
        self.idle = asyncio.Event()  # no record in flight (a reset waits for it)

    def records(self) -> AsyncIterator[tuple[int, Record, float | None]]:
        """The records to replay with their due times; each input pass again with --loop."""
        settings = self.settings
        partition = Partition(settings.shard, self.config.replay.lane) if settings.shard else None
        return Intake(
            self.open_items,
            self.dispatch,
            self.stop.closing,
            limit=settings.limit,
            loop=settings.loop,
            methods=self.config.replay.methods,
            on_problem=self._input_problem,
            on_skipped=self._skipped,
            on_dispatch=self.pipeline.note_dispatch,
            keep=partition.owns if partition is not None else None,
            streaming=settings.synth is None and any(map(is_stream, settings.inputs)),
            duration_s=settings.duration_s,
            before_pass=self._before_pass if self.resetter else None,
        ).records()

    def _finish(self, exchange: Exchange) -> None:
        self.pipeline.finish(exchange)
        if self.replayer is not None and not self.replayer.pending:
            self.idle.set()

    async def _before_pass(self, number: int) -> None:
        """Reset the targets before a pass, once the last pass's records have all finished
        (a reset under a request in flight would change the answer it gets)."""
        assert self.resetter is not None and self.replayer is not None
        paused = time.perf_counter()
        while self.replayer.pending and not self.stop.closing.is_set():
            self.idle.clear()
            idle = asyncio.create_task(self.idle.wait())
            closing = asyncio.create_task(self.stop.closing.wait())
            await asyncio.wait({idle, closing}, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            closing.cancel()
        if not self.stop.closing.is_set():
            await self.resetter.reset_all()
            if self.pipeline.correlator is not None:
                self.pipeline.correlator.forget()  # the targets start again: so do the lanes
        # The schedule resumes where it stopped: records are not late by the reset's time.
        self.dispatch.started += time.perf_counter() - paused

    def _input_problem(self, problem: InputProblem) -> None:
        self.lifecycle.tally.input_errors += 1
        self.lifecycle.sink.input_error(problem.source, problem.line, problem.message)

    def _skipped(self, record: Record) -> None:
        self.lifecycle.tally.skipped += 1  # a method `[replay] methods` leaves out

    def open_items(self) -> Iterator[Item]:
        """One pass over the input: the logs, or `--synth N` records made from `[synth]`."""
        settings, synth_config = self.settings, self.config.synth
        if settings.synth is not None and synth_config is not None:
            seed = settings.seed_used
            assert seed is not None
            return synth.generate(synth_config, seed, settings.synth)
        # With the recorded timing, several logs are one timeline: merged in `ts` order.
        read = merge_by_ts if settings.speed is not None else iter_inputs
        max_bytes, recorded = self.config.replay.max_record_bytes, settings.recorded
        items = read(settings.inputs, max_bytes, settings.input_format, recorded)
        return with_answers(items, self.config.replay.methods) if recorded else items

    async def replay(self, supervisor: Supervisor, session: aiohttp.ClientSession) -> None:
        self.pipeline.servers = supervisor
        pipeline = self.pipeline
        transport = open_transport(
            choose_transport(self.settings.transport_requested, self.config.targets),
            session,
            self.config.replay,
        )
        self.resetter = Resetter(supervisor.targets, session, self.lifecycle.sink) or None
        hooks = self.hooks
        self.replayer = replayer = Replayer(
            transport,
            supervisor.targets,
            self.config.replay,
            pipeline.prepare,
            self._finish,
            before_send=hooks.sender({n: t.url for n, t in supervisor.targets.items()})
            if hooks is not None and hooks.prepare_request is not None
            else None,
        )
        self.dispatch.begin()
        task = asyncio.create_task(replayer.run(self.records()))
        watchers: set[asyncio.Task[Any]] = {
            asyncio.create_task(self.stop.closing.wait()),
            asyncio.create_task(supervisor.failed.wait()),
        }
        if self.settings.duration_s is not None:
            watchers.add(asyncio.create_task(self._end_after(self.settings.duration_s)))
        live = self._live_view()
        monitor = asyncio.create_task(self._monitor(replayer, supervisor, live))
        try:
            await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
            await self._wind_down(task, supervisor)
        finally:
            monitor.cancel()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
            if live is not None:
                live.stop()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, *watchers, return_exceptions=True)
            await transport.aclose()
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            self._account_unfinished(replayer, supervisor)

    async def _wind_down(self, task: asyncio.Task[None], supervisor: Supervisor) -> None:
        """The replay was asked to end before it did: drain it, or let it fail fast."""
        if task.done():
            return
        if self.stop.closing.is_set() and not supervisor.failed.is_set():
            self.console.info(f"stopping ({self.stop.reason}): finishing requests in flight")
            await self._drain(task, supervisor)
        elif supervisor.failed.is_set():
            # Requests to the dead server fail at once: let them land as the errors they
            # are (with their side) rather than as `cancelled`.
            self.stop.close("a server exited")
            await asyncio.wait({task}, timeout=FAILED_GRACE_S)

    def _live_view(self) -> LiveView | None:
        if not self.settings.live:
            return None
        settings = self.settings
        live = LiveView(self.lifecycle.tally, self.dispatch, settings.duration_s, settings.limit)
        live.start()
        return live

    async def _monitor(
        self, replayer: Replayer, supervisor: Supervisor, live: LiveView | None
    ) -> None:
        replay, sink = self.config.replay, self.lifecycle.sink
        progress = Progress(
            self.lifecycle.tally,
            self.dispatch,
            lambda: replayer.in_flight,
            supervisor.groups,
            replay.behind_warning_s,
        )
        await watch(
            progress,
            replay.progress_interval_s,
            sink.progress,
            lambda behind: sink.behind_schedule(behind, replay.behind_warning_s),
            live.refresh if live is not None else None,
        )

    async def _end_after(self, duration_s: float) -> None:
        await asyncio.sleep(duration_s)
        self.dispatch.end()  # intake ends now, even if the dispatcher is waiting for a slot
        self.stop.close("duration reached")

    async def _drain(self, task: asyncio.Task[None], supervisor: Supervisor) -> None:
        forced = asyncio.create_task(self.stop.forced.wait())
        failed = asyncio.create_task(supervisor.failed.wait())
        try:
            await asyncio.wait(
                {task, forced, failed},
                timeout=self.settings.drain_deadline_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            forced.cancel()
            failed.cancel()

    def _account_unfinished(self, replayer: Replayer, supervisor: Supervisor) -> None:
        if not replayer.pending:
            return
        side = "both"
        if supervisor.failure is not None:
            reason = f"not finished: {supervisor.failure}"
            side = supervisor.failure.target
        elif self.stop.forced.is_set():
            reason = "cancelled by a second signal"
        else:
            reason = f"not finished when the run stopped ({self.stop.reason or 'cancelled'})"
        self.pipeline.unfinished(replayer.pending, reason, side)
        self.console.warning(f"{len(replayer.pending)} request(s) did not finish: {reason}")
        replayer.pending.clear()

    def collect(self) -> None:
        pass  # every count is already in the lifecycle's tally

    def verdict(self) -> int:
        return self.lifecycle.tally.exit_code(self.config.thresholds)

    def conclude(self, exit_code: int) -> int:
        """Report refused noise rules on stderr; write the learned rules if asked to."""
        noise = self.pipeline.noise
        if noise is None:
            return exit_code
        for line in noise.refusals():
            self.console.warning(line)
        for line in noise.notes():
            self.console.warning(line)
        path = self.settings.learn_noise
        if path is None:
            return exit_code
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        try:
            Path(path).write_text(noise.render(self.lifecycle.run_id, stamp), encoding="utf-8")
        except OSError as exc:
            self.console.error(f"--learn-noise {path}: {exc.strerror or exc}")
            return UsageError.exit_code
        self.console.info(f"learned noise rules written to {path} (review them before use)")
        return exit_code

    def finished_fields(self) -> dict[str, Any]:
        noise = self.pipeline.noise
        return {
            "pacing": self.dispatch.summary(),
            "calibration": noise.summary() if noise is not None else None,
            "interrupted": False,
            **shard_summary(self.lifecycle.tally, self.settings.shard),
        }
