"""One managed server: its process group, its log file, its health check, its teardown.

Why it is built this way:

- Each managed server gets its own session, so its pid is also its process group id.
  `cargo run` and `manage.py runserver` both leave the real server in a child process;
  signalling the group reaches it, signalling the pid would not.
- Between shadow and the server runs a keeper (shadow.servers.keeper, which says why): a
  child subreaper holding a pipe from shadow. Whatever kills shadow (SIGKILL, the OOM killer),
  the pipe closes and the keeper KILLs every descendant of the server, also those that
  double-forked out of the group; when the server exits, the keeper ends what it left before
  exiting itself with the server's status, which is what shadow waits for.
- stdout and stderr go to `RUN_DIR/<target>.log` through the keeper, which masks the run's
  secrets in them (shadow.events.scrub). The keeper is a process of its own that does
  nothing else, so a child never blocks on a full pipe, whatever shadow is doing (or not
  doing) at that moment.
- Stopping is TERM, a grace period, then KILL of the whole group and of every descendant
  outside it, through the keeper (trio's `_posix_deliver_cancel` shape). It runs in its own
  task, shielded: a caller cancelled by Ctrl-C or by a `wait_for`
  timeout still waits for the group to be gone before the cancellation goes on (the point of
  anyio's `Process.aclose`). If even that task is cancelled, the group is KILLed
  synchronously; an `atexit` hook KILLs any group still registered if the loop dies, and the
  keepers do the rest when shadow's process ends.
- A member of a group whose parent has exited may linger as a zombie when PID 1 does not reap;
  a zombie holds no resources, so "gone" means "absent or a zombie" throughout.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fnmatch
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson
import psutil

from shadow.config.targets import TargetConfig
from shadow.errors import PortInUseError, ServerStartError
from shadow.servers.procgroup import (
    free_port,
    group_members,
    port_taken,
    signal_group,
    wait_group_gone,
)

TAIL_BYTES = 64 * 1024
PROBE_TIMEOUT_S = 2.0  # one health request; the overall deadline is Health.timeout_s
KILL_WAIT_S = 1.0  # after SIGKILL, how long to wait for the kernel to finish the group off
KEEPER = Path(__file__).with_name("keeper.py")
KILL_ALL = signal.SIGUSR1  # what tells a keeper to KILL every descendant now

# Process groups started and not yet torn down, each with its keeper; the atexit hook's list.
_live_groups: dict[int, int] = {}


@atexit.register
def _kill_leftover_groups() -> None:
    for pgid, keeper in list(_live_groups.items()):
        signal_group(pgid, signal.SIGKILL)
        _signal_keeper(keeper, KILL_ALL)
    _live_groups.clear()


def _signal_keeper(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


class ServerEvents(Protocol):
    """Where the supervisor reports server lifecycle events (the sink, in a run)."""

    def server_ready(self, target: str, url: str, pid: int | None, startup_ms: float) -> None: ...

    def server_exited(
        self, target: str, returncode: int | None, expected: bool, log_tail: list[str]
    ) -> None: ...


class ManagedServer:
    """One target with a command: its process group, its log file and its lifecycle."""

    def __init__(
        self,
        target: TargetConfig,
        run_dir: Path,
        events: ServerEvents,
        on_unexpected_exit: Callable[[ManagedServer], None] | None = None,
        log_mask: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.target = target
        # The regular expression of what the keeper masks in the log (shadow.events.scrub).
        self._log_mask = log_mask
        self.run_dir = Path(run_dir)
        self.log_path = self.run_dir / f"{target.name}.log"
        self.events = events
        self.pid: int | None = None
        self.returncode: int | None = None
        self.exited = asyncio.Event()
        self._on_unexpected_exit = on_unexpected_exit
        self._proc: asyncio.subprocess.Process | None = None  # the keeper
        self._log_offset = 0  # only this run's output counts for log_tail
        self._started_at = 0.0
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None
        self._teardown: asyncio.Task[None] | None = None

    def check_port(self) -> None:
        """Pick a free port for port 0, else fail with PortInUseError if the port is taken;
        and the cwd must be a directory (a failed chdir in the child would be reported as
        the program not being found)."""
        target = self.target
        if target.cwd is not None and not os.path.isdir(target.cwd):
            what = "is not a directory" if os.path.exists(target.cwd) else "does not exist"
            message = f"cwd {target.cwd} {what} (targets.{target.name}.cwd)"
            raise ServerStartError(target.name, message)
        if target.port == 0:
            self.target = target.with_port(free_port(target.host))
        elif port_taken(target.host, target.port):
            raise PortInUseError(
                f"targets.{target.name}: port {target.port} on {target.host} is already in use "
                "(stop whatever listens there, or use port 0 and {port} in the command)"
            )
        else:
            self.target = target.with_command_port()  # `{port}` means the url's port, any port

    async def start(self) -> None:
        """Check the port and spawn the command in a new session, output to the log file."""
        if self._proc is not None:
            return
        self.check_port()
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 0o600: server logs can hold secrets from the environment.
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._log_offset = os.lseek(log_fd, 0, os.SEEK_END)
            mask = self._log_mask() if self._log_mask is not None else None
            self._proc, self.pid = await _spawn(self.target, log_fd, mask)
        finally:
            os.close(log_fd)
        _live_groups[self.pid] = self._proc.pid
        self._started_at = asyncio.get_running_loop().time()
        self._watcher = asyncio.create_task(self._watch(self._proc), name=f"watch-{self.name}")

    @property
    def keeper_pid(self) -> int | None:
        """The pid of the server's keeper (shadow.servers.keeper), while one was started."""
        return None if self._proc is None else self._proc.pid

    @property
    def name(self) -> str:
        return self.target.name

    async def wait_ready(
        self, session: aiohttp.ClientSession, on_probe: Callable[[str], None] | None = None
    ) -> float:
        """Poll the health check until it passes; fail at once if the process exits first."""
        if self._proc is None:
            raise RuntimeError(f"{self.name}: wait_ready() before start()")
        health = self.target.health
        deadline = self._started_at + health.timeout_s
        poll = asyncio.create_task(poll_health(session, self.target, deadline, on_probe))
        exit_seen = asyncio.create_task(self.exited.wait())
        try:
            await asyncio.wait({poll, exit_seen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            poll.cancel()
            exit_seen.cancel()
            await asyncio.gather(poll, exit_seen, return_exceptions=True)
        if self.exited.is_set():
            message = f"exited with code {self.returncode} while starting"
            raise ServerStartError(self.name, message, self.log_tail())
        if (cause := poll.result()) is not None:
            message = not_ready_message(self.target, cause)
            raise ServerStartError(self.name, message, self.log_tail())
        startup_ms = (asyncio.get_running_loop().time() - self._started_at) * 1000.0
        self.events.server_ready(self.name, self.target.url, self.pid, startup_ms)
        return startup_ms

    async def stop(self) -> None:
        """TERM, grace, KILL the group and reap the leader; completes even if cancelled."""
        if self._proc is None:
            return
        if self._teardown is None:
            # A process that already ended on its own was not stopped by us.
            self._stopping = self._proc.returncode is None
            self._teardown = asyncio.create_task(self._terminate(), name=f"stop-{self.name}")
        teardown = self._teardown
        interrupted: asyncio.CancelledError | None = None
        while not teardown.done():
            # asyncio.wait is a shield that also absorbs the task's own error: cancelling
            # this caller leaves the teardown task running, and we wait for it again.
            try:
                await asyncio.wait({teardown})
            except asyncio.CancelledError as exc:
                interrupted = exc  # finish the teardown first, then let the cancellation go on
        if teardown.cancelled() or teardown.exception() is not None:
            self._kill_now()  # the loop is shutting down (or a bug): KILL without waiting
        if interrupted is not None:
            raise interrupted

    def log_tail(self, lines: int = 20) -> list[str]:
        """The last `lines` lines this run wrote to the log (reads at most the last 64 KiB)."""
        try:
            with open(self.log_path, "rb") as log:
                end = log.seek(0, os.SEEK_END)
                start = max(self._log_offset, end - TAIL_BYTES)
                log.seek(start)
                data = log.read(end - start)
        except OSError:
            return []
        text_lines = data.decode("utf-8", errors="replace").splitlines()
        if start > self._log_offset and text_lines:
            text_lines = text_lines[1:]  # the first line was cut by the bounded read
        return text_lines[-lines:] if lines > 0 else []

    def group_pids(self) -> list[int]:
        """The live (non-zombie) pids of the server and of every process it started, also
        those that left its group (all are below its keeper)."""
        if self._proc is None or self._proc.returncode is not None:
            return [] if self.pid is None else group_members(self.pid)
        try:
            below = psutil.Process(self._proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        pids = []
        for proc in below:
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    pids.append(proc.pid)
        return pids

    async def restart(self, session: aiohttp.ClientSession) -> float:
        """After an exit: KILL what is left of the old group, start again, wait until ready."""
        if self._proc is not None and self.pid is not None:
            old = self.pid
            signal_group(old, signal.SIGKILL)
            _signal_keeper(self._proc.pid, KILL_ALL)
            await self._proc.wait()
            await wait_group_gone(old, asyncio.get_running_loop().time() + KILL_WAIT_S)
            _live_groups.pop(old, None)
            if self._watcher is not None:
                await asyncio.gather(self._watcher, return_exceptions=True)
        self._proc, self.returncode, self._watcher, self._teardown = None, None, None, None
        self._stopping = False
        self.exited = asyncio.Event()
        # Shielded: a cancelled restart must not leave a spawned process that stop() misses.
        spawn = asyncio.ensure_future(self.start())
        try:
            await asyncio.shield(spawn)
        except asyncio.CancelledError:
            await asyncio.gather(spawn, return_exceptions=True)
            raise
        return await self.wait_ready(session)

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        returncode = await proc.wait()
        self.returncode = returncode
        expected = self._stopping
        self.exited.set()
        self.events.server_exited(self.name, returncode, expected, self.log_tail())
        if not expected and self._on_unexpected_exit is not None:
            self._on_unexpected_exit(self)

    async def _terminate(self) -> None:
        assert self._proc is not None and self._watcher is not None and self.pid is not None
        proc, pgid = self._proc, self.pid
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.target.shutdown_grace_s
        if proc.returncode is None:
            signal_group(pgid, signal.SIGTERM)
            _signal_keeper(proc.pid, signal.SIGTERM)  # to what left the group
            # The keeper exits once the server and all it started are gone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=max(0.0, deadline - loop.time()))
            await wait_group_gone(pgid, deadline)
        signal_group(pgid, signal.SIGKILL)
        _signal_keeper(proc.pid, KILL_ALL)
        await proc.wait()
        await wait_group_gone(pgid, loop.time() + KILL_WAIT_S)
        _live_groups.pop(pgid, None)
        # The watcher reports server_exited; let it do so before stop() returns.
        with contextlib.suppress(Exception):
            await self._watcher

    def _kill_now(self) -> None:
        if self.pid is not None:
            signal_group(self.pid, signal.SIGKILL)
            keeper = _live_groups.pop(self.pid, None)
            if keeper is not None:
                _signal_keeper(keeper, KILL_ALL)


class Narrator(Protocol):
    """Where the supervisor says what it waits for (the console, in a run)."""

    def info(self, message: str) -> None: ...

    def debug(self, message: str) -> None: ...


async def poll_health(
    session: aiohttp.ClientSession,
    target: TargetConfig,
    deadline: float,
    on_probe: Callable[[str], None] | None = None,
) -> str | None:
    """GET the health url every interval until it answers as configured (None) or the loop's
    clock passes `deadline`: then the last probe's cause of failure. `on_probe` hears each
    failed probe's cause."""
    health = target.health
    url = target.url + health.path
    headers = dict(target.headers)
    loop = asyncio.get_running_loop()
    cause = "no probe finished"
    while True:
        remaining = deadline - loop.time()
        timeout = aiohttp.ClientTimeout(total=max(0.05, min(PROBE_TIMEOUT_S, remaining)))
        try:
            async with session.get(
                url, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if _is_healthy(response.status, health.status):
                    return None
                cause = f"last status {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            cause = probe_failure(exc, target, timeout.total or 0.0)
        if on_probe is not None:
            on_probe(cause)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return cause
        await asyncio.sleep(min(health.interval_s, remaining))


def probe_failure(exc: BaseException, target: TargetConfig, timeout_s: float) -> str:
    """Why one health probe failed, in words that point at the fix."""
    scheme = target.url.split(":", 1)[0]
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"unknown host {target.host!r}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS failed ({exc.os_error}): does the server speak https? the url says {scheme}://"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return f"connection refused (nothing listens on {target.host} port {target.port})"
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        hint = " (an https server? the url says http://)" if scheme == "http" else ""
        return f"not an HTTP answer: {exc}{hint}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    return f"{type(exc).__name__}: {exc}"


def _is_healthy(status: int, expected: int) -> bool:
    return status < 500 if expected == 0 else status == expected


def not_ready_message(target: TargetConfig, cause: str) -> str:
    health = target.health
    wanted = f"status {health.status}" if health.status else "a status below 500"
    return (
        f"did not answer GET {target.url}{health.path} with {wanted} within "
        f"{health.timeout_s:g}s (--health-timeout, [targets.{target.name}.health] timeout_s): "
        f"{cause}"
    )


async def _spawn(
    target: TargetConfig, log_fd: int, mask: dict[str, Any] | None = None
) -> tuple[asyncio.subprocess.Process, int]:
    """Start the target's keeper, which starts the server; the keeper and the server's pid."""
    argv = target.command
    keeper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        str(KEEPER),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_fd,  # the server's output goes there too, through the keeper's fd 2
        start_new_session=True,
    )
    assert keeper.stdin is not None and keeper.stdout is not None
    config = {
        "argv": list(argv),
        "cwd": target.cwd,
        "env": _child_env(target),
        "grace_s": target.shutdown_grace_s,
        "mask": mask,
    }
    payload = orjson.dumps(config)
    # stdin stays open for as long as shadow lives: its end is what the keeper watches.
    keeper.stdin.write(len(payload).to_bytes(8, "big") + payload)
    try:
        await keeper.stdin.drain()
        answer = orjson.loads(await keeper.stdout.readline() or b"{}")
    except (OSError, orjson.JSONDecodeError):
        answer = {}
    except BaseException:
        _signal_keeper(keeper.pid, KILL_ALL)  # cancelled while starting: nothing may stay
        raise
    if isinstance(answer.get("pid"), int):
        return keeper, answer["pid"]
    code = await keeper.wait()
    reason = answer.get("error") or f"its keeper ended with code {code}"
    if target.cwd is not None and answer.get("filename") == target.cwd:
        message = f"cannot start in cwd {target.cwd!r}: {reason}"
    else:
        message = f"cannot run {argv[0]!r}: {reason}"
    raise ServerStartError(target.name, message)


def _child_env(target: TargetConfig) -> dict[str, str]:
    """shadow's environment minus the `env_remove` globs, plus the target's own variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in target.env_remove)
    }
    env.update(target.env)
    return env
