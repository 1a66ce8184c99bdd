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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp
from multidict import CIMultiDict

from shadow.config.settings import RunSettings
from shadow.errors import OutputError, ShadowError, TargetError, UsageError
from shadow.events.sink import Sink
from shadow.events.terminal import TerminalView
from shadow.model import SIDES, statuses_text
from shadow.replay.transports import choose_transport
from shadow.run.collector import replay_collector
from shadow.run.explain import Explainer
from shadow.run.progress import own_cpu_s
from shadow.run.secrets import run_scrubber
from shadow.run.stop import Stop, capture_signals
from shadow.run.tally import Tally
from shadow.servers.supervisor import Supervisor
from shadow.stdio import Console, same_terminal

LOG_TAIL_LINES = 10  # of a server that failed, on stderr
EVENTS_FILE = "events.ndjson"  # in the run dir, when stdout is a person's terminal


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
    """The `--output` file opened for events (None or `-`: stdout); a usage error if it cannot
    be."""
    if not path or path == "-":
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


class _Request(aiohttp.ClientRequest):
    """aiohttp's request with no header of its own beyond the framing: none of its default
    `Accept`, `Accept-Encoding` and `User-Agent`, nor the `Content-Type:
    application/octet-stream` it gives a body recorded without a type. What goes out is the
    recorded headers, `Host` and `Content-Length` (and what a documented rule adds), without
    the per-request copy of the headers that `skip_auto_headers` costs."""

    # Read (never written) by aiohttp where it would add a body's type.
    _skip_auto_headers = CIMultiDict({"Content-Type": None})

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        return


def client_session() -> aiohttp.ClientSession:
    """The run's one HTTP client: no overall timeout (each request sets its own), no pool limit
    (the replay bounds concurrency), answers decoded, no User-Agent of its own, and no cookie
    jar: a `Set-Cookie` from one target must never reach the next request to either target,
    which goes out with the cookies its record holds and no other."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        request_class=_Request,
    )


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run_dir_of(settings: RunSettings, run_id: str) -> Path:
    """`--run-dir`, else the config's `run_dir`, else `shadow-runs/<run_id>`."""
    return Path(settings.run_dir or settings.config.run_dir or Path("shadow-runs") / run_id)


def events_path(settings: RunSettings, run_id: str) -> str | None:
    """Where the events go: `--output` (`-`: stdout), else RUN_DIR/events.ndjson when stdout is
    a person's terminal, else stdout (None). The run dir is made here for that file."""
    if settings.output is not None or not settings.terminal:
        return settings.output
    run_dir = run_dir_of(settings, run_id)
    try:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the servers' logs' dir
    except OSError as exc:
        raise OutputError(
            f"run dir {run_dir}: cannot write {run_dir / EVENTS_FILE}: {exc.strerror or exc} "
            "(give a writable --run-dir or run_dir)"
        ) from None
    return str(run_dir / EVENTS_FILE)


class Lifecycle:
    """One run's identity, events, stop state, counts and servers, and the order they go in.

    With a terminal on stdout (`settings.terminal`), a TerminalView prints each mismatch and
    error there for a person, and `headline(events_path)` (the text report's top, given by the
    command line) closes the run.
    """

    def __init__(
        self,
        settings: RunSettings,
        console: Console,
        stream: IO[bytes] | None,
        run_id: str | None = None,
        headline: Callable[[str], str] | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.config
        self.console = console
        self.stop = Stop()
        self.run_id = run_id or new_run_id()
        self.explainer = Explainer()
        self.view = TerminalView() if settings.terminal else None
        self.headline = headline
        # The one holder of the run's secret values: events, stderr and server logs use it.
        self.scrubber = run_scrubber(self.config)
        console.scrub = self.scrubber.text
        self.sink = Sink(
            self.run_id,
            stream,
            on_closed=self.events_closed,
            max_event_bytes=self.config.replay.max_event_bytes,
            watcher=self.watch,
            scrubber=self.scrubber,
        )
        # Under --recorded the primary answers from the capture: still a side of every count.
        sides = set(self.config.targets) | ({"primary"} if settings.recorded else set())
        self.tally = Tally([s for s in (*SIDES, "secondary") if s in sides])
        self.started = time.monotonic()
        self.supervisor: Supervisor | None = None
        self._write_error_reported = False

    @property
    def run_dir(self) -> Path:
        return run_dir_of(self.settings, self.run_id)

    @property
    def events_path(self) -> str | None:
        """The events file, when the events do not go to stdout."""
        output = self.settings.output
        if output == "-" or (output is None and not self.settings.terminal):
            return None
        return output or str(self.run_dir / EVENTS_FILE)

    def watch(self, event: str, fields: Mapping[str, Any]) -> None:
        """Each event written: into the stderr summary's explanations, and onto the terminal."""
        self.explainer.observe(event, fields)
        if self.view is not None:
            self.view.on_event(event, fields)

    async def execute(self, job: Job) -> int:
        """The whole run; returns the exit code. `run_finished` is always the last event."""
        exit_code = 0
        with capture_signals(self.stop):
            try:
                self._started()
                async with contextlib.AsyncExitStack() as stack:
                    if self.settings.metrics is not None:
                        from shadow.run.metrics import serving  # prometheus_client: only then

                        url = await stack.enter_async_context(
                            serving(self.settings.metrics, self.tally, lambda: self.supervisor)
                        )
                        self.console.info(f"metrics at {url}")
                    session = await stack.enter_async_context(client_session())
                    exit_code = await self._with_servers(session, job)
            except ShadowError as exc:
                self.console.error(str(exc))
                if isinstance(exc, TargetError):
                    for line in exc.log_tail[-LOG_TAIL_LINES:]:
                        self.console.error(f"  | {line}")
                exit_code = exc.exit_code
        job.collect()
        self.tally.interrupted = self.stop.requested.is_set()
        exit_code = job.conclude(exit_code or job.verdict())
        reasons = self.tally.failures(self.config.thresholds) if exit_code == 1 else []
        for reason in reasons:
            self.console.info(f"exit 1: {reason}")
        return self._finished(exit_code, job, reasons)

    def _started(self) -> None:
        settings = self.settings
        self.sink.run_started(
            {name: (t.url, t.managed) for name, t in self.config.targets.items()},
            settings.source_names(),
            settings.describe(),
            os.getpid(),
            choose_transport(settings.transport_requested, self.config.targets).fields(),
        )
        if self.sink.write_error is not None:
            self._write_error_reported = True
            raise OutputError(self.write_error_message())

    async def _with_servers(self, session: aiohttp.ClientSession, job: Job) -> int:
        """Servers up, the job's replay, servers down; the exit code a server failure gives
        (0 when none did)."""
        supervisor = Supervisor(
            self.config.targets,
            self.run_dir,
            self.sink,
            session,
            narrator=self.console,
            log_mask=self.scrubber.keeper_mask,
        )
        if not await self._start(supervisor):
            return 0
        try:
            self.supervisor = supervisor
            if not self.stop.requested.is_set():
                with replay_collector():  # start-up is over: its objects need no more collecting
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

    def _finished(self, exit_code: int, job: Job, reasons: list[str]) -> int:
        summary = self.tally.summary()
        fields = job.finished_fields()
        cpu_s = fields.pop("cpu_s", None)  # a fleet's adds its workers' own
        pacing, calibration = fields.pop("pacing"), fields.pop("calibration")
        interrupted = bool(fields.pop("interrupted")) or self.stop.requested.is_set()
        partial_code = self.settings.interrupted_exit_code
        if interrupted and partial_code is not None and exit_code in (0, 1):
            exit_code = partial_code  # what was compared is only part of the input
        errors_code = self.settings.errors_exit_code
        if (
            errors_code is not None
            and exit_code == 1
            and self.tally.failed_on_errors_only(self.config.thresholds)
        ):
            exit_code = errors_code  # no difference: the errors may pass on a retry
        supervisor = self.supervisor
        restarts = supervisor.restarts.summary() if supervisor is not None else {}
        self.sink.run_finished(
            summary,
            duration_s=time.monotonic() - self.started,
            cpu_s=own_cpu_s() if cpu_s is None else cpu_s,
            pacing=pacing,
            restarts=restarts,
            calibration=calibration,
            interrupted=interrupted,
            exit_code=exit_code,
            reasons=reasons,
            recorded=self.settings.recorded,
            **fields,
        )
        if self.sink.write_error is not None and not self._write_error_reported:
            # Events were lost: whatever the counts say, the run cannot pass.
            self.console.error(f"{self.write_error_message()}; the run was stopped")
            exit_code = max(exit_code, 1)
        # The headline on the same terminal already shows the paths and errors.
        shown = self._headline() and same_terminal(1, 2)
        for line in self.explainer.lines(restarts, details=not shown):
            self.console.info(line)
        self.console.info(
            f"{summary['requests']} requests{job.scope}: {summary['matched']} matched, "
            f"{summary['mismatched']} mismatched, {summary['errors']} errors, "
            f"{summary['input_errors']} input errors; exit {exit_code}"
        )
        if summary["statuses"] and not shown:  # the headline has its own statuses line
            self.console.info(f"statuses: {statuses_text(summary['statuses'])}")
        if self.settings.recorded:
            self.console.info(RECORDED_NOTE)
        if (path := self.events_path) is not None:
            self.console.info(f"events in {path} (a report: shadow report {path})")
        return exit_code

    def _headline(self) -> bool:
        """On a terminal: the text report's top, read back from the events file (True if so)."""
        path = self.events_path
        if self.view is None or self.headline is None or path is None:
            return False
        try:
            self.view.write(self.headline(path))
        except ShadowError as exc:  # the file could not be read back: the events say it all
            self.console.warning(f"no summary of {path}: {exc}")
            return False
        return True


RECORDED_NOTE = (
    "compared with the recorded answers: noise could not be calibrated (no second answer of "
    "the primary); only the rules of the config and its learned files were applied"
)
