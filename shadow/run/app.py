"""The one place that knows the order of a run: servers up, replay, compare, summary, teardown.

Stopping follows uvicorn's shape: signal handlers only flip state. The first SIGINT, SIGTERM or
SIGHUP (or a reader closing stdout) stops intake; records already admitted finish under a
drain deadline; a second signal, the deadline, or a managed server dying cancels what is
left. The end of `--duration` stops intake and drains the same way, without counting as an
interruption; a managed server dying stops intake too, and what was in flight gets a second to
fail on its own (as errors with their side) before it is cancelled. Whatever was admitted and did not finish is reported as an `error` (`cancelled`), so
`requests == matched + mismatched + errors` holds on every path, and the servers are stopped
before `run_finished` is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp

from shadow.compare.diff import diff_responses
from shadow.compare.noise import calibrator
from shadow.config.settings import RunSettings
from shadow.errors import OutputError, ShadowError, TargetError, UsageError
from shadow.events.redact import ALWAYS_REDACTED, Redactor
from shadow.events.sink import SCHEMA_VERSION, Sink
from shadow.model import SIDES, Exchange, Failure, InputProblem, Item, Record, Response
from shadow.replay.auth import Authenticator, AuthError
from shadow.replay.intake import Intake
from shadow.replay.pacing import Dispatch, make_pacer
from shadow.replay.partition import Partition
from shadow.replay.pool import Prepared, Replayer
from shadow.replay.routes import Router
from shadow.run.live import LiveView
from shadow.run.merge import shard_summary
from shadow.run.progress import Progress, TimeoutStreaks, watch
from shadow.run.tally import Tally
from shadow.servers.supervisor import Supervisor
from shadow.sources import synth
from shadow.sources.opening import is_stream, iter_inputs, merge_by_ts, validate_inputs
from shadow.stdio import Console

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_FAILED_GRACE_S = 1.0  # after a managed server died, for in-flight requests to fail on their own


class _Stop:
    """State flipped by signals and a closed stdout; the run reads it."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.forced = asyncio.Event()
        self.closing = asyncio.Event()  # intake stops: on request, or when the duration ends
        self.reason = ""

    def request(self, reason: str) -> None:
        if self.requested.is_set():
            self.forced.set()
            return
        self.close(reason)
        self.requested.set()

    def close(self, reason: str) -> None:
        if not self.closing.is_set():
            self.reason = reason
            self.closing.set()


class Run:
    def __init__(self, settings: RunSettings, console: Console, stream: IO[bytes] | None) -> None:
        self.settings = settings
        self.config = settings.config
        self.console = console
        self.stop = _Stop()
        self.run_id = uuid.uuid4().hex[:12]
        self.sink = Sink(self.run_id, stream, on_closed=self.events_closed)
        self.auth = Authenticator(self.config)
        self.router = Router(self.config)
        self.redact = Redactor(
            ALWAYS_REDACTED | self.auth.header_names | set(self.config.redact.headers),
            self.config.redact.paths,
        )
        self.write_error_reported = False
        sides = [s for s in (*SIDES, "secondary") if s in self.config.targets]
        self.tally = Tally(sides)
        self.started = time.monotonic()
        self.replayer: Replayer | None = None
        pacer = make_pacer(settings.rate, settings.speed, settings.max_wait_s)
        self.dispatch = Dispatch(pacer)
        self.supervisor: Supervisor | None = None
        self.warm: set[int] = set()  # seqs sent while a target warmed up, not yet finished
        self.streaks = TimeoutStreaks(self.config.replay.unresponsive_after)
        self.noise = calibrator(self.config, settings.learn_noise is not None)

    def records(self) -> AsyncIterator[tuple[int, Record, float | None]]:
        """The records to replay with their due times; each input pass again with --loop."""
        return Intake(
            self.open_items,
            self.dispatch,
            self.stop.closing,
            limit=self.settings.limit,
            loop=self.settings.loop,
            methods=self.config.replay.methods,
            on_problem=self.count_problem,
            on_skipped=self.count_skipped,
            on_dispatch=self.note_dispatch,
            keep=self.partition().owns if self.settings.shard is not None else None,
            streaming=self.settings.synth is None and any(map(is_stream, self.settings.inputs)),
            duration_s=self.settings.duration_s,
        ).records()

    def partition(self) -> Partition:
        assert self.settings.shard is not None
        return Partition(self.settings.shard, self.config.replay.lane)

    def count_problem(self, problem: InputProblem) -> None:
        self.tally.input_errors += 1
        self.sink.input_error(problem.source, problem.line, problem.message)

    def count_skipped(self, record: Record) -> None:
        self.tally.skipped += 1

    def note_dispatch(self, seq: int) -> None:
        if self.supervisor is not None and self.supervisor.warming():
            self.warm.add(seq)

    def open_items(self) -> Iterator[Item]:
        """One pass over the input: the logs, or `--synth N` records made from `[synth]`."""
        synth_config = self.config.synth
        if self.settings.synth is not None and synth_config is not None:
            seed = synth_config.seed if self.settings.seed is None else self.settings.seed
            return synth.generate(synth_config, seed, self.settings.synth)
        # With the recorded timing, several logs are one timeline: merged in `ts` order.
        read = merge_by_ts if self.settings.speed is not None else iter_inputs
        return read(
            self.settings.inputs, self.config.replay.max_record_bytes, self.settings.input_format
        )

    def prepare(self, record: Record) -> Prepared:
        route = self.router.route(record)
        reference = None
        if self.noise is not None:
            self.noise.note_route(route.endpoint, route.method, route.template)
            reference = self.noise.reference_for(record)
        try:
            credentials = self.auth.credentials(record, record.auth or route.auth)
            return Prepared(
                route.endpoint,
                route.rules,
                credentials.headers,
                drop=credentials.drop,
                reference=reference,
            )
        except AuthError as exc:
            return Prepared(route.endpoint, route.rules, (), Failure("auth", str(exc)))

    def finish(self, exchange: Exchange) -> None:
        primary = exchange.outcomes.get("primary")
        candidate = exchange.outcomes.get("candidate")
        if isinstance(primary, Response) and isinstance(candidate, Response):
            exchange.diffs = diff_responses(primary, candidate, exchange.rules)
        if self.observe(exchange):
            return
        if self.noise is not None:
            self.noise.judge(exchange)
        outcome = self.tally.add(exchange)
        if outcome != "match" or self.settings.emit == "all":
            show_noise = self.settings.emit == "all"
            auth = self.auth_header(exchange.record) if outcome != "match" else None
            self.sink.exchange(exchange, outcome, self.redact, show_noise, auth)

    def auth_header(self, record: Record) -> str | None:
        """The header an auth profile adds to `record`: a placeholder in its `curl`."""
        profile = self.config.auth.get(record.auth or self.router.route(record).auth or "")
        return profile.header if profile is not None else None

    def observe(self, exchange: Exchange) -> bool:
        """Watch for a hung target; True for a warm-up exchange (counted apart, no event)."""
        for target, timeouts in self.streaks.observe(exchange):
            self.sink.server_unresponsive(target, timeouts, self.config.replay.timeout_s)
            self.console.warning(f"{target}: {timeouts} requests in a row timed out")
        if exchange.seq in self.warm:
            self.warm.discard(exchange.seq)
            self.tally.add_warmup(exchange)
            return True
        return False

    def prepare_now(self, record: Record) -> Prepared:
        """`prepare`, and no sending to a target that is down while it restarts."""
        prepared = self.prepare(record)
        if self.supervisor is None or not self.supervisor.down:
            return prepared
        failure = Failure("server_down", "not sent: the target is restarting after it exited")
        return dataclasses.replace(prepared, down=dict.fromkeys(self.supervisor.down, failure))

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self.stop.request, signal.Signals(sig).name)

    def remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)

    async def execute(self) -> int:
        """The whole run; returns the exit code. `run_finished` is always the last event."""
        self.install_signals()
        exit_code = 0
        try:
            self.emit_started()
            if self.sink.write_error is not None:
                self.write_error_reported = True
                raise OutputError(self.write_error_message())
            timeout = aiohttp.ClientTimeout(total=None)
            connector = aiohttp.TCPConnector(limit=0, force_close=False)
            async with aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            ) as session:
                exit_code = await self._with_servers(session)
        except ShadowError as exc:
            self.console.error(str(exc))
            if isinstance(exc, TargetError):
                for line in exc.log_tail[-10:]:
                    self.console.error(f"  | {line}")
            exit_code = exc.exit_code
        finally:
            self.remove_signals()
        if self.noise is not None:
            exit_code = self.conclude_noise(exit_code)
        if exit_code == 1:
            for reason in self.tally.failures(self.config.thresholds):
                self.console.info(f"exit 1: {reason}")
        return self.emit_finished(exit_code)

    def conclude_noise(self, exit_code: int) -> int:
        """Report refused noise rules on stderr; write the learned rules if asked to."""
        assert self.noise is not None
        for line in self.noise.refusals():
            self.console.warning(line)
        path = self.settings.learn_noise
        if path is None:
            return exit_code
        try:
            Path(path).write_text(self.noise.render(self.run_id), encoding="utf-8")
        except OSError as exc:
            self.console.error(f"--learn-noise {path}: {exc.strerror or exc}")
            return UsageError.exit_code
        self.console.info(f"learned noise rules written to {path} (review them before use)")
        return exit_code

    async def _with_servers(self, session: aiohttp.ClientSession) -> int:
        run_dir = Path(
            self.settings.run_dir or self.config.run_dir or Path("shadow-runs") / self.run_id
        )
        supervisor = Supervisor(self.config.targets, run_dir, self.sink, session)
        if not await self._start(supervisor):
            return self.tally.exit_code(self.config.thresholds)
        try:
            if self.stop.requested.is_set():
                return self.tally.exit_code(self.config.thresholds)
            self.supervisor = supervisor
            self.replayer = Replayer(
                session, supervisor.targets, self.config.replay, self.prepare_now, self.finish
            )
            await self._replay(self.replayer, supervisor)
        finally:
            await supervisor.__aexit__(None, None, None)
        if supervisor.failure is not None:
            self.console.error(str(supervisor.failure))
            return supervisor.failure.exit_code
        return self.tally.exit_code(self.config.thresholds)

    async def _start(self, supervisor: Supervisor) -> bool:
        """Start the servers; False when a signal came first (what had started is stopped).

        A server can take minutes to become healthy (`cargo run --release`): a signal must not
        wait for its health deadline.
        """
        starting = asyncio.create_task(supervisor.__aenter__())
        stopped = asyncio.create_task(self.stop.requested.wait())
        try:
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not starting.done():
                starting.cancel()  # __aenter__ stops the servers it started before it ends
            await asyncio.gather(starting, stopped, return_exceptions=True)
        if starting.cancelled():
            self.console.info(f"stopped ({self.stop.reason}) while the servers were starting")
            return False
        starting.result()  # a start failure is raised here
        return True

    async def _replay(self, replayer: Replayer, supervisor: Supervisor) -> None:
        self.dispatch.begin()
        task = asyncio.create_task(replayer.run(self.records()))
        watchers: set[asyncio.Task[Any]] = {
            asyncio.create_task(self.stop.closing.wait()),
            asyncio.create_task(supervisor.failed.wait()),
        }
        if self.settings.duration_s is not None:
            watchers.add(asyncio.create_task(self._end_after(self.settings.duration_s)))
        live = None
        if self.settings.live:
            live = LiveView(
                self.tally, self.dispatch, self.settings.duration_s, self.settings.limit
            )
            live.start()
        monitor = asyncio.create_task(self._monitor(replayer, supervisor, live))
        try:
            await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and self.stop.closing.is_set() and not supervisor.failed.is_set():
                self.console.info(f"stopping ({self.stop.reason}): finishing requests in flight")
                await self._drain(task, supervisor)
            elif not task.done() and supervisor.failed.is_set():
                # Requests to the dead server fail at once: let them land as the errors they
                # are (with their side) rather than as `cancelled`.
                self.stop.close("a server exited")
                await asyncio.wait({task}, timeout=_FAILED_GRACE_S)
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
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            self._account_unfinished(replayer, supervisor)

    async def _monitor(
        self, replayer: Replayer, supervisor: Supervisor, live: LiveView | None
    ) -> None:
        replay = self.config.replay
        progress = Progress(
            self.tally,
            self.dispatch,
            lambda: replayer.in_flight,
            supervisor.groups,
            replay.behind_warning_s,
        )
        await watch(
            progress,
            replay.progress_interval_s,
            self.sink.progress,
            lambda behind: self.sink.behind_schedule(behind, replay.behind_warning_s),
            live.refresh if live is not None else None,
        )

    async def _end_after(self, duration_s: float) -> None:
        await asyncio.sleep(duration_s)
        self.dispatch.end()  # intake ends now, even if the dispatcher is waiting for a slot
        self.stop.close("duration reached")

    async def _drain(self, task: asyncio.Task[None], supervisor: Supervisor) -> None:
        deadline = self.settings.drain_s
        if deadline is None:
            deadline = self.config.replay.timeout_s + 1.0
        forced = asyncio.create_task(self.stop.forced.wait())
        failed = asyncio.create_task(supervisor.failed.wait())
        try:
            await asyncio.wait(
                {task, forced, failed}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED
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
        for seq, record in sorted(replayer.pending.items()):
            self.warm.discard(seq)
            endpoint = self.router.route(record).endpoint
            self.tally.add_unfinished(endpoint)
            request, auth = self.redact.request(record), self.auth_header(record)
            self.sink.unfinished(seq, request, endpoint, reason, auth, side)
        self.console.warning(f"{len(replayer.pending)} request(s) did not finish: {reason}")
        replayer.pending.clear()

    def source_names(self) -> list[str]:
        if self.settings.synth is not None and self.config.synth is not None:
            seed = self.config.synth.seed if self.settings.seed is None else self.settings.seed
            return [f"synth:{self.settings.synth}@{seed}"]
        return ["<stdin>" if p == "-" else p for p in self.settings.inputs]

    def emit_started(self) -> None:
        replay = self.config.replay
        self.sink.emit(
            "run_started",
            schema=SCHEMA_VERSION,
            targets={
                name: {"url": t.url, "managed": t.managed}
                for name, t in self.config.targets.items()
            },
            sources=self.source_names(),
            settings={
                "concurrency": replay.concurrency,
                "timeout_s": replay.timeout_s,
                "rate": self.settings.rate.text if self.settings.rate else None,
                "speed": self.settings.speed,
                "max_wait_s": self.settings.max_wait_s if self.settings.speed else None,
                "loop": self.settings.loop,
                "duration_s": self.settings.duration_s,
                "progress_interval_s": replay.progress_interval_s,
                "limit": self.settings.limit,
                "emit": self.settings.emit,
                "lanes": replay.lane.source,
                "host_header": replay.host_header,
                "shard": self.settings.shard.text if self.settings.shard else None,
                "workers": self.settings.workers,
            },
            pid=os.getpid(),
        )

    def events_closed(self) -> None:
        """The sink can write no more events: stop as if interrupted."""
        error = self.sink.write_error
        self.stop.request("stdout closed" if error is None else "events cannot be written")

    def write_error_message(self) -> str:
        error = self.sink.write_error
        assert error is not None
        where = self.settings.output or "stdout"
        return f"cannot write events to {where}: {error.strerror or error}"

    def emit_finished(self, exit_code: int) -> int:
        summary = self.tally.summary()
        self.sink.emit(
            "run_finished",
            **summary,
            duration_s=round(time.monotonic() - self.started, 3),
            pacing=self.dispatch.summary(),
            restarts=self.supervisor.restarts.summary() if self.supervisor else {},
            calibration=self.noise.summary() if self.noise is not None else None,
            interrupted=self.stop.requested.is_set(),
            exit_code=exit_code,
            **shard_summary(self.tally, self.settings.shard),
        )
        if self.sink.write_error is not None and not self.write_error_reported:
            # Events were lost: whatever the counts say, the run cannot pass.
            self.console.error(f"{self.write_error_message()}; the run was stopped")
            exit_code = max(exit_code, 1)
        self.console.info(
            f"{summary['requests']} requests: {summary['matched']} matched, "
            f"{summary['mismatched']} mismatched, {summary['errors']} errors, "
            f"{summary['input_errors']} input errors; exit {exit_code}"
        )
        return exit_code


@contextlib.contextmanager
def events_output(path: str | None) -> Iterator[IO[bytes] | None]:
    """The `--output` file opened for events (None: stdout); a usage error if it cannot be."""
    if not path:
        yield None
        return
    try:
        stream = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None
    try:
        yield stream
    finally:
        with contextlib.suppress(OSError):  # a full disk fails the final flush too
            stream.close()


def run(settings: RunSettings, console: Console) -> int:
    """Check the inputs, then run; the caller turns ShadowError into its exit code."""
    if settings.loop and any(is_stream(path) for path in settings.inputs):
        raise UsageError("--loop cannot read stdin ('-') or a pipe twice: give log files")
    validate_inputs(settings.inputs, settings.input_format)
    with events_output(settings.output) as stream:
        return _loop_run(Run(settings, console, stream).execute())


def _loop_run(coro: Any) -> int:
    import uvloop

    result: int = uvloop.run(coro)
    return result
