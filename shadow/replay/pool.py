"""Replay: turn a stream of records into exchanges with a bounded pool of workers.

The shape is vegeta's attack loop in asyncio: one dispatcher admits records, at most
`concurrency` workers (started as records arrive) send them, and a semaphore bounds how many records are admitted but not finished, so
memory stays flat whatever the log's size. Lanes keep order where it matters: a record whose
lane already has one in flight waits behind it (in that lane's queue, still within the bound),
and the worker that finishes a lane's record takes the next one of the same lane, so a lane's
records run strictly in order while different lanes run concurrently.

Every admitted record is in `pending` until its exchange is handed to `finish`, so whoever
stops a replay early can account for what never finished.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from multidict import CIMultiDict
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.config.targets import TargetConfig
from shadow.model import (
    HOP_BY_HOP_HEADERS,
    REPEAT,
    CompareRules,
    Exchange,
    Failure,
    Outcome,
    Record,
    Response,
    request_target,
)
from shadow.replay.budget import BodyBudget
from shadow.replay.partition import lane_of
from shadow.replay.routes import infer_template
from shadow.replay.transport import Request, Transport


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the run decides about a record before it is sent (shadow.run.pipeline)."""

    endpoint: str
    rules: CompareRules
    headers: tuple[tuple[str, str], ...]  # auth headers to add (already minted)
    failure: Failure | None = None  # the record cannot be sent (its auth cannot be built)
    down: Mapping[str, Failure] = field(default_factory=dict)  # targets not to send to now
    drop: frozenset[str] = frozenset()  # recorded headers (lowercase) not to send
    # Noise calibration: the target asked again once the others have answered (shadow.compare.noise).
    reference: str | None = None
    # Answers known without sending (`--recorded`: the primary's, from the capture).
    given: Mapping[str, Outcome] = field(default_factory=dict)
    # The record as a target is to get it, correlated values its own (shadow.replay.correlate).
    rewrite: Mapping[str, Record] = field(default_factory=dict)


# A hooks module's `prepare_request` for one target (shadow.run.hooks): the headers and body
# to send instead, or the Failure that makes the record an `error` (kind `hook`) on that side.
BeforeSend = Callable[
    [str, Record, CIMultiDict[str], bytes | None],
    tuple[CIMultiDict[str], bytes | None] | Failure,
]


class Replayer:
    def __init__(
        self,
        transport: Transport,
        targets: Mapping[str, TargetConfig],
        settings: ReplayConfig,
        prepare: Callable[[Record], Prepared],
        finish: Callable[[Exchange], None],
        before_send: BeforeSend | None = None,
    ) -> None:
        self._transport = transport
        self._targets = dict(targets)
        self._settings = settings
        self._prepare = prepare
        self._finish = finish
        self._before_send = before_send
        self._lane_regex = re.compile(settings.lane.pattern) if settings.lane.pattern else None
        self._urls = {name: TargetURL(t.url) for name, t in targets.items()}
        self.budget = BodyBudget(settings.max_bodies_bytes)
        self._held: dict[int, int] = {}  # seq -> body bytes it holds of the budget
        self.pending: dict[int, Record] = {}
        self.in_flight = 0

    async def run(self, records: AsyncIterator[tuple[int, Record, float | None]]) -> None:
        """Send every record; return when all admitted ones are finished.

        An exception while a record is prepared or sent makes it an `internal` failure,
        finished like any other, and the worker goes on (the pipeline does the same for one
        while an exchange is compared). Only an exception raised by `finish` itself (the bug
        is in counting or writing events, past the record) ends the replay, raised from here,
        rather than losing the record or leaving the run waiting for a worker that is gone.
        Workers start as records arrive, up to `concurrency`: a short log never pays for a
        large pool.
        """
        limit = self._settings.concurrency
        admitted = asyncio.Semaphore(limit * 2)
        queue: asyncio.Queue[tuple[int, Record, float | None, str | None]] = asyncio.Queue()
        waiting: dict[str, deque[tuple[int, Record, float | None]]] = {}
        crashed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        workers: list[asyncio.Task[None]] = []
        idle = 0

        async def worker() -> None:
            nonlocal idle
            while True:
                idle += 1
                seq, record, intended, lane = await queue.get()
                idle -= 1
                try:
                    while True:
                        await self._one_guarded(seq, record, intended)
                        admitted.release()
                        if lane is None:
                            break
                        backlog = waiting[lane]
                        if not backlog:
                            del waiting[lane]
                            break
                        seq, record, intended = backlog.popleft()
                except Exception as exc:
                    if not crashed.done():
                        crashed.set_exception(exc)
                    raise
                finally:
                    queue.task_done()

        async def admit() -> None:
            async for seq, record, intended in records:
                await admitted.acquire()
                self.pending[seq] = record
                lane = self.lane_of(record)
                if lane is not None:
                    if lane in waiting:
                        waiting[lane].append((seq, record, intended))
                        continue
                    waiting[lane] = deque()
                queue.put_nowait((seq, record, intended, lane))
                if idle < queue.qsize() and len(workers) < limit:
                    workers.append(asyncio.create_task(worker()))
            await queue.join()

        admitting = asyncio.create_task(admit())
        try:
            await asyncio.wait({admitting, crashed}, return_when=asyncio.FIRST_COMPLETED)
            if crashed.done():
                crashed.result()  # raises the worker's exception
            admitting.result()
        finally:
            admitting.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(admitting, *workers, return_exceptions=True)

    def lane_of(self, record: Record) -> str | None:
        # The same key partitions records into shards (shadow.replay.partition): a lane never splits.
        return lane_of(record, self._settings.lane, self._lane_regex)

    async def _one_guarded(self, seq: int, record: Record, intended: float | None) -> None:
        """Send one record and finish it; an unexpected exception while it is prepared or
        sent makes it an `internal` failure. A bug in `finish` is raised: it is the
        pipeline's to contain (shadow.run.pipeline), and past it nothing is the record's."""
        try:
            exchange = await self._one(seq, record, intended)
        except Exception as exc:  # noqa: BLE001 - one record's bug must not end the run
            outcome = internal_failure(exc)
            endpoint = record.name or f"{record.method} {infer_template(record.path)}"
            outcomes: dict[str, Outcome] = dict.fromkeys(self._targets, outcome)
            exchange = Exchange(seq, record, endpoint, CompareRules(), outcomes)
        self.pending.pop(seq, None)
        try:
            self._finish(exchange)
        finally:
            self._release(seq)

    async def _one(self, seq: int, record: Record, intended: float | None) -> Exchange:
        prepared = self._prepare(record)
        if prepared.failure is not None:
            outcomes: dict[str, Outcome] = dict.fromkeys(self._targets, prepared.failure)
        else:
            self.in_flight += 1
            targets = self._concurrent()
            try:
                results = await self._send_all(targets, seq, record, prepared, intended)
            finally:
                self.in_flight -= 1
            outcomes = {**prepared.given, **dict(zip(targets, results, strict=True))}
            if prepared.reference is not None:
                await self._ask_again(seq, record, prepared, outcomes)
        return Exchange(seq, record, prepared.endpoint, prepared.rules, outcomes)

    async def _send_all(
        self,
        targets: list[str],
        seq: int,
        record: Record,
        prepared: Prepared,
        intended: float | None,
    ) -> list[Outcome]:
        """Each target's outcome, in `targets` order, the requests sent at once.

        What `asyncio.gather` did, with one task fewer per record: the first target is sent
        from this task, and every other from a task of its own, which starts once the first
        request is written, in order (as gather's tasks would have). A target down gets its
        failure without a task. When this is cancelled, or one send raises (a bug: the record
        becomes an `internal` error), the other sends are cancelled rather than left running
        for a record that is already finished."""
        if not targets:
            return []
        down = prepared.down
        loop = asyncio.get_running_loop()
        others: list[asyncio.Task[Outcome] | None] = [
            None
            if name in down
            else loop.create_task(self._send(name, seq, record, prepared, intended))
            for name in targets[1:]
        ]
        try:
            first = targets[0]
            results = [
                down[first]
                if first in down
                else await self._send(first, seq, record, prepared, intended)
            ]
            for name, task in zip(targets[1:], others, strict=True):
                results.append(down[name] if task is None else await task)
        except BaseException:
            for task in others:
                if task is not None:
                    task.cancel()
            raise
        return results

    def _concurrent(self) -> list[str]:
        """The targets sent a record at once: a secondary only ever answers as a reference."""
        return [name for name in self._targets if name != "secondary"]

    async def _ask_again(
        self, seq: int, record: Record, prepared: Prepared, outcomes: dict[str, Outcome]
    ) -> None:
        """The reference answer, asked after the primary answered so clock fields move on."""
        target = prepared.reference
        assert target is not None
        key = "secondary" if target == "secondary" else REPEAT
        if target in prepared.down:
            outcomes[key] = prepared.down[target]
            return
        self.in_flight += 1
        try:
            outcomes[key] = await self._send(target, seq, record, prepared, None)
        finally:
            self.in_flight -= 1

    def request_headers(
        self,
        target: str,
        record: Record,
        extra: tuple[tuple[str, str], ...],
        drop: frozenset[str] = frozenset(),
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        replaced = {name.lower() for name, _ in extra} | drop
        for name, value in record.headers:
            lower = name.lower()
            if lower in HOP_BY_HOP_HEADERS or lower in replaced:
                continue
            headers.add(name, value)
        if self._settings.host_header == "preserve":
            host = record.header("host")
            if host:
                headers["Host"] = host
        if record.has_json_body and "content-type" not in headers:
            headers["Content-Type"] = "application/json"
        for name, value in (*extra, *self._targets[target].headers):
            headers[name] = value
        return headers

    async def _send(
        self, target: str, seq: int, record: Record, prepared: Prepared, intended: float | None
    ) -> Outcome:
        if prepared.rewrite:
            record = prepared.rewrite.get(target, record)
        url = self._urls[target].to(request_target(record.path))
        headers = self.request_headers(target, record, prepared.headers, prepared.drop)
        data = record.body_bytes
        if self._before_send is not None:
            changed = self._before_send(target, record, headers, data)
            if isinstance(changed, Failure):
                return changed
            headers, data = changed
        started = time.perf_counter()
        # Latency counts from the intended start when pacing, so a slow server cannot hide
        # its slowness by delaying the requests that follow (no coordinated omission).
        origin = min(started, intended) if intended is not None else started
        request = Request(record.method, target, url, headers, data, origin)
        outcome = await self._transport.send(request, self.budget)
        if isinstance(outcome, Response):
            self._held[seq] = self._held.get(seq, 0) + len(outcome.body)
        return outcome

    def _release(self, seq: int) -> None:
        """Give record `seq`'s bodies back to the budget, once its exchange is finished."""
        self.budget.give(self._held.pop(seq, 0))


class TargetURL:
    """A target's URL with a request target after it: the URL `base + request_target` parses
    to, built from the base's parts read once (half the cost of parsing the whole string for
    every request). A base with a query or a fragment (which no config gives) is parsed
    whole, as it always was."""

    def __init__(self, base: str) -> None:
        self.base = base
        url = URL(base, encoded=True)
        prefix = "" if url.raw_path == "/" and not base.endswith("/") else url.raw_path
        whole = "?" in base or "#" in base
        self._parts = None if whole else (url.scheme, url.raw_authority, prefix)

    def to(self, target: str) -> URL:
        """The URL of `target` (a path, `?query` and `#fragment`, already encoded)."""
        if self._parts is None or not target.startswith("/"):
            return URL(self.base + target, encoded=True)
        scheme, authority, prefix = self._parts
        head, _, fragment = target.partition("#")
        path, _, query = head.partition("?")
        return URL.build(
            scheme=scheme,
            authority=authority,
            path=prefix + path,
            query_string=query,
            fragment=fragment,
            encoded=True,
        )


def internal_failure(exc: BaseException) -> Failure:
    """What an unexpected exception while a record is handled makes of it: an `internal`
    error naming the exception, so the bug is seen and the record still counted."""
    return Failure("internal", f"a bug in shadow: {type(exc).__name__}: {exc}")
