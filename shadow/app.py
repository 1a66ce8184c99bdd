"""The one place that knows the order of a run: servers up, replay, compare, summary, teardown.

Stopping follows uvicorn's shape: signal handlers only flip state. The first SIGINT, SIGTERM or
SIGHUP (or a reader closing stdout) stops intake; records already admitted finish under a
drain deadline; a second signal, the deadline, or a managed server dying cancels what is
left. Whatever was admitted and did not finish is reported as an `error` (`cancelled`), so
`requests == matched + mismatched + errors` holds on every path, and the servers are stopped
before `run_finished` is written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from shadow import compare
from shadow.auth import Authenticator, AuthError
from shadow.config import Config
from shadow.errors import ShadowError, TargetError, UsageError
from shadow.model import SIDES, Exchange, Failure, Record, Response
from shadow.replay import Prepared, Replayer
from shadow.routes import Router
from shadow.sink import SCHEMA_VERSION, Console, Sink
from shadow.sources import InputProblem, Item, iter_inputs, validate_inputs
from shadow.supervisor import Supervisor
from shadow.tally import Tally

ALWAYS_REDACTED = frozenset(
    ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")
)
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_BATCH = 256


@dataclass(frozen=True, slots=True)
class RunSettings:
    config: Config
    inputs: list[str]
    emit: str = "mismatches"
    output: str | None = None
    run_dir: str | None = None
    limit: int | None = None
    rate: float = 0.0
    drain_s: float | None = None


class _Stop:
    """State flipped by signals and a closed stdout; the run reads it."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.forced = asyncio.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        if self.requested.is_set():
            self.forced.set()
            return
        self.reason = reason
        self.requested.set()


def _read_in_thread(
    items: Iterator[Item], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[list[Item] | None]
) -> None:
    # A daemon thread rather than the default executor: a read blocked on a quiet stdin must
    # not keep the process alive after the run has ended.
    def put(batch: list[Item] | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(batch), loop).result()

    batch: list[Item] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= _BATCH:
                put(batch)
                batch = []
        put(batch)
        put(None)
    except (RuntimeError, concurrent.futures.CancelledError):
        return  # the run ended (and its loop closed) before the inputs did


class Run:
    def __init__(self, settings: RunSettings, console: Console, stream: IO[bytes] | None) -> None:
        self.settings = settings
        self.config = settings.config
        self.console = console
        self.stop = _Stop()
        self.run_id = uuid.uuid4().hex[:12]
        self.sink = Sink(self.run_id, stream, on_closed=lambda: self.stop.request("stdout closed"))
        self.auth = Authenticator(self.config)
        self.router = Router(self.config)
        self.redact = ALWAYS_REDACTED | self.auth.header_names
        sides = [s for s in (*SIDES, "secondary") if s in self.config.targets]
        self.tally = Tally(sides)
        self.started = time.monotonic()
        self.replayer: Replayer | None = None

    async def records(self) -> AsyncIterator[tuple[int, Record, float | None]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Item] | None] = asyncio.Queue(maxsize=4)
        items = iter_inputs(self.settings.inputs, self.config.replay.max_record_bytes)
        threading.Thread(target=_read_in_thread, args=(items, loop, queue), daemon=True).start()
        seq = 0
        limit = self.settings.limit
        rate = self.settings.rate
        start = time.perf_counter()
        methods = self.config.replay.methods
        while (batch := await queue.get()) is not None:
            for item in batch:
                if self.stop.requested.is_set() or (limit is not None and seq >= limit):
                    return
                if isinstance(item, InputProblem):
                    self.tally.input_errors += 1
                    self.sink.input_error(item.source, item.line, item.message)
                    continue
                if methods and item.method not in methods:
                    self.tally.skipped += 1
                    continue
                intended = None
                if rate > 0:
                    intended = start + seq / rate
                    await asyncio.sleep(max(0.0, intended - time.perf_counter()))
                yield seq, item, intended
                seq += 1

    def prepare(self, record: Record) -> Prepared:
        route = self.router.route(record)
        profile = record.auth or route.auth
        if not profile:
            return Prepared(route.endpoint, route.rules, ())
        try:
            return Prepared(route.endpoint, route.rules, (self.auth.headers(profile, record),))
        except AuthError as exc:
            return Prepared(route.endpoint, route.rules, (), Failure("auth", str(exc)))

    def finish(self, exchange: Exchange) -> None:
        primary = exchange.outcomes.get("primary")
        candidate = exchange.outcomes.get("candidate")
        if isinstance(primary, Response) and isinstance(candidate, Response):
            exchange.diffs = compare.diff_responses(primary, candidate, exchange.rules)
        outcome = self.tally.add(exchange)
        if outcome != "match" or self.settings.emit == "all":
            self.sink.exchange(exchange, outcome, self.redact)

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
        return self.emit_finished(exit_code)

    async def _with_servers(self, session: aiohttp.ClientSession) -> int:
        run_dir = Path(
            self.settings.run_dir or self.config.run_dir or Path("shadow-runs") / self.run_id
        )
        async with Supervisor(self.config.targets, run_dir, self.sink, session) as supervisor:
            if self.stop.requested.is_set():
                return self.tally.exit_code(self.config.thresholds)
            self.replayer = Replayer(
                session, supervisor.targets, self.config.replay, self.prepare, self.finish
            )
            await self._replay(self.replayer, supervisor)
            if supervisor.failure is not None:
                self.console.error(str(supervisor.failure))
                return supervisor.failure.exit_code
        return self.tally.exit_code(self.config.thresholds)

    async def _replay(self, replayer: Replayer, supervisor: Supervisor) -> None:
        task = asyncio.create_task(replayer.run(self.records()))
        watchers = {
            asyncio.create_task(self.stop.requested.wait()),
            asyncio.create_task(supervisor.failed.wait()),
        }
        try:
            await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and self.stop.requested.is_set() and not supervisor.failed.is_set():
                self.console.info(f"stopping ({self.stop.reason}): finishing requests in flight")
                await self._drain(task, supervisor)
        finally:
            for watcher in watchers:
                watcher.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, *watchers, return_exceptions=True)
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            self._account_unfinished(replayer, supervisor)

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
        if supervisor.failure is not None:
            reason = f"not finished: {supervisor.failure}"
        elif self.stop.forced.is_set():
            reason = "cancelled by a second signal"
        else:
            reason = f"not finished when the run stopped ({self.stop.reason or 'cancelled'})"
        for seq, record in sorted(replayer.pending.items()):
            endpoint = self.router.route(record).endpoint
            self.tally.add_unfinished(endpoint)
            self.sink.unfinished(seq, record.to_dict(self.redact), endpoint, reason)
        self.console.warning(f"{len(replayer.pending)} request(s) did not finish: {reason}")
        replayer.pending.clear()

    def emit_started(self) -> None:
        replay = self.config.replay
        self.sink.emit(
            "run_started",
            schema=SCHEMA_VERSION,
            targets={
                name: {"url": t.url, "managed": t.managed}
                for name, t in self.config.targets.items()
            },
            sources=["<stdin>" if p == "-" else p for p in self.settings.inputs],
            settings={
                "concurrency": replay.concurrency,
                "timeout_s": replay.timeout_s,
                "rate": self.settings.rate,
                "limit": self.settings.limit,
                "emit": self.settings.emit,
                "lanes": replay.lane.source,
                "host_header": replay.host_header,
            },
            pid=os.getpid(),
        )

    def emit_finished(self, exit_code: int) -> int:
        summary = self.tally.summary()
        self.sink.emit(
            "run_finished",
            **summary,
            duration_s=round(time.monotonic() - self.started, 3),
            interrupted=self.stop.requested.is_set(),
            exit_code=exit_code,
        )
        self.console.info(
            f"{summary['requests']} requests: {summary['matched']} matched, "
            f"{summary['mismatched']} mismatched, {summary['errors']} errors, "
            f"{summary['input_errors']} input errors; exit {exit_code}"
        )
        return exit_code


def run(settings: RunSettings, console: Console) -> int:
    """Check the inputs, then run; the caller turns ShadowError into its exit code."""
    validate_inputs(settings.inputs)
    stream: IO[bytes] | None = None
    if settings.output:
        try:
            stream = open(settings.output, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"--output {settings.output}: {exc.strerror or exc}") from None
    try:
        shadow_run = Run(settings, console, stream)
        return _loop_run(shadow_run.execute())
    finally:
        if stream is not None:
            stream.close()


def _loop_run(coro: Any) -> int:
    import uvloop

    result: int = uvloop.run(coro)
    return result
