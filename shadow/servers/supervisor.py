"""All targets of a run: managed ones started, watched and stopped, attached ones checked.

Every port and the run dir are checked before anything is spawned, then every server starts
at once and every health check runs concurrently; a server that exits while another is still
starting fails the start at once. During the run a managed server that dies ends the run
(`failed`, `failure`), unless `restart = "on-failure"` starts it again (shadow.servers.restarts)
and the run goes on. `start()` and `aclose()` (or `async with`) bracket it; `aclose()` stops
every managed server, and completes even when the caller is cancelled.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from shadow.config.targets import TargetConfig
from shadow.errors import OutputError, PortInUseError, ServerExitedError, ServerStartError
from shadow.servers.managed import (
    ManagedServer,
    Narrator,
    ServerEvents,
    not_ready_message,
    poll_health,
)
from shadow.servers.restarts import Restarts


class Supervisor:
    """All targets of a run: managed ones started and stopped, attached ones health-checked."""

    def __init__(
        self,
        targets: Mapping[str, TargetConfig],
        run_dir: Path,
        events: ServerEvents,
        session: aiohttp.ClientSession,
        narrator: Narrator | None = None,
        log_mask: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.targets: dict[str, TargetConfig] = dict(targets)
        self._narrator = narrator
        self.failed = asyncio.Event()
        self.failure: ServerExitedError | None = None
        self._events = events
        self._session = session
        self._run_dir = Path(run_dir)
        self._running = False
        self.restarts = Restarts(session, self._restarted, self._fail)
        self.ready_at: dict[str, float] = {}  # target -> loop time of its last server_ready
        self._servers = {
            name: ManagedServer(target, run_dir, events, self._server_died, log_mask)
            for name, target in targets.items()
            if target.managed
        }

    def servers(self) -> list[ManagedServer]:
        return list(self._servers.values())

    def groups(self) -> dict[str, tuple[int | None, list[int]]]:
        """Each managed server's leader pid and the live pids of its process group."""
        return {name: (s.pid, s.group_pids()) for name, s in self._servers.items()}

    async def start(self) -> None:
        """Start every managed server and wait until every target is ready; on any failure
        (or cancellation) stop what was started before raising."""
        try:
            await self._start_all()
        except BaseException:
            await self._stop_all()
            raise
        self._running = True

    async def aclose(self) -> None:
        """Stop every managed server (TERM, grace, KILL of each group), restarts first."""
        self._running = False
        await self.restarts.close()
        await self._stop_all()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def warming(self) -> bool:
        """Whether any target is within its `warmup_s` after its last server_ready.

        Asked before every record is sent: a plain loop, and no clock read without a warmup."""
        now = None
        for name, target in self.targets.items():
            if target.warmup_s > 0:
                if now is None:
                    now = asyncio.get_running_loop().time()
                if now - self.ready_at.get(name, now) < target.warmup_s:
                    return True
        return False

    @property
    def down(self) -> dict[str, float]:
        """Targets down while they restart (not to be sent to)."""
        return self.restarts.down

    async def _start_all(self) -> None:
        # Every port and the run dir are checked before anything is spawned: a taken port must
        # not leave the other server starting up for nothing.
        for server in self._servers.values():
            server.check_port()
        _check_distinct_ports(self.servers())
        if self._servers:
            prepare_run_dir(self._run_dir, self._servers)
        await _run_all(server.start() for server in self._servers.values())
        for name, server in self._servers.items():
            self.targets[name] = server.target
        await self._wait_all_ready()

    async def _wait_all_ready(self) -> None:
        """Every target's health check, concurrently. A managed server that exits meanwhile,
        even one already ready while another is still starting, fails the start at once."""
        ready = asyncio.create_task(_run_all(self._wait_ready(name) for name in self.targets))
        exits = [asyncio.create_task(server.exited.wait()) for server in self._servers.values()]
        try:
            await asyncio.wait([ready, *exits], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [ready, *exits]:
                task.cancel()
            await asyncio.gather(ready, *exits, return_exceptions=True)
        if not ready.cancelled() and (error := ready.exception()) is not None:
            raise error
        for server in self._servers.values():
            if server.exited.is_set():
                message = f"exited with code {server.returncode} while starting"
                raise ServerStartError(server.name, message, server.log_tail())

    async def _wait_ready(self, name: str) -> None:
        on_probe = self._waiting(name)
        if name in self._servers:
            await self._servers[name].wait_ready(self._session, on_probe)
            self.ready_at[name] = asyncio.get_running_loop().time()
            return
        target = self.targets[name]
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        deadline = started_at + target.health.timeout_s
        if (cause := await poll_health(self._session, target, deadline, on_probe)) is not None:
            raise ServerStartError(name, not_ready_message(target, cause))
        startup_ms = (loop.time() - started_at) * 1000.0
        self.ready_at[name] = loop.time()
        self._events.server_ready(name, target.url, None, startup_ms)

    def _waiting(self, name: str) -> Callable[[str], None] | None:
        """Say at once what is awaited; the listener of each failed probe (shown with -v)."""
        narrator = self._narrator
        if narrator is None:
            return None
        target = self.targets[name]
        narrator.info(f"waiting for {name} at {target.url} (GET {target.health.path})...")
        said = [""]

        def probed(cause: str) -> None:  # each new cause once, not every interval
            if cause != said[0]:
                said[0] = cause
                narrator.debug(f"{name}: not ready yet: {cause}")

        return probed

    async def _stop_all(self) -> None:
        # gather waits for every stop() even when cancelled, and each stop() finishes its
        # teardown before passing the cancellation on.
        await asyncio.gather(*(server.stop() for server in self._servers.values()))

    def _server_died(self, server: ManagedServer) -> None:
        if not self._running or self.failed.is_set():
            return  # during startup, __aenter__ reports it as a ServerStartError
        if self.restarts.take(server):
            return
        message = f"exited with code {server.returncode} during the run"
        if server.target.restart == "on-failure":
            message += f" (max_restarts = {server.target.max_restarts} used up)"
        self._fail(ServerExitedError(server.name, message, server.log_tail()))

    def _fail(self, failure: ServerExitedError) -> None:
        if not self.failed.is_set():
            self.failure = failure
            self.failed.set()

    def _restarted(self, server: ManagedServer) -> None:
        self.ready_at[server.name] = asyncio.get_running_loop().time()
        self.targets[server.name] = server.target


def prepare_run_dir(run_dir: Path, targets: Iterable[str]) -> None:
    """Create the run dir (owner-only, 0700) and each server's log file (0600), or fail with
    OutputError naming it before any server starts."""
    path = run_dir
    try:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in targets:
            path = run_dir / f"{name}.log"
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError as exc:
        raise OutputError(
            f"run dir {run_dir}: cannot write {path}: {exc.strerror or exc} "
            "(give a writable --run-dir or run_dir)"
        ) from None


def _check_distinct_ports(servers: Iterable[ManagedServer]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for server in servers:
        key = (server.target.host, server.target.port)
        if key in seen:
            raise PortInUseError(
                f"targets.{server.name}: port {key[1]} on {key[0]} is already used by "
                f"targets.{seen[key]}"
            )
        seen[key] = server.name


async def _run_all(coros: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run concurrently; on the first failure cancel and wait for the rest, then raise that
    failure itself (callers match on ShadowError, not on an ExceptionGroup)."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
