"""The Replayer against two in-process servers on 127.0.0.1: lanes, admission, what goes out."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import RawTestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.config.targets import TargetConfig
from shadow.model import (
    CompareRules,
    Exchange,
    Failure,
    Headers,
    Record,
    Response,
    json_body_bytes,
    request_target,
)
from shadow.replay.pool import Prepared, Replayer, TargetURL
from shadow.replay.transport import AiohttpTransport
from shadow.run.lifecycle import client_session

# A hang guard, never a timing assertion: a broken replayer fails the test here instead of
# waiting for pytest-timeout. Every wait in these tests is on an event that a correct
# replayer sets at once.
GUARD_S = 5.0

# Headers the HTTP client writes itself, whatever the record holds.
CLIENT_HEADERS = frozenset(("host", "content-length"))

Answer = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as a target received it."""

    method: str
    raw_path: str
    headers: list[tuple[str, str]]  # names lowercased, in the order received
    body: bytes

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def recorded_part(self) -> list[tuple[str, str]]:
        """The headers that came from the record (the client's own left out), sorted."""
        return sorted((k, v) for k, v in self.headers if k not in CLIENT_HEADERS)


@dataclass
class Target:
    """An in-process server that keeps every request it gets, then answers with `answer`."""

    name: str
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    arrived: defaultdict[str, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )
    release: asyncio.Event = field(default_factory=asyncio.Event)  # set on teardown
    answer: Answer | None = None
    on_arrival: Callable[[Seen], None] | None = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(
            request.method,
            request.raw_path,
            [(k.decode().lower(), v.decode()) for k, v in request.raw_headers],
            body,
        )
        self.seen.append(seen)
        if self.on_arrival is not None:
            self.on_arrival(seen)
        self.arrived[request.raw_path].set()
        if self.answer is not None:
            return await self.answer(request)
        return web.json_response({"target": self.name, "path": request.raw_path})

    def paths(self) -> list[str]:
        return [s.raw_path for s in self.seen]


@dataclass
class Pair:
    """The primary and the candidate, each a Target on its own port."""

    primary: Target
    candidate: Target

    def targets(self, headers: Mapping[str, Headers] | None = None) -> dict[str, TargetConfig]:
        """The two as configured targets, each with its `headers` (none by default)."""
        headers = headers or {}
        return {
            t.name: TargetConfig(t.name, t.url, headers=headers.get(t.name, ())) for t in self.both
        }

    @property
    def both(self) -> tuple[Target, Target]:
        return self.primary, self.candidate


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    pair = Pair(Target("primary"), Target("candidate"))
    async with contextlib.AsyncExitStack() as stack:
        for target in pair.both:
            server = RawTestServer(target.handle, host="127.0.0.1")
            await stack.enter_async_context(server)
            target.url = f"http://127.0.0.1:{server.port}"
        try:
            yield pair
        finally:
            for target in pair.both:
                target.release.set()  # no handler still waits when the servers close


def plain(record: Record) -> Prepared:
    return Prepared(f"{record.method} {record.path}", CompareRules(), ())


async def numbered(
    records: Iterable[Record], intended: float | None = None
) -> AsyncIterator[tuple[int, Record, float | None]]:
    for seq, record in enumerate(records):
        yield seq, record, intended


async def replay(
    targets: dict[str, TargetConfig],
    records: AsyncIterator[tuple[int, Record, float | None]] | Iterable[Record],
    settings: ReplayConfig | None = None,
    prepare: Callable[[Record], Prepared] = plain,
    on_finish: Callable[[Exchange], None] | None = None,
    replayer_ref: list[Replayer] | None = None,
) -> list[Exchange]:
    """Run one Replayer over `records`; the exchanges in the order they were finished."""
    finished: list[Exchange] = []

    def finish(exchange: Exchange) -> None:
        finished.append(exchange)
        if on_finish is not None:
            on_finish(exchange)

    feed = records if isinstance(records, AsyncIterator) else numbered(records)
    async with client_session() as session:
        settings = settings or ReplayConfig()
        transport = AiohttpTransport(session, settings)
        replayer = Replayer(transport, targets, settings, prepare, finish)
        if replayer_ref is not None:
            replayer_ref.append(replayer)
        await asyncio.wait_for(replayer.run(feed), 2 * GUARD_S)
        assert replayer.pending == {} and replayer.in_flight == 0
    return finished


def all_answered_200(exchanges: list[Exchange]) -> bool:
    return all(
        isinstance(o, Response) and o.status == 200 for e in exchanges for o in e.outcomes.values()
    )


def by_seq(exchanges: list[Exchange]) -> dict[int, Exchange]:
    return {e.seq: e for e in exchanges}


async def test_every_record_is_finished_exactly_once_with_both_answers(pair: Pair) -> None:
    records = [Record("GET", f"/items/{i}") for i in range(50)]
    finished = await replay(pair.targets(), records, ReplayConfig(concurrency=4))

    assert sorted(e.seq for e in finished) == list(range(50))
    for exchange in finished:
        assert exchange.record is records[exchange.seq]
        assert exchange.endpoint == f"GET /items/{exchange.seq}"
        assert set(exchange.outcomes) == {"primary", "candidate"}
        for name, outcome in exchange.outcomes.items():
            assert isinstance(outcome, Response) and outcome.status == 200
            assert orjson.loads(outcome.body) == {"target": name, "path": exchange.record.path}
    for target in pair.both:
        assert sorted(target.paths()) == sorted(r.path for r in records)


def hold_until_arrived(target: Target, holds: dict[str, str]) -> Answer:
    """Answer `path` only once `holds[path]` has arrived at the same target."""

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        other = holds.get(request.raw_path)
        if other is not None:
            await asyncio.wait_for(target.arrived[other].wait(), GUARD_S)
        return web.json_response({"path": request.raw_path})

    return answer


async def test_one_lanes_records_go_in_order_while_other_lanes_overlap(pair: Pair) -> None:
    records = [
        Record("GET", "/a/0", lane="a"),
        Record("GET", "/a/1", lane="a"),
        Record("GET", "/a/2", lane="a"),
        Record("GET", "/b/0", lane="b"),
    ]
    finished_paths: list[str] = []
    finished_at_arrival: dict[tuple[str, str], list[str]] = {}
    for target in pair.both:
        # /a/0 is held until /b/0 reaches the same server: lane b overtakes a held lane a.
        target.answer = hold_until_arrived(target, {"/a/0": "/b/0"})
        target.on_arrival = lambda seen, name=target.name: finished_at_arrival.setdefault(
            (name, seen.raw_path), list(finished_paths)
        )

    finished = await replay(
        pair.targets(),
        records,
        ReplayConfig(concurrency=4),
        on_finish=lambda e: finished_paths.append(e.record.path),
    )

    assert all_answered_200(finished)
    lane_a = [p for p in finished_paths if p.startswith("/a/")]
    assert lane_a == ["/a/0", "/a/1", "/a/2"]
    for target in pair.both:
        assert [p for p in target.paths() if p.startswith("/a/")] == lane_a
        # Each record of lane a went out only once the one before it had finished.
        assert "/a/0" in finished_at_arrival[(target.name, "/a/1")]
        assert "/a/1" in finished_at_arrival[(target.name, "/a/2")]
        # /b/0 went out while /a/0 was still unanswered.
        assert "/a/0" not in finished_at_arrival[(target.name, "/b/0")]


async def test_records_without_a_lane_overlap(pair: Pair) -> None:
    records = [Record("GET", "/x/0"), Record("GET", "/x/1")]
    for target in pair.both:
        target.answer = hold_until_arrived(target, {"/x/0": "/x/1"})
    # /x/0 is answered only once /x/1 has arrived: a 500 (the hold gave up) if they did not
    # overlap.
    finished = await replay(pair.targets(), records, ReplayConfig(concurrency=2))
    assert sorted(e.seq for e in finished) == [0, 1]
    assert all_answered_200(finished)


async def test_admission_never_exceeds_twice_the_concurrency(pair: Pair) -> None:
    concurrency, total = 2, 10
    gate = asyncio.Event()  # every request is held until the bound has been reached
    replayers: list[Replayer] = []
    finished: list[Exchange] = []
    at_pull: list[tuple[int, int]] = []  # (admitted but unfinished, finished) at each pull
    in_flight_at_arrival: list[int] = []

    async def held(request: web.BaseRequest) -> web.StreamResponse:
        await asyncio.wait_for(gate.wait(), GUARD_S)
        return web.json_response({})

    for target in pair.both:
        target.answer = held
        target.on_arrival = lambda _: in_flight_at_arrival.append(replayers[0].in_flight)

    async def feed() -> AsyncIterator[tuple[int, Record, float | None]]:
        for seq in range(total):
            at_pull.append((len(replayers[0].pending), len(finished)))
            if seq == 2 * concurrency:
                gate.set()
            yield seq, Record("GET", f"/held/{seq}"), None
        at_pull.append((len(replayers[0].pending), len(finished)))

    await replay(
        pair.targets(),
        feed(),
        ReplayConfig(concurrency=concurrency),
        on_finish=finished.append,
        replayer_ref=replayers,
    )

    assert sorted(e.seq for e in finished) == list(range(total))
    assert max(pending for pending, _ in at_pull) == 2 * concurrency
    # With all requests held, the dispatcher admitted 2x concurrency records and no more...
    assert at_pull[2 * concurrency] == (2 * concurrency, 0)
    # ...and admitted the next one only once a record had finished.
    for pending, done in at_pull[2 * concurrency + 1 :]:
        assert pending <= 2 * concurrency and done >= 1
    assert 0 < max(in_flight_at_arrival) <= concurrency


async def test_a_prepared_failure_is_finished_without_sending(pair: Pair) -> None:
    failure = Failure("auth", "no [auth.nope] profile is configured")

    def prepare(record: Record) -> Prepared:
        if record.path == "/unsendable":
            return Prepared("unsendable", CompareRules(), (), failure)
        return plain(record)

    records = [Record("GET", "/before"), Record("GET", "/unsendable"), Record("GET", "/after")]
    finished = by_seq(await replay(pair.targets(), records, prepare=prepare))

    assert finished[1].outcomes == {"primary": failure, "candidate": failure}
    assert finished[1].endpoint == "unsendable"
    assert all(isinstance(o, Response) for o in finished[0].outcomes.values())
    assert all(isinstance(o, Response) for o in finished[2].outcomes.values())
    for target in pair.both:
        assert sorted(target.paths()) == ["/after", "/before"]


async def test_a_down_target_gets_its_failure_and_is_not_contacted(pair: Pair) -> None:
    down = Failure("server_down", "not sent: the target is restarting after it exited")

    def prepare(record: Record) -> Prepared:
        return Prepared("e", CompareRules(), (), down={"candidate": down})

    finished = await replay(pair.targets(), [Record("GET", "/while-down")], prepare=prepare)

    (exchange,) = finished
    assert exchange.outcomes["candidate"] is down
    primary = exchange.outcomes["primary"]
    assert isinstance(primary, Response) and primary.status == 200
    assert pair.primary.paths() == ["/while-down"]
    assert pair.candidate.seen == []


HOP_BY_HOP = (
    ("Host", "recorded.example"),
    ("Content-Length", "999"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "Upgrade"),
    ("Keep-Alive", "timeout=5"),
    ("TE", "trailers"),
    ("Upgrade", "websocket"),
    ("Proxy-Connection", "keep-alive"),
    ("Expect", "100-continue"),
    ("Trailer", "X-Checksum"),
)


@pytest.mark.parametrize(
    ("record", "raw_path", "recorded_headers"),
    [
        pytest.param(
            Record(
                "GET",
                "/odd path/ünï/{x}|^?q=a b&y=%41&z=[1]",
                (("X-Trace", "t-1"), ("X-Multi", "one"), ("X-Multi", "two"), *HOP_BY_HOP),
            ),
            "/odd%20path/%C3%BCn%C3%AF/%7Bx%7D%7C%5E?q=a%20b&y=%41&z=[1]",
            [("x-multi", "one"), ("x-multi", "two"), ("x-trace", "t-1")],
            id="get-odd-path",
        ),
        pytest.param(
            Record(
                "POST",
                "/upload",
                (("Content-Type", "image/png"), *HOP_BY_HOP),
                body_bytes=b"\x00\x01\xff\xfe\r\n\r\nraw\x00",
                body_form="b64",
            ),
            "/upload",
            [("content-type", "image/png")],
            id="post-binary",
        ),
        pytest.param(
            Record(
                "PUT",
                "/notes/1",
                (("Content-Type", "text/plain; charset=utf-8"),),
                body_bytes="héllo\n wörld ".encode(),
                body_form="text",
            ),
            "/notes/1",
            [("content-type", "text/plain; charset=utf-8")],
            id="put-text",
        ),
        pytest.param(
            Record("DELETE", "/notes/%2F1", (("X-Reason", "cleanup"),)),
            "/notes/%2F1",
            [("x-reason", "cleanup")],
            id="delete-encoded-slash",
        ),
    ],
)
async def test_the_request_sent_is_the_recorded_one(
    pair: Pair, record: Record, raw_path: str, recorded_headers: list[tuple[str, str]]
) -> None:
    await replay(pair.targets(), [record])
    for target in pair.both:
        (seen,) = target.seen
        assert seen.method == record.method
        assert seen.raw_path == raw_path
        assert seen.recorded_part() == recorded_headers
        assert seen.values("host") == [target.url.removeprefix("http://")]
        assert seen.body == (record.body_bytes or b"")
        if record.body_bytes is not None:
            assert seen.values("content-length") == [str(len(record.body_bytes))]


@pytest.mark.parametrize(
    ("recorded", "content_type"),
    [
        ((), "application/json"),
        ((("content-type", "application/merge-patch+json"),), "application/merge-patch+json"),
    ],
)
async def test_a_json_body_is_sent_with_a_json_content_type(
    pair: Pair, recorded: tuple[tuple[str, str], ...], content_type: str
) -> None:
    body = {"name": "é", "tags": [1, None, True]}
    record = Record(
        "PATCH", "/json", recorded, body=body, body_bytes=json_body_bytes(body), body_form="json"
    )
    await replay(pair.targets(), [record])
    for target in pair.both:
        (seen,) = target.seen
        assert seen.values("content-type") == [content_type]
        assert seen.body == b'{"name":"\xc3\xa9","tags":[1,null,true]}'


async def test_target_and_auth_headers_replace_recorded_ones(pair: Pair) -> None:
    record = Record(
        "GET",
        "/h",
        (
            ("X-Env", "recorded"),
            ("Authorization", "Bearer recorded"),
            ("Cookie", "session=recorded"),
            ("X-Keep", "kept"),
        ),
    )

    def prepare(record: Record) -> Prepared:
        minted = (("Authorization", "Bearer minted"),)
        return Prepared("e", CompareRules(), minted, drop=frozenset({"cookie"}))

    targets = pair.targets(
        {
            "primary": (("X-Env", "primary-env"), ("X-Only-Primary", "1")),
            "candidate": (("X-Env", "candidate-env"),),
        }
    )
    await replay(targets, [record], prepare=prepare)

    (primary,), (candidate,) = pair.primary.seen, pair.candidate.seen
    assert primary.recorded_part() == [
        ("authorization", "Bearer minted"),
        ("x-env", "primary-env"),
        ("x-keep", "kept"),
        ("x-only-primary", "1"),
    ]
    assert candidate.recorded_part() == [
        ("authorization", "Bearer minted"),
        ("x-env", "candidate-env"),
        ("x-keep", "kept"),
    ]


async def test_preserve_sends_the_recorded_host(pair: Pair) -> None:
    record = Record("GET", "/host", (("Host", "api.example.com"),))
    await replay(pair.targets(), [record], ReplayConfig(host_header="preserve"))
    for target in pair.both:
        assert target.seen[0].values("host") == ["api.example.com"]


async def test_a_reference_target_is_asked_again_after_both_answered(pair: Pair) -> None:
    arrivals: list[str] = []
    for target in pair.both:
        target.on_arrival = lambda _, name=target.name: arrivals.append(name)

    def prepare(record: Record) -> Prepared:
        return Prepared("e", CompareRules(), (), reference="primary")

    (exchange,) = await replay(pair.targets(), [Record("GET", "/again")], prepare=prepare)

    assert set(exchange.outcomes) == {"primary", "candidate", "repeat"}
    repeat = exchange.outcomes["repeat"]
    assert isinstance(repeat, Response) and orjson.loads(repeat.body)["target"] == "primary"
    assert sorted(arrivals[:2]) == ["candidate", "primary"] and arrivals[2:] == ["primary"]


async def test_latency_counts_from_the_intended_start(pair: Pair) -> None:
    intended = time.perf_counter() - 10.0  # the schedule wanted this record 10 s ago
    (exchange,) = await replay(pair.targets(), numbered([Record("GET", "/late")], intended))
    for outcome in exchange.outcomes.values():
        assert isinstance(outcome, Response) and outcome.latency_ms >= 10_000


async def test_an_answer_slower_than_the_timeout_is_a_timeout(pair: Pair) -> None:
    for target in pair.both:

        async def never(request: web.BaseRequest, target: Target = target) -> web.Response:
            await target.release.wait()  # set only on teardown
            return web.Response()

        target.answer = never

    (exchange,) = await replay(
        pair.targets(), [Record("GET", "/hang")], ReplayConfig(timeout_s=0.1)
    )

    for outcome in exchange.outcomes.values():
        assert isinstance(outcome, Failure)
        assert (outcome.kind, outcome.message) == ("timeout", "no complete answer within 0.1s")


async def test_a_refused_connection_is_refused(pair: Pair) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        port = closed.getsockname()[1]
        targets = pair.targets()
        targets["primary"] = TargetConfig("primary", f"http://127.0.0.1:{port}")
        (exchange,) = await replay(targets, [Record("GET", "/refused")])

    primary, candidate = exchange.outcomes["primary"], exchange.outcomes["candidate"]
    assert isinstance(primary, Failure) and primary.kind == "refused"
    assert isinstance(candidate, Response) and candidate.status == 200
    assert pair.candidate.paths() == ["/refused"]


def body_of(size: int, chunked: bool) -> Answer:
    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=b"x" * size)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"x" * (size // 2))
        await response.write(b"x" * (size - size // 2))
        await response.write_eof()
        return response

    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("size", "too_large"), [(16, False), (17, True)])
async def test_a_body_over_max_body_bytes_is_too_large(
    pair: Pair, chunked: bool, size: int, too_large: bool
) -> None:
    for target in pair.both:
        target.answer = body_of(size, chunked)

    (exchange,) = await replay(
        pair.targets(), [Record("GET", "/big")], ReplayConfig(max_body_bytes=16)
    )

    for outcome in exchange.outcomes.values():
        if too_large:
            assert isinstance(outcome, Failure) and outcome.kind == "too_large"
        else:
            assert isinstance(outcome, Response) and outcome.body == b"x" * size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_bodies_past_the_total_budget_are_over_budget_and_the_budget_comes_back(
    pair: Pair, chunked: bool
) -> None:
    # The budget holds one 1000-byte body: of each exchange's two, one is read and one is
    # refused; once each exchange is finished its bytes come back, so the next gets as much.
    for target in pair.both:
        target.answer = body_of(1000, chunked)
    refs: list[Replayer] = []
    settings = ReplayConfig(concurrency=1, max_body_bytes=1000, max_bodies_bytes=1000)

    exchanges = await replay(
        pair.targets(), [Record("GET", f"/big/{n}") for n in range(3)], settings, replayer_ref=refs
    )

    for exchange in exchanges:
        kinds = sorted(
            o.kind if isinstance(o, Failure) else "read" for o in exchange.outcomes.values()
        )
        assert kinds == ["over_budget", "read"]
    (replayer,) = refs
    assert replayer.budget.held_bytes == 0 and replayer.budget.peak_bytes == 1000


class BugInFinish(Exception):
    """What a bug in the code after the replayer (compare, tally, sink) would raise."""


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_bug_in_a_worker_ends_the_replay_with_it(pair: Pair, concurrency: int) -> None:
    # Before, the worker died unseen: the record was lost from every count (and the run could
    # pass), and once every worker was gone the replay waited forever.
    def finish(exchange: Exchange) -> None:
        if exchange.seq == 2:
            raise BugInFinish(f"seq {exchange.seq}")

    records = [Record("GET", f"/items/{n}") for n in range(8)]
    with pytest.raises(BugInFinish, match="seq 2"):
        await replay(
            pair.targets(), records, ReplayConfig(concurrency=concurrency), on_finish=finish
        )


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_bug_before_finish_is_that_records_internal_error(
    pair: Pair, concurrency: int
) -> None:
    # A bug while one record is prepared is that record's error (kind `internal`, naming
    # the exception); the workers go on with the rest, and nothing is lost or waited for.
    def prepare(record: Record) -> Prepared:
        if record.path.endswith(("/1", "/4")):
            raise BugInFinish(record.path)
        return plain(record)

    records = [Record("GET", f"/items/{n}") for n in range(6)]
    exchanges = await replay(
        pair.targets(), records, ReplayConfig(concurrency=concurrency), prepare=prepare
    )

    assert sorted(e.seq for e in exchanges) == list(range(6))
    failed = {e.record.path: e.outcomes for e in exchanges if e.failed_sides()}
    assert sorted(failed) == ["/items/1", "/items/4"]
    for outcomes in failed.values():
        for outcome in outcomes.values():
            assert isinstance(outcome, Failure) and outcome.kind == "internal"
            assert "BugInFinish" in outcome.message
    assert len(pair.primary.seen) == 4  # the two that failed were never sent


async def test_workers_start_as_records_arrive_not_all_at_once(pair: Pair) -> None:
    # Before, ReplayConfig(concurrency=N) started N worker tasks whatever the log held.
    tasks: list[int] = []

    def finish(exchange: Exchange) -> None:
        tasks.append(len(asyncio.all_tasks()))

    records = [Record("GET", f"/items/{n}") for n in range(3)]
    exchanges = await replay(
        pair.targets(), records, ReplayConfig(concurrency=10_000), on_finish=finish
    )
    assert len(exchanges) == 3
    assert max(tasks) < 50  # a few workers and the servers' handlers, not ten thousand


BASES = (
    "http://127.0.0.1:8080",
    "http://localhost",
    "http://[::1]:9000",
    "https://h.example:443",
    "http://h:80",
    "http://user:pw@h:1",
    "http://H.Example:8080",
    "http://h:1/api",
    "http://h:1/api/",
    "http://h:1/",
    "http://h:1/a%20b/./c/..",
    "http://h:1/x?fixed=1",
    "http://h:1#top",
)


@settings(max_examples=500, deadline=None)
@given(
    base=st.sampled_from(BASES),
    path=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
)
def test_a_target_url_is_the_url_its_whole_string_parses_to(base: str, path: str) -> None:
    # What Replayer sent to before: the URL of the whole string, base + a record's target.
    target = request_target("/" + path)
    built, parsed = TargetURL(base).to(target), URL(base + target, encoded=True)
    assert built == parsed
    for part in ("scheme", "raw_authority", "raw_host", "port", "raw_path", "raw_query_string"):
        assert getattr(built, part) == getattr(parsed, part), part
    assert (built.raw_fragment, built.raw_path_qs, str(built)) == (
        parsed.raw_fragment,
        parsed.raw_path_qs,
        str(parsed),
    )
