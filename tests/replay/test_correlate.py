"""The correlation engine with plain values: learning from answers, rewriting requests per
target, hiding only the correlated differences, and what reaches each target on the wire."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
import pytest
from aiohttp import web

from shadow.compare.diff import diff_responses
from shadow.config.correlate import Capture, CorrelateConfig
from shadow.config.replay import LaneRule, ReplayConfig
from shadow.model import CompareRules, Exchange, Record, Response, json_body_bytes
from shadow.replay.correlate import Correlator
from shadow.replay.pool import Prepared, Replayer
from shadow.replay.transports import TRANSPORTS, Choice, open_transport
from shadow.run.lifecycle import client_session
from tests.replay.test_pool import GUARD_S, Pair, pair  # noqa: F401 - the fixture

ID = Capture("order_id", method="POST", route="/orders", pointer="/id")
ETAG = Capture("etag", route="/*", header="ETag")
RULES = CorrelateConfig(captures=(ID, ETAG))


def answer(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(
        status, (("Content-Type", "application/json"), *headers.items()), orjson.dumps(body), 1.0
    )


def record(
    method: str,
    path: str,
    body: Any = None,
    lane: str | None = "a",
    headers: tuple[tuple[str, str], ...] = (),
    response: Response | None = None,
) -> Record:
    if body is None:
        return Record(method, path, headers, lane=lane, response=response)
    return Record(
        method, path, headers, body, json_body_bytes(body), "json", lane=lane, response=response
    )


def finish(
    correlator: Correlator, rec: Record, primary: Response, candidate: Response, endpoint: str = ""
) -> Exchange:
    exchange = Exchange(
        0,
        rec,
        endpoint or f"{rec.method} {rec.path}",
        CompareRules(),
        {"primary": primary, "candidate": candidate},
    )
    correlator.learn(exchange)
    return exchange


def created(correlator: Correlator, lane: str = "a") -> None:
    rec = record("POST", "/orders", {"item": "book"}, lane=lane)
    assert correlator.prepare(rec) == {}
    finish(
        correlator,
        rec,
        answer({"id": 1001}, 201, ETag='"p-1"'),
        answer({"id": 1}, 201, ETag='"c-1"'),
    )


def test_a_later_request_gets_each_targets_own_value_everywhere_it_holds_it() -> None:
    correlator = Correlator(RULES, LaneRule())
    created(correlator)
    body = {"order": {"id": 1001, "ref": "1001", "count": 1001.0}, "other": 7}
    rec = record(
        "PUT",
        "/orders/1001/items?order=1001&x=1001x",
        body,
        headers=(("If-Match", '"p-1"'), ("X-Note", "1001 left")),
    )
    sent = correlator.prepare(rec)
    primary, candidate = sent["primary"], sent["candidate"]
    assert primary.path == rec.path and primary.body == body
    assert candidate.path == "/orders/1/items?order=1&x=1001x"
    assert candidate.header("If-Match") == '"c-1"' and candidate.header("X-Note") == "1001 left"
    # A member of the value's type, or its text, is the candidate's; a float is not an id.
    assert candidate.body == {"order": {"id": 1, "ref": "1", "count": 1001.0}, "other": 7}
    assert orjson.loads(candidate.body_bytes or b"") == candidate.body
    exchange = finish(correlator, rec, answer({}), answer({}))
    assert exchange.rules == CompareRules()  # equal answers: nothing to hide


def test_a_record_nothing_refers_to_goes_out_as_recorded() -> None:
    correlator = Correlator(RULES, LaneRule())
    created(correlator)
    assert correlator.prepare(record("GET", "/orders/1002")) == {}
    assert correlator.prepare(record("GET", "/orders/1001", lane="b")) == {}  # another lane
    assert correlator.prepare(record("GET", "/orders/1001", lane=None)) == {}  # no lane


def test_the_recorded_answer_gives_the_value_requests_hold() -> None:
    correlator = Correlator(RULES, LaneRule())
    recorded = answer({"id": 5000}, 201)
    rec = record("POST", "/orders", {"item": "book"}, response=recorded)
    correlator.prepare(rec)
    finish(correlator, rec, answer({"id": 1001}, 201), answer({"id": 1}, 201))
    sent = correlator.prepare(record("GET", "/orders/5000"))
    assert (sent["primary"].path, sent["candidate"].path) == ("/orders/1001", "/orders/1")


def test_only_the_correlated_values_are_hidden_and_their_type_still_compared() -> None:
    correlator = Correlator(RULES, LaneRule())
    rec = record("POST", "/orders", {"item": "book"})
    correlator.prepare(rec)
    primary = answer({"id": 1001, "total": 10}, 201)
    candidate = answer({"id": 1, "total": 11}, 201)
    exchange = finish(correlator, rec, primary, candidate)
    assert exchange.rules.normalize == (("/id", "volatile"),)
    diffs = diff_responses(primary, candidate, exchange.rules)
    assert [(d.path, d.kind) for d in diffs] == [("/total", "value")]
    # A later answer echoing the pair is hidden too; one holding the id as a string is not.
    rec = record("GET", "/orders/1001")
    correlator.prepare(rec)
    primary, candidate = answer({"id": 1001, "of": 1001}), answer({"id": "1", "of": 1})
    exchange = finish(correlator, rec, primary, candidate)
    assert exchange.rules.normalize == (("/of", "volatile"),)
    diffs = diff_responses(primary, candidate, exchange.rules)
    assert [(d.path, d.kind) for d in diffs] == [("/id", "type")]


def test_a_header_capture_hides_that_header_only() -> None:
    correlator = Correlator(RULES, LaneRule())
    rec = record("POST", "/orders", {})
    correlator.prepare(rec)
    exchange = finish(
        correlator, rec, answer({}, ETag='"p"', Tag="a"), answer({}, ETag='"c"', Tag="b")
    )
    assert exchange.rules.ignore_headers == ("etag",)


def test_auto_mode_confirms_a_pair_once_a_later_request_uses_it() -> None:
    correlator = Correlator(CorrelateConfig(mode="auto", min_length=16), LaneRule())
    rec = record("POST", "/orders", {})
    correlator.prepare(rec)
    token_p, token_c = "p" * 16, "c" * 16
    primary = answer({"id": 1001, "token": token_p, "name": "short-p", "n": True})
    candidate = answer({"id": 1, "token": token_c, "name": "short-c", "n": False})
    exchange = finish(correlator, rec, primary, candidate, "create")
    assert exchange.rules.normalize == ()  # not known to be ids yet
    sent = correlator.prepare(record("GET", f"/orders/1001?t={token_p}&name=short-p"))
    assert sent["candidate"].path == f"/orders/1?t={token_c}&name=short-p"
    finish(correlator, record("GET", "/x"), answer({}), answer({}))
    # The place the id came from is now known: the next create's id is hidden, in any lane.
    rec = record("POST", "/orders", {}, lane="b")
    correlator.prepare(rec)
    exchange = finish(
        correlator, rec, answer({"id": 1002, "count": 3}), answer({"id": 2, "count": 4}), "create"
    )
    assert exchange.rules.normalize == (("/id", "volatile"),)


def test_a_capture_name_fills_placeholders_or_is_missing() -> None:
    correlator = Correlator(RULES, LaneRule())
    early = record("GET", "/orders/{order_id}")
    sent = correlator.prepare(early)
    assert sent["candidate"].path == "/orders/{order_id}"
    exchange = Exchange(0, early, "GET", CompareRules(), {})
    said = correlator.learn(exchange)
    assert said is not None and said.missing == [("order_id", "path")]
    created(correlator)
    rec = record(
        "PATCH",
        "/orders/{order_id}",
        {"id": "{order_id}", "note": "n {order_id}"},
        headers=(("If-Match", "{etag}"),),
    )
    sent = correlator.prepare(rec)
    assert sent["candidate"].path == "/orders/1"
    assert sent["candidate"].body == {"id": 1, "note": "n 1"}
    assert sent["primary"].body == {"id": 1001, "note": "n 1001"}
    assert sent["candidate"].header("If-Match") == '"c-1"'


def test_two_answers_mapping_one_value_apart_are_a_conflict_and_forget_clears() -> None:
    correlator = Correlator(RULES, LaneRule())
    created(correlator)
    rec = dataclasses.replace(record("POST", "/orders", {}), line=2)  # another create
    correlator.prepare(rec)
    exchange = Exchange(
        1,
        rec,
        "POST /orders",
        CompareRules(),
        {"primary": answer({"id": 1001}), "candidate": answer({"id": 2})},
    )
    said = correlator.learn(exchange)
    assert said is not None
    assert said.conflicts == [
        {
            "name": "order_id",
            "place": "/id",
            "recorded": 1001,
            "before": {"primary": 1001, "candidate": 1},
            "after": {"primary": 1001, "candidate": 2},
        }
    ]
    assert correlator.prepare(record("GET", "/orders/1001"))["candidate"].path == "/orders/2"
    correlator.forget()
    assert correlator.prepare(record("GET", "/orders/1001")) == {}


def test_a_location_value_is_the_whole_path() -> None:
    config = CorrelateConfig(captures=(Capture("where", route="/orders", header="Location"),))
    correlator = Correlator(config, LaneRule(source="header", header="X-Client"))
    client = (("X-Client", "c1"),)
    rec = record("POST", "/orders", {}, lane=None, headers=client)
    correlator.prepare(rec)
    finish(
        correlator,
        rec,
        answer({}, Location="/orders/1001"),
        answer({}, Location="http://rewrite/orders/1"),
    )
    sent = correlator.prepare(record("GET", "/orders/1001?x=1", lane=None, headers=client))
    assert sent["candidate"].path == "/orders/1?x=1"


@pytest.mark.parametrize("transport", TRANSPORTS[1:])
async def test_each_target_receives_its_own_value(
    pair: Pair,  # noqa: F811
    transport: str,
) -> None:
    """Through the Replayer: what each server received, byte for byte where unchanged."""

    async def create(number: int) -> web.StreamResponse:
        return web.json_response({"id": number}, status=201, headers={"ETag": f'"e{number}"'})

    pair.primary.answer = lambda request: create(1001)
    pair.candidate.answer = lambda request: create(1)
    correlator = Correlator(RULES, LaneRule())
    settings = ReplayConfig(concurrency=4)

    def prepare(rec: Record) -> Prepared:
        return Prepared("e", CompareRules(), (), rewrite=correlator.prepare(rec))

    done: list[Exchange] = []

    def on_finish(exchange: Exchange) -> None:
        correlator.learn(exchange)
        done.append(exchange)

    records = [
        record("POST", "/orders", {"item": "book"}),
        record("PATCH", "/orders/1001", {"id": 1001}, headers=(("If-Match", '"e1001"'),)),
    ]

    async def feed() -> Any:
        for seq, rec in enumerate(records):
            yield seq, rec, None

    async with client_session() as session:
        chosen = open_transport(Choice(transport, transport, "asked for"), session, settings)
        replayer = Replayer(chosen, pair.targets(), settings, prepare, on_finish)
        await asyncio.wait_for(replayer.run(feed()), GUARD_S)
        await chosen.aclose()
    assert len(done) == 2
    primary, candidate = pair.primary.seen[1], pair.candidate.seen[1]
    assert (primary.raw_path, candidate.raw_path) == ("/orders/1001", "/orders/1")
    assert (primary.values("if-match"), candidate.values("if-match")) == (['"e1001"'], ['"e1"'])
    assert primary.body == records[1].body_bytes  # the primary's request as recorded
    assert candidate.body == b'{"id":1}'


def test_the_same_record_answered_again_replaces_its_values_without_a_conflict() -> None:
    """A new `--loop` pass: the create is sent again and its targets answer new ids."""
    correlator = Correlator(RULES, LaneRule())
    created(correlator)
    rec = record("POST", "/orders", {"item": "book"})
    correlator.prepare(rec)
    exchange = Exchange(
        7,
        rec,
        "POST /orders",
        CompareRules(),
        {"primary": answer({"id": 1001}), "candidate": answer({"id": 9})},
    )
    assert correlator.learn(exchange) is None
    assert correlator.prepare(record("GET", "/orders/1001"))["candidate"].path == "/orders/9"
