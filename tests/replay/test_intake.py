"""Intake over plain iterators: numbering, limits, filters, problems, loops, shards, pacing."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from shadow.config.replay import LaneRule, RateSpec
from shadow.config.settings import Shard
from shadow.model import InputProblem, Item, Record, UnreadableInput
from shadow.replay.intake import BATCH, Intake
from shadow.replay.pacing import Dispatch, Pacer, RatePacer, Unpaced
from shadow.replay.partition import Partition

# A hang guard, never a timing assertion: an intake that does not end fails here.
GUARD_S = 5.0

Entry = tuple[int, Record, float | None]


@pytest.fixture(autouse=True)
async def _reader_threads_end_with_the_test() -> AsyncIterator[None]:
    """Wait for the reader threads a test started: an intake that stops before its input
    ends does not join its thread, and one still putting its last batch when the loop
    closes leaves a never-awaited `Queue.put`, which would fail a later test."""
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        await asyncio.to_thread(thread.join, GUARD_S)
        assert not thread.is_alive(), f"{thread.name} still reading"


class Source:
    """`open_items` for an Intake: the i-th opening reads `passes[i]`; one more fails the test,
    so a loop that would not end is caught at once."""

    def __init__(self, *passes: Sequence[Item]) -> None:
        self.passes = passes
        self.opened = 0

    def __call__(self) -> Iterator[Item]:
        assert self.opened < len(self.passes), f"input opened more than {self.opened} times"
        self.opened += 1
        return iter(self.passes[self.opened - 1])


@dataclass
class Run:
    """What an intake handed over and reported."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    skipped: list[Record] = field(default_factory=list)
    log: list[tuple[str, int]] = field(default_factory=list)  # ("dispatch" | "yield", seq)

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _, _ in self.entries]

    def numbered(self) -> list[tuple[int, Record]]:
        return [(seq, record) for seq, record, _ in self.entries]


def make_intake(
    open_items: Callable[[], Iterator[Item]],
    run: Run,
    *,
    pacer: Pacer | None = None,
    closing: asyncio.Event | None = None,
    limit: int | None = None,
    loop: bool = False,
    methods: tuple[str, ...] = (),
    keep: Callable[[Item, int], bool] | None = None,
    streaming: bool = False,
) -> Intake:
    return Intake(
        open_items,
        Dispatch(pacer or Unpaced()),
        closing or asyncio.Event(),
        limit=limit,
        loop=loop,
        methods=methods,
        on_problem=run.problems.append,
        on_skipped=run.skipped.append,
        on_dispatch=lambda seq: run.log.append(("dispatch", seq)),
        keep=keep,
        streaming=streaming,
    )


async def consume(
    intake: Intake, run: Run, after_each: Callable[[Entry], None] = lambda _: None
) -> Run:
    async def go() -> None:
        async for entry in intake.records():
            run.log.append(("yield", entry[0]))
            run.entries.append(entry)
            after_each(entry)

    await asyncio.wait_for(go(), GUARD_S)
    return run


async def run_intake(*passes: Sequence[Item], **options: Any) -> tuple[Run, Intake, Source]:
    """Read `passes` (one per opening of the input) to the end; what the intake did."""
    source, run = Source(*passes), Run()
    intake = make_intake(source, run, **options)
    await consume(intake, run)
    return run, intake, source


def records(n: int) -> list[Record]:
    return [Record("GET", f"/r/{i}") for i in range(n)]


def seq_of(entry: tuple[int, Record]) -> int:
    return entry[0]


def problem(line: int) -> InputProblem:
    return InputProblem("log.jsonl", line, f"line {line} is not JSON")


async def test_records_are_numbered_in_input_order_across_batches() -> None:
    items = records(2 * BATCH + 88)
    run, intake, source = await run_intake(items)

    assert run.numbered() == list(enumerate(items))
    assert all(due is None for _, _, due in run.entries)
    # Each record is announced to on_dispatch just before it is handed over.
    assert run.log == [(kind, seq) for seq in range(len(items)) for kind in ("dispatch", "yield")]
    assert (intake.dispatch.sent, intake.dispatch.passes, source.opened) == (len(items), 1, 1)
    assert intake.dispatch.ended is not None


@pytest.mark.parametrize("limit", [0, 1, 3, 10, 11])
async def test_limit_stops_after_that_many_records(limit: int) -> None:
    items = records(10)
    run, intake, _ = await run_intake(items, limit=limit)
    assert run.numbered() == list(enumerate(items))[:limit]
    assert intake.dispatch.sent == min(limit, 10)


async def test_records_of_other_methods_are_skipped_without_a_seq() -> None:
    get_a, post_b, head_c, delete_d, get_e = (
        Record(m, f"/{p}")
        for m, p in zip(("GET", "POST", "HEAD", "DELETE", "GET"), "abcde", strict=True)
    )
    run, _, _ = await run_intake([get_a, post_b, head_c, delete_d, get_e], methods=("GET", "HEAD"))
    assert run.numbered() == [(0, get_a), (1, head_c), (2, get_e)]
    assert run.skipped == [post_b, delete_d]


async def test_problems_are_reported_in_order_and_take_no_seq() -> None:
    a, b = records(2)
    first, second = problem(1), problem(3)
    unreadable = UnreadableInput("other.log", 0, "no known format")
    run, _, _ = await run_intake([first, a, second, unreadable, b])
    assert run.numbered() == [(0, a), (1, b)]
    assert run.problems == [first, second, unreadable]


async def test_the_limit_counts_only_records_sent() -> None:
    a, b, c = records(3)
    post = Record("POST", "/skipped")
    late = problem(9)  # after the limit: never reached
    run, _, _ = await run_intake([problem(1), post, a, b, late, c], limit=2, methods=("GET",))
    assert run.numbered() == [(0, a), (1, b)]
    assert run.problems == [problem(1)] and run.skipped == [post]


async def test_loop_reads_the_input_again_for_each_pass() -> None:
    items = records(3)
    run, intake, source = await run_intake(items, items, items, loop=True, limit=7)
    assert run.numbered() == [(seq, items[seq % 3]) for seq in range(7)]
    assert (intake.dispatch.passes, source.opened) == (2, 3)


@pytest.mark.parametrize(
    "second_pass",
    [[], [problem(1)], [Record("POST", "/filtered")]],
    ids=["empty", "only-problems", "only-other-methods"],
)
async def test_loop_ends_after_a_pass_that_sends_nothing(second_pass: list[Item]) -> None:
    items = records(2)
    run, intake, source = await run_intake(items, second_pass, items, loop=True, methods=("GET",))
    assert run.numbered() == list(enumerate(items))
    assert (intake.dispatch.passes, source.opened) == (2, 2)
    assert run.problems == [p for p in second_pass if isinstance(p, InputProblem)]


async def test_loop_over_an_input_with_no_records_ends_after_one_pass() -> None:
    run, intake, source = await run_intake([problem(1)], [problem(1)], loop=True)
    assert run.entries == [] and run.problems == [problem(1)]
    assert (intake.dispatch.passes, source.opened) == (1, 1)


def mixed_input() -> list[Item]:
    """Records, problems and a record of a filtered method, at positions 0 to 7."""
    return [
        Record("GET", "/0"),
        problem(2),
        Record("POST", "/2"),
        Record("GET", "/3"),
        Record("GET", "/4"),
        problem(6),
        Record("GET", "/6"),
        Record("GET", "/7"),
    ]


def by_parity(parity: int) -> Callable[[Item, int], bool]:
    return lambda _, position: position % 2 == parity


async def test_records_another_shard_keeps_still_take_a_seq() -> None:
    items = mixed_input()
    even, _, _ = await run_intake(items, methods=("GET",), keep=by_parity(0))
    odd, _, _ = await run_intake(items, methods=("GET",), keep=by_parity(1))

    assert even.numbered() == [(0, items[0]), (2, items[4]), (3, items[6])]
    assert even.problems == [] and even.skipped == [items[2]]
    assert odd.numbered() == [(1, items[3]), (4, items[7])]
    assert odd.problems == [items[1], items[5]] and odd.skipped == []


@pytest.mark.parametrize("limit", [None, 3, 5])
async def test_two_shards_together_replay_what_one_run_does(limit: int | None) -> None:
    items = mixed_input()
    whole, _, _ = await run_intake(items, methods=("GET",), limit=limit)
    shards = [
        (await run_intake(items, methods=("GET",), limit=limit, keep=by_parity(p)))[0]
        for p in (0, 1)
    ]
    assert sorted((e for s in shards for e in s.numbered()), key=seq_of) == whole.numbered()
    assert sorted((p for s in shards for p in s.problems), key=lambda p: p.line) == whole.problems
    assert [r for s in shards for r in s.skipped] == whole.skipped


async def test_a_partition_by_lane_splits_a_run_into_disjoint_shares() -> None:
    items: list[Item] = [
        Record("GET", f"/{i}", lane=f"user-{i % 4}" if i % 3 else None) for i in range(60)
    ]
    whole, _, _ = await run_intake(items)
    shares = []
    for index in range(3):
        partition = Partition(Shard(index, 3), LaneRule())
        shares.append((await run_intake(items, keep=partition.owns))[0].numbered())

    assert sorted((e for share in shares for e in share), key=seq_of) == whole.numbered()
    assert all(shares), "every shard gets some of 60 records"
    for lane in {r.lane for r in items if isinstance(r, Record) and r.lane}:
        holders = [i for i, share in enumerate(shares) if any(r.lane == lane for _, r in share)]
        assert len(holders) == 1, f"lane {lane} split across shards {holders}"


async def test_closing_stops_intake_between_records() -> None:
    items = records(3)
    source, run, closing = Source(*[items] * 5), Run(), asyncio.Event()
    intake = make_intake(source, run, closing=closing, loop=True)

    await consume(intake, run, lambda entry: closing.set() if entry[0] == 4 else None)

    assert run.seqs == [0, 1, 2, 3, 4]
    assert intake.dispatch.ended is not None


async def test_closing_wakes_an_intake_waiting_for_a_due_time() -> None:
    items = records(3)
    source, run, closing = Source(items), Run(), asyncio.Event()
    # The second record is due in 1000 s: only closing can end this intake in time.
    intake = make_intake(source, run, closing=closing, pacer=RatePacer(RateSpec(0.001, 0.001)))
    loop = asyncio.get_running_loop()

    await consume(intake, run, lambda _: loop.call_soon(closing.set))

    assert run.seqs == [0]
    assert intake.dispatch.sent == 1


async def test_a_constant_rate_gives_each_record_its_due_time_across_passes() -> None:
    items = records(3)
    source, run = Source(items, items, items), Run()
    intake = make_intake(source, run, pacer=RatePacer(RateSpec(1000, 1000)), loop=True, limit=7)
    await consume(intake, run)

    started = intake.dispatch.started
    assert [(seq, due) for seq, _, due in run.entries] == [
        (n, started + n / 1000) for n in range(7)
    ]
    assert intake.dispatch.sent == 7


async def test_a_ramp_gives_each_record_its_due_time() -> None:
    start, end, ramp_s = 1000.0, 3000.0, 0.01  # 20 records in the ramp, then 3000 a second
    slope = (end - start) / ramp_s
    source, run = Source(records(30)), Run()
    intake = make_intake(source, run, pacer=RatePacer(RateSpec(start, end, ramp_s)))
    await consume(intake, run)

    def offset(n: int) -> float:
        # n records by t: start*t + slope*t^2/2 during the ramp, then `end` a second.
        if n < 20:
            return (-start + math.sqrt(start**2 + 2 * slope * n)) / slope
        return ramp_s + (n - 20) / end

    started = intake.dispatch.started
    assert run.seqs == list(range(30))
    for seq, _, due in run.entries:
        assert due == pytest.approx(started + offset(seq), abs=1e-9), seq


async def test_a_streaming_intake_hands_each_record_over_as_it_is_read() -> None:
    first, second = records(2)
    first_taken = threading.Event()

    def gated() -> Iterator[Item]:
        yield first
        # Blocks the reader thread until the consumer has the first record: a batching
        # intake would wait for a full batch and never hand it over.
        assert first_taken.wait(GUARD_S), "the first record was held back"
        yield second

    run = Run()
    intake = make_intake(gated, run, streaming=True)
    await consume(intake, run, lambda entry: first_taken.set())

    assert run.numbered() == [(0, first), (1, second)]


class BugInReader(Exception):
    """What a bug in a log reader would raise."""


@pytest.mark.parametrize("bad_at", [3, BATCH + 3])
async def test_a_bug_in_a_reader_ends_intake_with_it(bad_at: int) -> None:
    # Before, the reading thread died and intake waited forever for the rest of the input.
    def reading() -> Iterator[Item]:
        for i, record in enumerate(records(BATCH * 2)):
            if i == bad_at:
                raise BugInReader(f"line {i + 1}")
            yield record

    run = Run()
    with pytest.raises(BugInReader, match=f"line {bad_at + 1}"):
        await consume(make_intake(reading, run), run)
    assert run.seqs == list(range(bad_at))  # what was read before it was handed over
