"""What every run does around its replay, in one order, whoever replays (one process or a fleet).

    signals captured -> run_started -> HTTP session -> servers up (racing a signal) ->
    the job's replay -> servers down -> verdict -> run_finished -> exit code

The job (shadow.run.single for one process, shadow.run.fleet for `--workers`) replays; the
lifecycle owns the rest, so the two cannot drift apart: the run id, the run dir rule, the
events output, starting the servers so that a signal does not wait for a slow health check,
stopping them before `run_finished` is written on every path, and the exit code. A managed
server that fails to start or dies ends the run with exit code 3; a usage, config or output
problem with 2; events that could not all be written never let a run pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp

from shadow.config.settings import RunSettings
from shadow.errors import OutputError, ShadowError, TargetError, UsageError
from shadow.events.sink import Sink
from shadow.model import SIDES
from shadow.run.secrets import run_scrubber
from shadow.run.stop import Stop, capture_signals
from shadow.run.tally import Tally
from shadow.servers.supervisor import Supervisor
from shadow.stdio import Console

LOG_TAIL_LINES = 10  # of a server that failed, on stderr


class Job(Protocol):
    """The replaying part of a run."""

    scope: str  # how the stderr summary names who replayed ("" or " over N workers")

    async def replay(self, supervisor: Supervisor, session: aiohttp.ClientSession) -> None:
        """Replay until done or stopped; every admitted record accounted for on return."""
        ...

    def collect(self) -> None:
        """After the servers are down: gather counts kept elsewhere into the tally."""
        ...

    def verdict(self) -> int:
        """The exit code the counts give (when no server failed)."""
        ...

    def conclude(self, exit_code: int) -> int:
        """Last words before `run_finished` (the learned noise file); the final exit code."""
        ...

    def finished_fields(self) -> dict[str, Any]:
        """`pacing`, `calibration` and `interrupted` for `run_finished`, and extra fields."""
        ...


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


def client_session() -> aiohttp.ClientSession:
    """The run's one HTTP client: no overall timeout (each request sets its own), no pool limit
    (the replay bounds concurrency), answers decoded, no User-Agent of its own."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    )


class Lifecycle:
    """One run's identity, events, stop state, counts and servers, and the order they go in."""

    def __init__(self, settings: RunSettings, console: Console, stream: IO[bytes] | None) -> None:
        self.settings = settings
        self.config = settings.config
        self.console = console
        self.stop = Stop()
        self.run_id = uuid.uuid4().hex[:12]
        # The one holder of the run's secret values: events, stderr and server logs use it.
        self.scrubber = run_scrubber(self.config)
        console.scrub = self.scrubber.text
        self.sink = Sink(self.run_id, stream, on_closed=self.events_closed, scrubber=self.scrubber)
        self.tally = Tally([s for s in (*SIDES, "secondary") if s in self.config.targets])
        self.started = time.monotonic()
        self.supervisor: Supervisor | None = None
        self._write_error_reported = False

    @property
    def run_dir(self) -> Path:
        """`--run-dir`, else the config's `run_dir`, else `shadow-runs/<run_id>`."""
        settings = self.settings
        return Path(settings.run_dir or self.config.run_dir or Path("shadow-runs") / self.run_id)

    async def execute(self, job: Job) -> int:
        """The whole run; returns the exit code. `run_finished` is always the last event."""
        exit_code = 0
        with capture_signals(self.stop):
            try:
                self._started()
                async with client_session() as session:
                    exit_code = await self._with_servers(session, job)
            except ShadowError as exc:
                self.console.error(str(exc))
                if isinstance(exc, TargetError):
                    for line in exc.log_tail[-LOG_TAIL_LINES:]:
                        self.console.error(f"  | {line}")
                exit_code = exc.exit_code
        job.collect()
        exit_code = job.conclude(exit_code or job.verdict())
        if exit_code == 1:
            for reason in self.tally.failures(self.config.thresholds):
                self.console.info(f"exit 1: {reason}")
        return self._finished(exit_code, job)

    def _started(self) -> None:
        settings = self.settings
        self.sink.run_started(
            {name: (t.url, t.managed) for name, t in self.config.targets.items()},
            settings.source_names(),
            settings.describe(),
            os.getpid(),
        )
        if self.sink.write_error is not None:
            self._write_error_reported = True
            raise OutputError(self.write_error_message())

    async def _with_servers(self, session: aiohttp.ClientSession, job: Job) -> int:
        """Servers up, the job's replay, servers down; the exit code a server failure gives
        (0 when none did)."""
        supervisor = Supervisor(
            self.config.targets, self.run_dir, self.sink, session, self.scrubber.keeper_mask
        )
        if not await self._start(supervisor):
            return 0
        try:
            self.supervisor = supervisor
            if not self.stop.requested.is_set():
                await job.replay(supervisor, session)
        finally:
            await supervisor.aclose()
        if supervisor.failure is not None:
            self.console.error(str(supervisor.failure))
            return supervisor.failure.exit_code
        return 0

    async def _start(self, supervisor: Supervisor) -> bool:
        """Start the servers; False when a signal came first (what had started is stopped).

        A server can take minutes to become healthy (`cargo run --release`): a signal must not
        wait for its health deadline.
        """
        starting = asyncio.create_task(supervisor.start())
        stopped = asyncio.create_task(self.stop.requested.wait())
        try:
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not starting.done():
                starting.cancel()  # start() stops the servers it started before it ends
            await asyncio.gather(starting, stopped, return_exceptions=True)
        if starting.cancelled():
            self.console.info(f"stopped ({self.stop.reason}) while the servers were starting")
            return False
        starting.result()  # a start failure is raised here
        return True

    def events_closed(self) -> None:
        """The sink can write no more events: stop as if interrupted."""
        error = self.sink.write_error
        self.stop.request("stdout closed" if error is None else "events cannot be written")

    def write_error_message(self) -> str:
        error = self.sink.write_error
        assert error is not None
        where = self.settings.output or "stdout"
        return f"cannot write events to {where}: {error.strerror or error}"

    def _finished(self, exit_code: int, job: Job) -> int:
        summary = self.tally.summary()
        fields = job.finished_fields()
        pacing, calibration = fields.pop("pacing"), fields.pop("calibration")
        interrupted = bool(fields.pop("interrupted")) or self.stop.requested.is_set()
        supervisor = self.supervisor
        self.sink.run_finished(
            summary,
            duration_s=time.monotonic() - self.started,
            pacing=pacing,
            restarts=supervisor.restarts.summary() if supervisor is not None else {},
            calibration=calibration,
            interrupted=interrupted,
            exit_code=exit_code,
            **fields,
        )
        if self.sink.write_error is not None and not self._write_error_reported:
            # Events were lost: whatever the counts say, the run cannot pass.
            self.console.error(f"{self.write_error_message()}; the run was stopped")
            exit_code = max(exit_code, 1)
        self.console.info(
            f"{summary['requests']} requests{job.scope}: {summary['matched']} matched, "
            f"{summary['mismatched']} mismatched, {summary['errors']} errors, "
            f"{summary['input_errors']} input errors; exit {exit_code}"
        )
        return exit_code
