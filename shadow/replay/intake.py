"""Intake: a run's records, read in a worker thread, paced, looped, each counted once.

Reading is synchronous (files, gzip, stdin), so a daemon thread reads batches into a bounded
queue: a slow stdin never blocks the event loop, and at most a few batches wait in memory.
Pacing happens here, on the loop: each record gets its due time from the schedule and the
intake sleeps until then (waking at once if intake is closed). With `loop`, the inputs are
opened again after each pass; a pass that yields no record ends the run rather than spin.
An exception from a reader is a bug: intake ends with it, raised to the run, which then ends
as a bug does (exit 70) instead of waiting forever for the rest of the input.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator

from shadow.model import InputProblem, Item, Record
from shadow.replay.pacing import Dispatch

BATCH = 256


def _read_in_thread(
    items: Iterator[Item],
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[list[Item] | BaseException | None],
    batch_size: int = BATCH,
) -> None:
    # A daemon thread rather than the default executor: a read blocked on a quiet stdin must
    # not keep the process alive after the run has ended.
    def put(batch: list[Item] | BaseException | None) -> bool:
        """Hand `batch` to the loop; False when the run ended (and its loop closed) first."""
        put_one = queue.put(batch)
        try:
            asyncio.run_coroutine_threadsafe(put_one, loop).result()
        except (RuntimeError, concurrent.futures.CancelledError):
            put_one.close()  # never scheduled, or cancelled: nothing will await it
            return False
        return True

    batch: list[Item] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= batch_size:
                if not put(batch):
                    return
                batch = []
    except Exception as exc:  # noqa: BLE001 - a bug in a reader: the run ends with it, not waits
        if put(batch):
            put(exc)
        return
    if put(batch):
        put(None)


class Intake:
    """Yields `(seq, record, due)`; `due` is a perf_counter time, or None when unpaced."""

    def __init__(
        self,
        open_items: Callable[[], Iterator[Item]],
        dispatch: Dispatch,
        closing: asyncio.Event,
        *,
        limit: int | None,
        loop: bool,
        methods: tuple[str, ...],
        on_problem: Callable[[InputProblem], None],
        on_skipped: Callable[[Record], None],
        on_dispatch: Callable[[int], None],
        keep: Callable[[Item, int], bool] | None = None,
        streaming: bool = False,
        duration_s: float | None = None,
        before_pass: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.open_items = open_items
        self.dispatch = dispatch
        self.closing = closing
        self.limit = limit
        self.loop = loop
        self.methods = methods
        self.on_problem = on_problem
        self.on_skipped = on_skipped
        self.on_dispatch = on_dispatch
        self.keep = keep  # (item, position in the pass) -> whether this shard replays it
        # A pipe may pause for minutes (`tail -f log | shadow run -`): its records go out one
        # by one, never held back until a batch fills.
        self.batch_size = 1 if streaming else BATCH
        self.duration_s = duration_s
        # Awaited with the pass's number (0 first) before a pass reads its first record: the
        # run resets its targets there (shadow.run.reset); an exception from it ends intake.
        self.before_pass = before_pass

    async def records(self) -> AsyncGenerator[tuple[int, Record, float | None], None]:
        try:
            async with contextlib.aclosing(self._paced()) as entries:
                async for entry in entries:
                    yield entry
        finally:
            self.dispatch.end()

    async def _paced(self) -> AsyncGenerator[tuple[int, Record, float | None], None]:
        seq, dispatch = 0, self.dispatch
        while True:
            sent_before, position = dispatch.sent, -1
            if self.before_pass is not None:
                if self.limit is not None and seq >= self.limit:
                    return  # no pass follows: no reset for it
                await self.before_pass(dispatch.passes)
                if self.closing.is_set():
                    return
            async with contextlib.aclosing(self._read_pass()) as items:
                async for item in items:
                    if self.closing.is_set() or (self.limit is not None and seq >= self.limit):
                        return
                    position += 1
                    if self.keep is not None and not self.keep(item, position):
                        # Another shard's: not counted here, but numbered as in the whole
                        # run, so each shard's `seq` and `--limit` agree with one full run.
                        if isinstance(item, Record) and not (
                            self.methods and item.method not in self.methods
                        ):
                            seq += 1
                        continue
                    if isinstance(item, InputProblem):
                        self.on_problem(item)
                        continue
                    if self.methods and item.method not in self.methods:
                        self.on_skipped(item)
                        continue
                    due = dispatch.due(item.ts)
                    if due is not None and self._past_the_end(due):
                        # Wait for the duration's own timer, which closes intake and says so.
                        await self._sleep_until(self.dispatch.started + self._duration() + 1.0)
                        return
                    if due is not None and not await self._sleep_until(due):
                        return
                    dispatch.hold(due)
                    self.on_dispatch(seq)
                    yield seq, item, due
                    dispatch.admitted()
                    seq += 1
            dispatch.passes += 1
            if not self.loop or dispatch.sent == sent_before:
                return  # a pass that sent nothing would loop forever
            dispatch.pacer.new_pass()

    async def _read_pass(self) -> AsyncGenerator[Item, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Item] | BaseException | None] = asyncio.Queue(maxsize=4)
        items = self.open_items()
        threading.Thread(
            target=_read_in_thread, args=(items, loop, queue, self.batch_size), daemon=True
        ).start()
        while (batch := await queue.get()) is not None:
            if isinstance(batch, BaseException):
                raise batch
            for item in batch:
                yield item

    def _past_the_end(self, due: float) -> bool:
        # The schedule, not the timer, decides the last record of a `--duration` run: a
        # record due after the end is never started, even when a busy loop wakes up late.
        if self.duration_s is None:
            return False
        return due >= self.dispatch.started + self.duration_s

    def _duration(self) -> float:
        return self.duration_s or 0.0

    async def _sleep_until(self, due: float) -> bool:
        """Wait for `due`; False if intake closed meanwhile."""
        delay = due - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), delay)
        return not self.closing.is_set()
