"""`--workers N`: one run replayed by N processes on this machine, one run to whoever reads it.

Why it is built this way:

- The parent is the supervisor: it starts (or attaches to) the servers once, then spawns N
  children (`python -m shadow.run.worker`), each an ordinary attached run of shard `i` of `N`
  (shadow.replay.partition: split by lane, so a lane's order holds). A child gets the parent's
  resolved settings as a pickle on its stdin, never on disk (they can hold secrets from the
  config's env file), with the targets attached at the urls the parent resolved.
- Each child writes events on its stdout pipe. The parent forwards `mismatch`, `match`,
  `error` and `input_error` lines as they are, with the child's run id replaced by its own;
  other events get a `worker` field; each child's `run_started`, `server_ready` and `progress`
  are consumed: the parent writes one `run_started`, its servers' `server_ready`, one merged
  `progress` per interval and, once every child has ended, one `run_finished` that adds up
  the children's (shadow.run.merge; percentiles from their merged HDR histograms).
- Children die with the parent. They run in their own sessions, so a terminal's Ctrl-C
  reaches only the parent, which forwards each SIGINT/SIGTERM/SIGHUP as SIGTERM (the first
  drains, the second cancels, as for one process). The parent holds each child's stdin open:
  if the parent dies, even by SIGKILL, the child reads end-of-file and stops itself. On any
  way out of the parent, children still running get SIGTERM, then SIGKILL after a grace.
- A log that can be read only once (stdin, a pipe) cannot feed N readers: refused (exit 2).
- Everything around the replay (signals, servers, run_started and run_finished, the exit
  code) is the lifecycle's, as for one process (shadow.run.lifecycle).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from shadow.config.settings import WHOLE, RunSettings, Shard
from shadow.config.targets import TargetConfig
from shadow.errors import BUG_EXIT_CODE, UsageError
from shadow.run.lifecycle import Lifecycle
from shadow.run.merge import absorb, merge_calibration, merge_pacing, merge_progress, shard_summary
from shadow.run.progress import UsageSampler, own_cpu_s
from shadow.run.reset import Resetter
from shadow.servers.supervisor import Supervisor
from shadow.sources.opening import is_stream

REAP_GRACE_S = 5.0  # after SIGTERM and the drain deadline, before SIGKILL
_FORWARDED = frozenset((b"mismatch", b"match", b"error", b"input_error"))
_CONSUMED = frozenset((b"run_started", b"server_ready"))
_PREFIX = b'{"event":"'


class Worker:
    """One child process and what it reported."""

    def __init__(self, index: int, shard: Shard) -> None:
        self.index = index
        self.shard = shard
        self.proc: asyncio.subprocess.Process | None = None
        self.run_id = b""  # the child's `"run_id":"..."` field, as it writes it
        self.summary: dict[str, Any] | None = None
        self.progress: dict[str, Any] | None = None
        self.fresh = False  # progress not yet merged into a parent `progress` event
        self.owed = 0  # SIGTERMs to pass on once the child can take them (see `started`)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def stop(self) -> None:
        """SIGTERM, once the child has said `run_started`: its handlers are in place by then
        (earlier, the signal would kill it half started, and its share would be lost)."""
        if self.run_id:
            self.signal(signal.SIGTERM)
        else:
            self.owed += 1

    def started(self, run_id: str) -> None:
        self.run_id = f'"run_id":"{run_id}"'.encode()
        for _ in range(self.owed):
            self.signal(signal.SIGTERM)

    def signal(self, signum: signal.Signals) -> None:
        if self.alive:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def describe(self) -> dict[str, Any]:
        summary = self.summary or {}
        return {
            "worker": self.index,
            "shard": self.shard.text,
            "pid": self.proc.pid if self.proc is not None else None,
            "exit_code": self.proc.returncode if self.proc is not None else None,
            "requests": summary.get("requests"),
            "duration_s": summary.get("duration_s"),
            "cpu_s": summary.get("cpu_s"),
        }


def child_targets(targets: Mapping[str, TargetConfig]) -> dict[str, TargetConfig]:
    """The parent's resolved targets, attached: same url, headers and health, no command, and
    no reset (the parent resets them once, before the children start)."""
    return {
        name: dataclasses.replace(target, command=(), restart="no", cwd=None, env={}, reset=None)
        for name, target in targets.items()
    }


class Fleet:
    """The job of a `--workers` run: children spawned, their events merged, one summary."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.settings = settings = lifecycle.settings
        self.console = lifecycle.console
        self.sink = lifecycle.sink
        self.own_run_id = f'"run_id":"{lifecycle.run_id}"'.encode()
        base = settings.shard or WHOLE
        self.workers = [Worker(i, base.split(i, settings.workers)) for i in range(settings.workers)]
        self.scope = f" over {len(self.workers)} workers"
        self.replay_started = time.perf_counter()
        self.summaries: list[dict[str, Any]] = []

    def child_settings(self, worker: Worker, supervisor: Supervisor) -> RunSettings:
        settings, count = self.settings, self.settings.workers
        config = settings.config
        # Children report twice per interval, so the parent's merged event is never stale.
        replay = dataclasses.replace(
            config.replay, progress_interval_s=config.replay.progress_interval_s / 2
        )
        rate = settings.rate
        if rate is not None:  # the run's schedule, shared out
            rate = dataclasses.replace(rate, start=rate.start / count, end=rate.end / count)
        return dataclasses.replace(
            settings,
            config=dataclasses.replace(
                config, targets=child_targets(supervisor.targets), replay=replay
            ),
            output=None,
            run_dir=str(self.lifecycle.run_dir),
            rate=rate,
            live=False,
            terminal=False,
            learn_noise=None,
            shard=worker.shard,
            workers=1,
        )

    async def spawn(self, worker: Worker, supervisor: Supervisor) -> None:
        # Children say only what goes wrong (the parent sums up), unless asked for more.
        verbosity = self.console.verbosity - 1
        payload = pickle.dumps((self.child_settings(worker, supervisor), verbosity))
        worker.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shadow.run.worker",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert worker.proc.stdin is not None
        worker.proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
        await worker.proc.stdin.drain()  # stdin stays open: its end tells the child we died

    async def replay(self, supervisor: Supervisor, session: aiohttp.ClientSession) -> None:
        self.replay_started = time.perf_counter()
        pumps: list[asyncio.Task[None]] = []
        resetter = Resetter(supervisor.targets, session, self.sink)
        if resetter:
            await resetter.reset_all()  # once for all workers: the children have none
        progress = asyncio.create_task(self.report_progress(supervisor))
        try:
            for worker in self.workers:
                await self.spawn(worker, supervisor)
                pumps += [
                    asyncio.create_task(self.pump_events(worker)),
                    asyncio.create_task(self.pump_stderr(worker)),
                ]
            ended = asyncio.gather(*(w.proc.wait() for w in self.workers if w.proc))
            await self.watch(ended, supervisor)
        finally:
            progress.cancel()
            await self.reap()
            await asyncio.gather(progress, *pumps, return_exceptions=True)

    async def watch(self, ended: asyncio.Future[Any], supervisor: Supervisor) -> None:
        """Wait for every child to end; pass each stop (signal, server death) on to them."""
        stop, sent = self.lifecycle.stop, 0
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while not ended.done():
            wanted = 2 if stop.forced.is_set() else int(stop.requested.is_set())
            wanted = max(wanted, int(supervisor.failed.is_set()))
            for _ in range(sent, wanted):
                for worker in self.workers:
                    worker.stop()
            if wanted > sent and deadline is None:
                deadline = loop.time() + self.settings.drain_deadline_s + REAP_GRACE_S
            sent = max(sent, wanted)
            events = [stop.requested, stop.forced, supervisor.failed]
            waiters = [asyncio.create_task(e.wait()) for e in events if not e.is_set()]
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait([ended, *waiters], timeout=timeout, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()
            if deadline is not None and loop.time() >= deadline:
                break  # reap() kills what is left
        if ended.done():
            ended.result()

    async def reap(self) -> None:
        """No child outlives the parent's run: SIGTERM, a grace, then SIGKILL."""
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return
        for worker in alive:
            worker.signal(signal.SIGTERM)
        waits = [w.proc.wait() for w in alive if w.proc is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.shield(asyncio.wait_for(asyncio.gather(*waits), REAP_GRACE_S))
        for worker in alive:
            worker.signal(signal.SIGKILL)
            if worker.proc is not None:
                await worker.proc.wait()

    async def pump_events(self, worker: Worker) -> None:
        """Read the child's events; forward or consume each whole line."""
        assert worker.proc is not None and worker.proc.stdout is not None
        stream, rest = worker.proc.stdout, b""
        while chunk := await stream.read(1 << 16):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self.sink.forward(b"".join(self.take(worker, line) for line in lines))
        if rest:
            self.console.warning(f"worker {worker.index}: its last event was cut off")

    def take(self, worker: Worker, line: bytes) -> bytes:
        """What to write for one line of a child (b"" for nothing)."""
        if not line.startswith(_PREFIX):
            return b""
        kind = line[len(_PREFIX) : line.find(b'"', len(_PREFIX))]
        if kind in _FORWARDED and worker.run_id:
            # Only the first occurrence: the run_id field comes right after event and ts.
            return line.replace(worker.run_id, self.own_run_id, 1) + b"\n"
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.console.warning(f"worker {worker.index}: dropped a line that is not an event")
            return b""
        if kind == b"run_started":
            worker.started(event["run_id"])
        if kind in _CONSUMED:
            return b""
        if kind == b"run_finished":
            worker.summary = event
            return b""
        if kind == b"progress":
            worker.progress, worker.fresh = event, True
            return b""
        event["run_id"], event["worker"] = self.lifecycle.run_id, worker.index
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)

    async def pump_stderr(self, worker: Worker) -> None:
        assert worker.proc is not None and worker.proc.stderr is not None
        tag = f"[worker {worker.index}] "
        while line := await worker.proc.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.startswith("shadow: "):
                text = "shadow: " + tag + text.removeprefix("shadow: ")
            else:
                text = tag + text
            with contextlib.suppress(OSError, ValueError):
                print(self.console.scrub(text), file=self.console.stream, flush=True)

    async def report_progress(self, supervisor: Supervisor) -> None:
        """One `progress` event per interval, merged from each worker's latest."""
        interval_s = self.settings.config.replay.progress_interval_s
        if interval_s <= 0:
            return
        servers: dict[str, UsageSampler] = {}
        own = UsageSampler()
        while True:
            await asyncio.sleep(interval_s)
            reports = [w.progress for w in self.workers if w.progress is not None]
            if not reports:
                continue
            fresh = [w.progress for w in self.workers if w.fresh and w.progress is not None]
            for worker in self.workers:
                worker.fresh = False
            usage = {
                name: servers.setdefault(name, UsageSampler()).sample(leader, pids)
                for name, (leader, pids) in supervisor.groups().items()
            }
            pids = [os.getpid(), *(w.proc.pid for w in self.workers if w.alive and w.proc)]
            elapsed_s = time.perf_counter() - self.replay_started
            shadow = own.sample(pids[0], pids)
            self.sink.progress(merge_progress(reports, fresh, elapsed_s, usage, shadow))

    def collect(self) -> None:
        """Add up the children's summaries into the run's tally."""
        self.summaries = [w.summary for w in self.workers if w.summary is not None]
        for summary in self.summaries:
            absorb(self.lifecycle.tally, summary)

    def verdict(self) -> int:
        """2 or 3 if a child ended so; 70 if one crashed (a bug), 1 if one ended without a
        summary otherwise; else the thresholds."""
        severe = max((int(s.get("exit_code", 0)) for s in self.summaries), default=0)
        if severe in (2, 3):
            return severe
        lost = [w for w in self.workers if w.proc is not None and w.summary is None]
        for worker in lost:
            code = worker.proc.returncode if worker.proc is not None else None
            self.console.error(
                f"worker {worker.index} (shard {worker.shard.text}) ended with code {code} "
                "and no summary: its records are missing from the counts"
            )
        if any(w.proc is not None and w.proc.returncode == BUG_EXIT_CODE for w in lost):
            return BUG_EXIT_CODE
        if lost:
            return 1
        return self.lifecycle.tally.exit_code(self.settings.config.thresholds)

    def conclude(self, exit_code: int) -> int:
        """What the workers' calibration says, once for the run (they keep quiet on stderr)."""
        calibration = merge_calibration(s.get("calibration") for s in self.summaries)
        if calibration is None:
            return exit_code
        if calibration["pairs"] == 0 and self.lifecycle.tally.requests:
            why = f" ({calibration['discarded']} discarded)" if calibration["discarded"] else ""
            self.console.warning(
                f"calibration made no pairs{why}: no difference was taken for noise"
            )
        if calibration["body_not_comparable"]:
            names = ", ".join(map(repr, calibration["body_not_comparable"]))
            self.console.warning(
                f"body not comparable on {names}: the primary's own answers differ there and "
                "are not JSON; status and headers still compared"
            )
        return exit_code

    def finished_fields(self) -> dict[str, Any]:
        summaries = self.summaries
        parent_cpu_s = own_cpu_s()
        # Each worker's own, measured as it wrote its summary (a worker lost has none).
        workers_cpu_s = sum(float(s.get("cpu_s") or 0.0) for s in summaries)
        return {
            "cpu_s": round(parent_cpu_s + workers_cpu_s, 3),
            "parent_cpu_s": parent_cpu_s,
            "pacing": merge_pacing(s.get("pacing") or {} for s in summaries),
            "calibration": merge_calibration(s.get("calibration") for s in summaries),
            "interrupted": any(s.get("interrupted") for s in summaries),
            "workers": [w.describe() for w in self.workers],
            **shard_summary(self.lifecycle.tally, self.settings.shard),
        }


def check_fleet(settings: RunSettings) -> None:
    """What N processes cannot share: refused before anything starts (exit 2)."""
    if settings.metrics is not None:
        raise UsageError("--metrics serves one process's counts: not with --workers")
    streams = [path for path in settings.inputs if is_stream(path)]
    if streams and settings.synth is None:
        raise UsageError(
            f"--workers: {streams[0]} can be read only once, and every worker reads the whole "
            "log: save it to a file first, or run without --workers"
        )
    if settings.learn_noise is not None:
        raise UsageError(
            "--learn-noise needs every record's counts in one process: run it without --workers"
        )
    reset = [name for name, t in settings.config.targets.items() if t.reset is not None]
    if reset and settings.loop:
        raise UsageError(
            f"--loop with --workers: targets.{reset[0]}.reset must run between passes, when no "
            "worker has a request in flight, and the workers' passes are not in step: "
            "run it without --workers"
        )
