"""Events as bytes: field order, timestamps, awkward values, a reader that goes away."""

from __future__ import annotations

import io
import re

import orjson

from shadow.events.sink import Sink, utc_now
from shadow.model import CompareRules, Difference, Exchange, Failure, Record, Response


def test_every_line_starts_with_event_ts_run_id() -> None:
    out = io.BytesIO()
    Sink("abc", out).emit("progress", sent=3)
    line = out.getvalue()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    event = orjson.loads(line)
    assert list(event)[:3] == ["event", "ts", "run_id"]
    assert event["run_id"] == "abc" and event["sent"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now())


def test_values_orjson_cannot_write_are_kept_as_text() -> None:
    out = io.BytesIO()
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    Sink("r", out).emit("mismatch", big=2**100, inf=float("inf"), bad="\ud800x", deep=deep)
    event = orjson.loads(out.getvalue())
    assert event["big"] == str(2**100) and event["inf"] == "inf"
    assert event["bad"].endswith("x")
    assert "nested too deep" in out.getvalue().decode()


def test_error_event_names_side_and_redacts_secrets() -> None:
    out = io.BytesIO()
    record = Record("GET", "/x", headers=(("Authorization", "Bearer t0ken"), ("X-A", "1")))
    exchange = Exchange(
        seq=7,
        record=record,
        endpoint="GET /x",
        rules=CompareRules(),
        outcomes={
            "primary": Response(200, (), b"{}", 1.25),
            "candidate": Failure("timeout", "no complete answer within 1s", 1000.0),
        },
    )
    Sink("r", out).exchange(exchange, "error", frozenset({"authorization"}))
    event = orjson.loads(out.getvalue())
    assert event["event"] == "error" and event["side"] == "candidate"
    assert event["error"] == "timeout" and event["status"] == {"primary": 200, "candidate": None}
    assert event["request"]["headers"] == [["Authorization", "[REDACTED]"], ["X-A", "1"]]
    assert b"t0ken" not in out.getvalue()


def test_mismatch_event_carries_diffs() -> None:
    out = io.BytesIO()
    exchange = Exchange(
        seq=0,
        record=Record("GET", "/s", id="r1"),
        endpoint="S",
        rules=CompareRules(),
        outcomes={
            "primary": Response(200, (), b"1", 1.0),
            "candidate": Response(200, (), b"2", 2.0),
        },
        diffs=[Difference("/", "value", 1, 2)],
    )
    Sink("r", out).exchange(exchange, "mismatch", frozenset())
    event = orjson.loads(out.getvalue())
    assert event["diffs"] == [{"path": "/", "kind": "value", "primary": 1, "candidate": 2}]
    assert event["id"] == "r1" and event["latency_ms"] == {"primary": 1.0, "candidate": 2.0}


class _Gone(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_reader_stops_writing_and_tells_the_app() -> None:
    told = []
    sink = Sink("r", _Gone(), on_closed=lambda: told.append(True))
    sink.emit("mismatch", seq=1)
    sink.emit("mismatch", seq=2)
    assert sink.closed and told == [True]
    assert sink.counts["mismatch"] == 2
