"""The supervisor against real child processes: start, health, failures, teardown, no orphans."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp import web

from shadow.config.targets import Health, TargetConfig
from shadow.errors import PortInUseError, ServerExitedError, ServerStartError
from shadow.servers import managed as managed_module
from shadow.servers.managed import ManagedServer
from shadow.servers.supervisor import Supervisor
from tests.support import CRASHING_SHADOW, FAKE_SERVER, ROOT, alive, assert_gone, free_port

WAIT_S = 10.0  # the longest a wait for something observable may take before the test fails


@dataclass
class Recorder:
    """A ServerEvents that keeps what it was told."""

    events: list[tuple[Any, ...]] = field(default_factory=list)

    def server_ready(self, target: str, url: str, pid: int | None, startup_ms: float) -> None:
        self.events.append(("ready", target, url, pid, startup_ms))

    def server_exited(
        self, target: str, returncode: int | None, expected: bool, log_tail: list[str]
    ) -> None:
        self.events.append(("exited", target, returncode, expected, log_tail))

    def named(self, kind: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == kind]


class KillOnReady(Recorder):
    """A Recorder that KILLs `target` as soon as it is reported ready: a death that comes
    after its readiness by construction, not by a timer."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def server_ready(self, target: str, url: str, pid: int | None, startup_ms: float) -> None:
        super().server_ready(target, url, pid, startup_ms)
        if target == self.target and pid is not None:
            os.kill(pid, signal.SIGKILL)


def managed(
    *flags: str,
    name: str = "primary",
    port: int = 0,
    timeout_s: float = 5.0,
    grace_s: float = 2.0,
    status: int = 0,
    env: dict[str, str] | None = None,
    env_remove: tuple[str, ...] = (),
) -> TargetConfig:
    return TargetConfig(
        name=name,
        url=f"http://127.0.0.1:{port}",
        command=(sys.executable, str(FAKE_SERVER), "--port", "{port}", *flags),
        env=env or {},
        env_remove=env_remove,
        health=Health(path="/health", status=status, timeout_s=timeout_s, interval_s=0.05),
        shutdown_grace_s=grace_s,
    )


class GroupSignals:
    """The signals the teardown sends to process groups, seen as they are sent (the real
    `signal_group` still sends them): to wait until a group has had TERM, say."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[int, signal.Signals]] = []
        self.term_sent = asyncio.Event()  # bound to the loop that first waits on it
        real = managed_module.signal_group

        def recording(pgid: int, signum: signal.Signals) -> bool:
            delivered = real(pgid, signum)
            if delivered:
                self.sent.append((pgid, signum))
                if signum == signal.SIGTERM:
                    self.term_sent.set()
            return delivered

        monkeypatch.setattr(managed_module, "signal_group", recording)

    async def wait_term(self) -> None:
        await asyncio.wait_for(self.term_sent.wait(), timeout=WAIT_S)


@pytest.fixture
def group_signals(monkeypatch: pytest.MonkeyPatch) -> GroupSignals:
    return GroupSignals(monkeypatch)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S}s: {what}")
        await asyncio.sleep(0.02)  # polling the condition


def has_grandchild(server: ManagedServer) -> bool:
    return any(line.startswith("grandchild ") for line in server.log_tail(50))


def grandchild_pid(server: ManagedServer) -> int:
    for line in server.log_tail(50):
        if match := re.fullmatch(r"grandchild (\d+)", line):
            return int(match.group(1))
    raise AssertionError(f"no grandchild line in {server.log_tail()}")


# A "server" that exits with 1 once a file (argv[1]) holds a text (argv[2]), or after WAIT_S.
EXIT_ONCE_LOGGED = f"""
import pathlib, sys, time
path, text, deadline = pathlib.Path(sys.argv[1]), sys.argv[2], time.monotonic() + {WAIT_S}
while text not in path.read_text() and time.monotonic() < deadline:
    time.sleep(0.02)  # polling the file
print("seen: exiting with 1" if text in path.read_text() else "not seen", flush=True)
sys.exit(1)
"""


def dir_mode(path: Path) -> int | None:
    """The permission bits of a directory, None if it does not exist."""
    return stat.S_IMODE(path.stat().st_mode) if path.exists() else None


def write_log(run_dir: Path, name: str, text: str) -> None:
    run_dir.mkdir(exist_ok=True)
    (run_dir / f"{name}.log").write_text(text)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.mark.e2e
async def test_healthy_start_ready_event_and_clean_stop(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    events = Recorder()
    async with Supervisor({"primary": managed()}, run_dir, events, session) as sup:
        (server,) = sup.servers()
        url = sup.targets["primary"].url
        assert events.named("ready") == [
            ("ready", "primary", url, server.pid, pytest.approx(0, abs=5000))
        ]
        assert server.pid in server.group_pids()
        async with session.get(url + "/anything") as response:
            assert response.status == 200
    assert events.named("exited") == [("exited", "primary", -15, True, server.log_tail())]
    assert server.exited.is_set() and server.returncode == -15
    assert not sup.failed.is_set()
    assert_gone([server.pid], timeout_s=0)
    assert dir_mode(run_dir) == 0o700


@pytest.mark.e2e
async def test_port_zero_picks_a_free_port_and_fills_the_command(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    async with Supervisor({"primary": managed()}, run_dir, Recorder(), session) as sup:
        target = sup.targets["primary"]
        (server,) = sup.servers()
        assert target.port != 0
        assert target.url == f"http://127.0.0.1:{target.port}"
        assert server.target == target and str(target.port) in target.command
        assert f"fake server pid {server.pid} port {target.port}" in server.log_tail()


@pytest.mark.e2e
async def test_never_healthy_fails_at_the_deadline(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    sup = Supervisor(
        {"primary": managed("--status", "503", timeout_s=1.0)}, run_dir, Recorder(), session
    )
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        await sup.__aenter__()
    assert 0.9 < time.monotonic() - started < 4.0
    assert "did not answer GET http://127.0.0.1:" in str(info.value)
    assert "/health with a status below 500 within 1s" in str(info.value)
    assert info.value.exit_code == 3 and "listening" in info.value.log_tail
    assert_gone([sup.servers()[0].pid], timeout_s=0)


@pytest.mark.e2e
async def test_wrong_status_is_not_ready(session: aiohttp.ClientSession, run_dir: Path) -> None:
    target = managed(timeout_s=0.5, status=204)
    with pytest.raises(ServerStartError, match=r"with status 204 within 0\.5s"):
        async with Supervisor({"primary": target}, run_dir, Recorder(), session):
            pass


@pytest.mark.e2e
async def test_exit_at_start_fails_fast_with_the_log_tail(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    write_log(run_dir, "primary", "stale line from an earlier run\n")
    events = Recorder()
    target = managed("--exit-at-start", "4", timeout_s=30.0)
    sup = Supervisor({"primary": target}, run_dir, events, session)
    started = time.monotonic()
    with pytest.raises(
        ServerStartError, match="primary: exited with code 4 while starting"
    ) as info:
        await sup.__aenter__()
    assert time.monotonic() - started < 5.0
    assert "fatal: DATABASE_URL is not set" in info.value.log_tail
    assert all("stale" not in line for line in info.value.log_tail)
    assert events.events == [("exited", "primary", 4, False, info.value.log_tail)]
    assert not sup.failed.is_set()


@pytest.mark.e2e
async def test_missing_executable_names_it(session: aiohttp.ClientSession, run_dir: Path) -> None:
    target = TargetConfig(
        name="candidate", url="http://127.0.0.1:0", command=("/nonexistent/srv", "x")
    )
    with pytest.raises(ServerStartError, match=r"candidate: cannot run '/nonexistent/srv'"):
        async with Supervisor({"candidate": target}, run_dir, Recorder(), session):
            pass


@pytest.mark.e2e
async def test_startup_failure_stops_the_servers_already_started(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    # The candidate fails its start once the primary's log shows its grandchild (a bounded
    # poll of the log by the candidate itself), so the primary has a grandchild to stop.
    candidate = TargetConfig(
        name="candidate",
        url="http://127.0.0.1:0",
        command=(
            sys.executable,
            "-c",
            EXIT_ONCE_LOGGED,
            str(run_dir / "primary.log"),
            "grandchild ",
        ),
        health=Health(path="/health", timeout_s=WAIT_S, interval_s=0.05),
    )
    targets = {"primary": managed("--grandchild", "normal"), "candidate": candidate}
    sup = Supervisor(targets, run_dir, Recorder(), session)
    with pytest.raises(ServerStartError, match="candidate: exited with code 1") as info:
        await sup.__aenter__()
    assert "seen: exiting with 1" in info.value.log_tail
    primary, candidate_server = sup.servers()
    assert_gone([primary.pid, candidate_server.pid, grandchild_pid(primary)], timeout_s=0)


@pytest.mark.e2e
async def test_ready_server_dying_while_another_starts_fails_at_once(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    targets = {
        "primary": managed(),
        # Slow to start: still starting when the primary dies (not a wait).
        "candidate": managed("--start-delay", "10", name="candidate", timeout_s=15.0),
    }
    events = KillOnReady("primary")
    sup = Supervisor(targets, run_dir, events, session)
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="primary: exited with code -9 while starting"):
        await sup.__aenter__()
    assert time.monotonic() - started < 5.0
    assert [event[1] for event in events.named("ready")] == ["primary"]
    assert not sup.failed.is_set()
    assert_gone([server.pid for server in sup.servers()], timeout_s=0)


@pytest.mark.e2e
async def test_ignoring_sigterm_is_killed_after_the_grace(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    events = Recorder()
    server = ManagedServer(managed("--ignore-term", grace_s=0.5), run_dir, events)
    await server.start()
    await server.wait_ready(session)
    started = time.monotonic()
    await server.stop()
    assert 0.45 < time.monotonic() - started < 3.0
    assert server.returncode == -9
    assert events.named("exited") == [("exited", "primary", -9, True, server.log_tail())]
    assert_gone([server.pid], timeout_s=0)
    await server.stop()  # idempotent, and quiet on a dead process
    assert len(events.named("exited")) == 1


@pytest.mark.e2e
@pytest.mark.parametrize("grandchild", ["normal", "ignore"])
async def test_grandchild_goes_with_the_group(
    session: aiohttp.ClientSession, run_dir: Path, grandchild: str
) -> None:
    server = ManagedServer(managed("--grandchild", grandchild, grace_s=0.5), run_dir, Recorder())
    await server.start()
    await server.wait_ready(session)
    orphan = grandchild_pid(server)
    assert sorted(server.group_pids()) == sorted([server.pid, orphan])
    started = time.monotonic()
    await server.stop()
    # A grandchild ignoring TERM outlives its parent until the grace ends, then gets KILL.
    assert time.monotonic() - started < 3.0
    assert_gone([server.pid, orphan], timeout_s=0)
    assert server.group_pids() == []


async def test_taken_port_fails_before_anything_is_spawned(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        targets = {"primary": managed(), "candidate": managed(name="candidate", port=port)}
        events = Recorder()
        sup = Supervisor(targets, run_dir, events, session)
        with pytest.raises(PortInUseError) as info:
            await sup.__aenter__()
    assert str(info.value).startswith(
        f"targets.candidate: port {port} on 127.0.0.1 is already in use"
    )
    assert info.value.exit_code == 2
    assert [server.pid for server in sup.servers()] == [None, None]
    assert events.events == [] and dir_mode(run_dir) is None


async def test_two_targets_on_one_port_are_refused(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    port = free_port()
    targets = {"primary": managed(port=port), "candidate": managed(name="candidate", port=port)}
    with pytest.raises(PortInUseError, match=f"targets.candidate: port {port} .* targets.primary"):
        async with Supervisor(targets, run_dir, Recorder(), session):
            pass


@pytest.mark.e2e
async def test_death_mid_run_sets_failed(session: aiohttp.ClientSession, run_dir: Path) -> None:
    events = Recorder()
    async with Supervisor({"primary": managed()}, run_dir, events, session) as sup:
        (server,) = sup.servers()
        assert server.pid is not None and not sup.failed.is_set()
        os.kill(server.pid, signal.SIGKILL)  # dies during the run, not by the teardown
        await asyncio.wait_for(sup.failed.wait(), timeout=WAIT_S)
        assert isinstance(sup.failure, ServerExitedError)
        assert str(sup.failure) == "primary: exited with code -9 during the run"
        assert sup.failure.exit_code == 3 and "listening" in sup.failure.log_tail
        assert events.named("exited") == [("exited", "primary", -9, False, sup.failure.log_tail)]
    assert len(events.named("exited")) == 1
    assert_gone([sup.servers()[0].pid], timeout_s=0)


@pytest.mark.e2e
@pytest.mark.parametrize("cancels", [1, 2])
async def test_cancelled_inside_async_with_leaves_no_process(
    session: aiohttp.ClientSession, run_dir: Path, cancels: int, group_signals: GroupSignals
) -> None:
    """anyio's test_process_aexit_cancellation_doesnt_orphan_process, for a process group
    whose members ignore TERM; a second cancel lands in the middle of the teardown."""
    target = managed("--ignore-term", "--grandchild", "ignore", grace_s=0.5)
    events = Recorder()
    entered = asyncio.Event()
    holder: list[Supervisor] = []

    async def run() -> None:
        async with Supervisor({"primary": target}, run_dir, events, session) as sup:
            holder.append(sup)
            entered.set()
            await asyncio.sleep(30)  # the body, until the test cancels it: not a wait

    task = asyncio.create_task(run())
    await asyncio.wait_for(entered.wait(), timeout=10)
    (server,) = holder[0].servers()
    pids = [server.pid, grandchild_pid(server)]
    started = time.monotonic()
    task.cancel()  # lands in the body: __aexit__ starts the teardown
    if cancels == 2:
        await group_signals.wait_term()
        # Inside the teardown: TERM sent, the group still alive, no KILL yet.
        assert group_signals.sent == [(server.pid, signal.SIGTERM)]
        assert all(alive(pid) for pid in pids) and not task.done()
        task.cancel()  # lands in the teardown, which must go on regardless
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancellation waited for TERM, the 0.5 s grace and KILL before going on.
    assert time.monotonic() - started > 0.45
    assert group_signals.sent == [(server.pid, signal.SIGTERM), (server.pid, signal.SIGKILL)]
    assert_gone(pids, timeout_s=0)
    assert events.named("exited") == [("exited", "primary", -9, True, server.log_tail())]


@pytest.mark.e2e
async def test_wait_for_timeout_during_startup_leaves_no_process(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    target = managed("--status", "503", "--grandchild", "ignore", timeout_s=30.0, grace_s=0.3)
    sup = Supervisor({"primary": target}, run_dir, Recorder(), session)
    (server,) = sup.servers()

    async def run() -> None:
        async with sup:
            raise AssertionError("never healthy, never entered")

    starting = asyncio.create_task(run())
    await wait_until(lambda: has_grandchild(server), "the server has its grandchild")
    assert not starting.done()  # still starting: its health check answers 503 for 30 s
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(starting, timeout=0.05)
    assert starting.cancelled()
    assert_gone([server.pid, grandchild_pid(server)], timeout_s=0)


# The last resort KILLs without reaping, so the dead loop's transport is never closed: the
# warning about it is expected here (conftest collects it at this test's teardown).
@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_loop_shutdown_mid_teardown_still_kills(run_dir: Path, group_signals: GroupSignals) -> None:
    """asyncio.run cancels the teardown task itself on the way out: the last resort KILLs."""
    pids: list[int | None] = []

    async def main() -> None:
        target = managed("--ignore-term", "--grandchild", "ignore", grace_s=10.0)
        server = ManagedServer(target, run_dir, Recorder())
        await server.start()
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
        # The keeper too: until it has ended, the dead loop's watcher holds its transport.
        pids.extend([server.pid, grandchild_pid(server), server.keeper_pid])
        stopping = asyncio.create_task(server.stop())
        await group_signals.wait_term()  # TERM sent: now inside the 10 s grace
        assert group_signals.sent == [(server.pid, signal.SIGTERM)] and not stopping.done()

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5.0
    assert group_signals.sent[-1] == (pids[0], signal.SIGKILL)  # the last resort's
    assert_gone(pids)


@pytest.mark.e2e
def test_crashed_loop_leaves_no_process(run_dir: Path) -> None:
    """shadow's loop dies with servers up and nobody calling stop(): the atexit hook KILLs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(CRASHING_SHADOW), str(FAKE_SERVER), str(run_dir)]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=20)
    assert "RuntimeError: crash with servers up" in done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    assert_gone(pids)


@pytest.mark.e2e
async def test_environment_is_filtered_and_merged(
    session: aiohttp.ClientSession, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARGO_HOME_TEST", "dropped")
    monkeypatch.setenv("CARGO_TARGET_TEST", "dropped")
    monkeypatch.setenv("SHADOW_KEPT", "kept")
    monkeypatch.setenv("SHADOW_OVERRIDDEN", "from shadow")
    env = {"SHADOW_OVERRIDDEN": "from config", "DATABASE_URL": "postgres://x"}
    target = managed("--print-env", env=env, env_remove=("CARGO_*",))
    async with Supervisor({"primary": target}, run_dir, Recorder(), session) as sup:
        (server,) = sup.servers()
        (line,) = [line for line in server.log_tail(50) if line.startswith("ENV ")]
    child_env = json.loads(line.removeprefix("ENV "))
    assert not any(key.startswith("CARGO_") for key in child_env)
    assert child_env["SHADOW_KEPT"] == "kept"
    assert child_env["SHADOW_OVERRIDDEN"] == "from config"
    assert child_env["DATABASE_URL"] == "postgres://x"


@pytest.mark.e2e
async def test_attached_target_is_health_checked(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        attached = TargetConfig(
            name="candidate", url=f"http://127.0.0.1:{port}", health=Health(path="/health")
        )
        events = Recorder()
        targets = {"primary": managed(), "candidate": attached}
        async with Supervisor(targets, run_dir, events, session) as sup:
            ready = {event[1]: event for event in events.named("ready")}
            assert ready["candidate"][2:4] == (f"http://127.0.0.1:{port}", None)
            assert ready["primary"][3] == sup.servers()[0].pid
        assert [event[1] for event in events.named("exited")] == ["primary"]
    finally:
        await runner.cleanup()


@pytest.mark.e2e
async def test_attached_target_not_answering_fails(
    session: aiohttp.ClientSession, run_dir: Path
) -> None:
    attached = TargetConfig(
        name="primary",
        url=f"http://127.0.0.1:{free_port()}",
        health=Health(timeout_s=0.3, interval_s=0.05),
    )
    targets = {"primary": attached, "candidate": managed(name="candidate")}
    sup = Supervisor(targets, run_dir, Recorder(), session)
    with pytest.raises(ServerStartError, match=r"primary: did not answer GET .* within 0\.3s"):
        await sup.__aenter__()
    assert_gone([sup.servers()[0].pid], timeout_s=0)


def test_log_tail_reads_a_bounded_end_of_the_log(run_dir: Path) -> None:
    server = ManagedServer(managed(), run_dir, Recorder())
    assert server.log_tail() == []
    run_dir.mkdir()
    lines = [f"line {i} " + "x" * 40 for i in range(20_000)]
    (run_dir / "primary.log").write_bytes(("\n".join(lines) + "\n\xff").encode("latin-1"))
    assert server.log_tail(3) == [*lines[-2:], "\ufffd"]
    assert server.log_tail(0) == []
    assert len(server.log_tail(100_000)) < 2_000  # 64 KiB, not the whole file


async def test_stop_before_start_is_a_no_op(run_dir: Path) -> None:
    server = ManagedServer(managed(), run_dir, Recorder())
    await server.stop()
    assert server.pid is None and server.group_pids() == []


@pytest.mark.e2e
def test_under_uvloop(run_dir: Path) -> None:
    async def lifecycle() -> list[int | None]:
        target = managed("--grandchild", "ignore", grace_s=0.3)
        async with (
            aiohttp.ClientSession() as session,
            Supervisor({"primary": target}, run_dir, Recorder(), session) as sup,
        ):
            (server,) = sup.servers()
            return [server.pid, grandchild_pid(server)]

    assert_gone(uvloop.run(lifecycle()), timeout_s=0)
