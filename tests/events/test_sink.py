"""Every event the sink builds, field by field, captured as dicts with structlog's LogCapture;
then the real chain: field order, timestamps, awkward values, a reader that goes away."""

from __future__ import annotations

import errno
import io
import re
import sys
from typing import Any

import orjson
import pytest
from structlog.testing import LogCapture

import shadow.events.sink as sink_module
from shadow.events.redact import Redactor
from shadow.events.sink import SCHEMA_VERSION, Sink, utc_now
from shadow.model import (
    REPEAT,
    Behind,
    CompareRules,
    Difference,
    Exchange,
    Failure,
    Outcome,
    Record,
    Response,
    Sample,
    Usage,
)

RUN_ID = "run-1"
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def capture() -> LogCapture:
    return LogCapture()


@pytest.fixture
def sink(capture: LogCapture) -> Sink:
    return Sink(RUN_ID, processors=[capture])


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """An event as LogCapture holds it: the real chain adds `ts`, the capture `log_level`."""
    return {"event": kind, "run_id": RUN_ID, "log_level": "info", **fields}


def exchange(
    outcomes: dict[str, Outcome],
    *,
    record: Record | None = None,
    diffs: list[Difference] | None = None,
    noise: list[Difference] | None = None,
    seq: int = 0,
) -> Exchange:
    return Exchange(
        seq=seq,
        record=record if record is not None else Record("GET", "/s", id="r1"),
        endpoint="GET /s",
        rules=CompareRules(),
        outcomes=outcomes,
        diffs=diffs or [],
        noise=noise or [],
    )


def ok(status: int = 200, latency_ms: float = 1.0) -> Response:
    return Response(status, (), b"{}", latency_ms)


# A record with secrets in a header and in the body, and what every event shows of it.
SECRET_RECORD = Record(
    "POST",
    "/users",
    headers=(("Authorization", "Bearer s3cret"), ("Content-Type", "application/json")),
    body={"email": "a@example.com", "n": 1},
    body_bytes=b'{"email":"a@example.com","n":1}',
    body_form="json",
    id="r7",
)
SECRET_REQUEST = {
    "method": "POST",
    "path": "/users",
    "headers": [["Authorization", "[REDACTED]"], ["Content-Type", "application/json"]],
    "body": {"email": "[REDACTED]", "n": 1},
    "id": "r7",
}
SECRET_CURL = (
    'curl -sS -g --path-as-is -X POST "$TARGET"/users -H "Authorization: $AUTHORIZATION" '
    "-H 'Content-Type: application/json' -H \"X-Token: $X_TOKEN\" "
    '--data-binary \'{"email":"[REDACTED]","n":1}\''
)
PLAIN_REQUEST = {"method": "GET", "path": "/s", "id": "r1"}
PLAIN_CURL = 'curl -sS -g --path-as-is -X GET "$TARGET"/s'


# --- the events, as dicts ---------------------------------------------------------------------


def test_a_capturing_sink_writes_nothing_and_still_counts(capture: LogCapture) -> None:
    out = io.BytesIO()
    sink = Sink(RUN_ID, out, processors=[capture])
    sink.emit("progress", sent=3)
    sink.emit("progress", sent=4)
    assert capture.entries == [event("progress", sent=3), event("progress", sent=4)]
    assert out.getvalue() == b""
    assert sink.counts == {"progress": 2}


def test_run_started(sink: Sink, capture: LogCapture) -> None:
    settings = {"concurrency": 4, "emit": "diffs"}
    sink.run_started(
        {"primary": ("http://127.0.0.1:8002", True), "candidate": ("http://127.0.0.1:8003", False)},
        ["traffic.jsonl", "-"],
        settings,
        pid=4242,
        transport={"name": "aiohttp", "requested": "aiohttp", "reason": "asked for"},
    )
    assert capture.entries == [
        event(
            "run_started",
            schema=1,
            targets={
                "primary": {"url": "http://127.0.0.1:8002", "managed": True},
                "candidate": {"url": "http://127.0.0.1:8003", "managed": False},
            },
            sources=["traffic.jsonl", "-"],
            settings={"concurrency": 4, "emit": "diffs"},
            pid=4242,
            transport={"name": "aiohttp", "requested": "aiohttp", "reason": "asked for"},
        )
    ]
    assert SCHEMA_VERSION == 1
    assert capture.entries[0]["settings"] is not settings  # a copy, not the caller's mapping


def test_server_ready_managed_and_attached(sink: Sink, capture: LogCapture) -> None:
    sink.server_ready("primary", "http://127.0.0.1:8002", 311, 1234.5678)
    sink.server_ready("candidate", "http://127.0.0.1:8003", None, 0.04)
    assert capture.entries == [
        event(
            "server_ready",
            target="primary",
            url="http://127.0.0.1:8002",
            pid=311,
            startup_ms=1234.6,
        ),
        event(
            "server_ready",
            target="candidate",
            url="http://127.0.0.1:8003",
            pid=None,
            startup_ms=0.0,
        ),
    ]


def test_server_exited(sink: Sink, capture: LogCapture) -> None:
    sink.server_exited("candidate", 1, False, ["Traceback (most recent call last):", "boom"])
    sink.server_exited("primary", None, True, [])
    assert capture.entries == [
        event(
            "server_exited",
            target="candidate",
            returncode=1,
            expected=False,
            log_tail=["Traceback (most recent call last):", "boom"],
        ),
        event("server_exited", target="primary", returncode=None, expected=True, log_tail=[]),
    ]


def test_mismatch_redacts_request_diffs_and_curl(sink: Sink, capture: LogCapture) -> None:
    diffs = [
        Difference("/n", "value", 1, 2),
        Difference("/user/email", "value", "a@example.com", "b@example.com"),
        Difference("header:set-cookie", "header", "sid=1", "sid=2"),
        Difference("status", "status", 200, 201),
    ]
    sink.exchange(
        exchange(
            {"primary": ok(200, 1.23456), "candidate": ok(201, 20.0)},
            record=SECRET_RECORD,
            diffs=diffs,
            seq=7,
        ),
        "mismatch",
        Redactor(paths=["/**/email"]),
        auth_header="X-Token",
    )
    assert capture.entries == [
        event(
            "mismatch",
            seq=7,
            id="r7",
            endpoint="GET /s",
            request=SECRET_REQUEST,
            status={"primary": 200, "candidate": 201},
            latency_ms={"primary": 1.235, "candidate": 20.0},
            diffs=[
                {"path": "/n", "kind": "value", "primary": 1, "candidate": 2},
                {
                    "path": "/user/email",
                    "kind": "value",
                    "primary": "[REDACTED]",
                    "candidate": "[REDACTED]",
                },
                {
                    "path": "header:set-cookie",
                    "kind": "header",
                    "primary": "[REDACTED]",
                    "candidate": "[REDACTED]",
                },
                {"path": "status", "kind": "status", "primary": 200, "candidate": 201},
            ],
            curl=SECRET_CURL,
        )
    ]


def test_mismatch_lists_noise_only_with_show_noise(sink: Sink, capture: LogCapture) -> None:
    def build() -> Exchange:
        return exchange(
            {"primary": ok(), "candidate": ok(latency_ms=2.0)},
            diffs=[Difference("/a", "value", 1, 2)],
            noise=[Difference("/at", "value", "10:00", "10:01")],
        )

    sink.exchange(build(), "mismatch", frozenset(), show_noise=True)
    sink.exchange(build(), "mismatch", frozenset())
    common = {
        "seq": 0,
        "id": "r1",
        "endpoint": "GET /s",
        "request": PLAIN_REQUEST,
        "status": {"primary": 200, "candidate": 200},
        "latency_ms": {"primary": 1.0, "candidate": 2.0},
        "curl": PLAIN_CURL,
    }
    real = {"path": "/a", "kind": "value", "primary": 1, "candidate": 2}
    assert capture.entries == [
        event(
            "mismatch",
            **common,
            diffs=[
                real,
                {
                    "path": "/at",
                    "kind": "value",
                    "primary": "10:00",
                    "candidate": "10:01",
                    "suppressed": "noise",
                },
            ],
        ),
        event("mismatch", **common, diffs=[real]),
    ]


def test_match_has_no_diffs_and_no_curl(sink: Sink, capture: LogCapture) -> None:
    sink.exchange(
        exchange({"primary": ok(204, 0.5), "candidate": ok(204, 0.25)}, seq=3),
        "match",
        frozenset(),
        show_noise=True,
        auth_header="X-Token",  # no curl, so no placeholder either
    )
    assert capture.entries == [
        event(
            "match",
            seq=3,
            id="r1",
            endpoint="GET /s",
            request=PLAIN_REQUEST,
            status={"primary": 204, "candidate": 204},
            latency_ms={"primary": 0.5, "candidate": 0.25},
        )
    ]


def test_match_with_suppressed_noise(sink: Sink, capture: LogCapture) -> None:
    def build() -> Exchange:
        return exchange(
            {"primary": ok(), "candidate": ok(), REPEAT: ok(latency_ms=3.0)},
            noise=[
                Difference("/token", "value", "x1", "x2"),
                Difference("/user/email", "value", "a@example.com", "b@example.com"),
            ],
        )

    redactor = Redactor(paths=["/**/email"])
    sink.exchange(build(), "match", redactor, show_noise=True)
    sink.exchange(build(), "match", redactor)  # without --emit all: counted, not listed
    common = {
        "seq": 0,
        "id": "r1",
        "endpoint": "GET /s",
        "request": PLAIN_REQUEST,
        # With calibration on, the reference's answer is there too.
        "status": {"primary": 200, "candidate": 200, "repeat": 200},
        "latency_ms": {"primary": 1.0, "candidate": 1.0, "repeat": 3.0},
    }
    assert capture.entries == [
        event(
            "match",
            **common,
            suppressed="noise",
            diffs=[
                {
                    "path": "/token",
                    "kind": "value",
                    "primary": "x1",
                    "candidate": "x2",
                    "suppressed": "noise",
                },
                {
                    "path": "/user/email",
                    "kind": "value",
                    "primary": "[REDACTED]",
                    "candidate": "[REDACTED]",
                    "suppressed": "noise",
                },
            ],
        ),
        event("match", **common),
    ]


def test_error_on_one_side(sink: Sink, capture: LogCapture) -> None:
    sink.exchange(
        exchange(
            {
                "primary": ok(200, 1.25),
                "candidate": Failure("timeout", "no complete answer within 1s", 1000.0),
            },
            record=SECRET_RECORD,
            seq=5,
        ),
        "error",
        Redactor(paths=["/**/email"]),
        auth_header="X-Token",
    )
    assert capture.entries == [
        event(
            "error",
            seq=5,
            id="r7",
            endpoint="GET /s",
            request=SECRET_REQUEST,
            status={"primary": 200, "candidate": None},
            latency_ms={"primary": 1.25, "candidate": 1000.0},
            side="candidate",
            error="timeout",
            message="candidate: no complete answer within 1s",
            curl=SECRET_CURL,
        )
    ]


def test_error_on_both_sides_names_the_primarys_kind(sink: Sink, capture: LogCapture) -> None:
    sink.exchange(
        exchange(
            {
                "primary": Failure("refused", "connection refused"),
                "candidate": Failure("reset", "connection reset by peer", 0.4567),
            },
        ),
        "error",
        frozenset(),
    )
    assert capture.entries == [
        event(
            "error",
            seq=0,
            id="r1",
            endpoint="GET /s",
            request=PLAIN_REQUEST,
            status={"primary": None, "candidate": None},
            latency_ms={"primary": 0.0, "candidate": 0.457},
            side="both",
            error="refused",
            message="primary: connection refused; candidate: connection reset by peer",
            curl=PLAIN_CURL,
        )
    ]


def test_error_with_a_failed_reference_is_still_one_side(sink: Sink, capture: LogCapture) -> None:
    # A failed calibration answer costs a noise sample, not the exchange: the side stays the
    # primary, though the message tells both failures.
    sink.exchange(
        exchange(
            {
                "primary": Failure("bad_http", "malformed status line"),
                "candidate": ok(),
                REPEAT: Failure("refused", "connection refused"),
            },
        ),
        "error",
        frozenset(),
    )
    assert capture.entries == [
        event(
            "error",
            seq=0,
            id="r1",
            endpoint="GET /s",
            request=PLAIN_REQUEST,
            status={"primary": None, "candidate": 200, "repeat": None},
            latency_ms={"primary": 0.0, "candidate": 1.0, "repeat": 0.0},
            side="primary",
            error="bad_http",
            message="primary: malformed status line; repeat: connection refused",
            curl=PLAIN_CURL,
        )
    ]


def test_unfinished_is_a_cancelled_error(sink: Sink, capture: LogCapture) -> None:
    sink.unfinished(9, PLAIN_REQUEST, "GET /s", "not finished when the run stopped (SIGINT)")
    sink.unfinished(
        10,
        {"method": "GET", "path": "/t"},  # no id
        "GET /t",
        "not finished: candidate exited with code 1 during the run",
        auth_header="X-Token",
        side="candidate",
    )
    assert capture.entries == [
        event(
            "error",
            seq=9,
            id="r1",
            endpoint="GET /s",
            request=PLAIN_REQUEST,
            status={},
            latency_ms={},
            side="both",
            error="cancelled",
            message="not finished when the run stopped (SIGINT)",
            curl=PLAIN_CURL,
        ),
        event(
            "error",
            seq=10,
            id=None,
            endpoint="GET /t",
            request={"method": "GET", "path": "/t"},
            status={},
            latency_ms={},
            side="candidate",
            error="cancelled",
            message="not finished: candidate exited with code 1 during the run",
            curl='curl -sS -g --path-as-is -X GET "$TARGET"/t -H "X-Token: $X_TOKEN"',
        ),
    ]


def test_input_error(sink: Sink, capture: LogCapture) -> None:
    sink.input_error("traffic.jsonl", 12, "not JSON: unexpected character")
    sink.input_error("capture.har", 0, "entry 3: no request")
    assert capture.entries == [
        event(
            "input_error",
            source="traffic.jsonl",
            line=12,
            message="not JSON: unexpected character",
        ),
        event("input_error", source="capture.har", line=0, message="entry 3: no request"),
    ]


def test_progress(sink: Sink, capture: LogCapture) -> None:
    sink.progress(
        Sample(
            elapsed_s=12.34567,
            sent=120,
            counts={"requests": 100, "matched": 90, "mismatched": 6, "errors": 4, "warmup": 5},
            rate=9.876,
            target_rate=10.004,
            backlog=3,
            lag_s=0.12349,
            in_flight=7,
            latency_ms={"primary": {"p50": 1.5, "p99": 9.0}, "candidate": {"p50": 2.0}},
            servers={"primary": Usage(311, 3, 150 * 2**20 + 2**19, 12.5)},
            shadow=Usage(42, 1, 64 * 2**20, 30.0),
            statuses={"primary": {"2xx": 99, "200": 99}, "candidate": {"2xx": 99, "200": 99}},
        )
    )
    sink.progress(  # unpaced, nothing managed
        Sample(
            elapsed_s=0.0,
            sent=0,
            counts={"requests": 0, "matched": 0, "mismatched": 0, "errors": 0, "warmup": 0},
            rate=0.0,
            target_rate=None,
            backlog=None,
            lag_s=0.0,
            in_flight=0,
            latency_ms={},
            servers={},
            shadow=Usage(None, 0, 0, 0.0),
        )
    )
    assert capture.entries == [
        event(
            "progress",
            elapsed_s=12.346,
            sent=120,
            requests=100,
            matched=90,
            mismatched=6,
            errors=4,
            warmup=5,
            rate=9.88,
            target_rate=10.0,
            backlog=3,
            lag_s=0.123,
            in_flight=7,
            latency_ms={"primary": {"p50": 1.5, "p99": 9.0}, "candidate": {"p50": 2.0}},
            servers={"primary": {"pid": 311, "processes": 3, "rss_mb": 150.5, "cpu_percent": 12.5}},
            shadow={"pid": 42, "processes": 1, "rss_mb": 64.0, "cpu_percent": 30.0},
            statuses={"primary": {"2xx": 99, "200": 99}, "candidate": {"2xx": 99, "200": 99}},
        ),
        event(
            "progress",
            elapsed_s=0.0,
            sent=0,
            requests=0,
            matched=0,
            mismatched=0,
            errors=0,
            warmup=0,
            rate=0.0,
            target_rate=None,
            backlog=None,
            lag_s=0.0,
            in_flight=0,
            latency_ms={},
            servers={},
            shadow={"pid": None, "processes": 0, "rss_mb": 0.0, "cpu_percent": 0.0},
            statuses={},
        ),
    ]


def test_behind_schedule(sink: Sink, capture: LogCapture) -> None:
    sink.behind_schedule(Behind(lag_s=5.12345, backlog=40, target_rate=199.996, in_flight=64), 5.0)
    sink.behind_schedule(Behind(lag_s=2.0, backlog=None, target_rate=None, in_flight=0), 1.5)
    assert capture.entries == [
        event(
            "behind_schedule",
            lag_s=5.123,
            warning_s=5.0,
            backlog=40,
            target_rate=200.0,
            in_flight=64,
        ),
        event(
            "behind_schedule", lag_s=2.0, warning_s=1.5, backlog=None, target_rate=None, in_flight=0
        ),
    ]


def test_server_unresponsive(sink: Sink, capture: LogCapture) -> None:
    sink.server_unresponsive("candidate", 5, 2.5)
    assert capture.entries == [
        event("server_unresponsive", target="candidate", timeouts=5, timeout_s=2.5)
    ]


SUMMARY = {
    "requests": 10,
    "matched": 7,
    "mismatched": 2,
    "errors": 1,
    "input_errors": 1,
    "skipped": 0,
    "noise": 3,
    "by_endpoint": {"GET /s": {"requests": 10, "matched": 7, "mismatched": 2, "errors": 1}},
    "latency_ms": {"primary": {"p50": 1.0}, "candidate": {"p50": 2.0}},
    "latency_ratio": {"p50": 2.0},
    "warmup": {"requests": 0, "matched": 0, "mismatched": 0, "errors": 0},
}


def test_run_finished(sink: Sink, capture: LogCapture) -> None:
    sink.run_finished(
        SUMMARY,
        duration_s=3.14159,
        cpu_s=0.12345,
        pacing={"mode": "asap"},
        restarts={},
        calibration=None,
        interrupted=False,
        exit_code=1,
        reasons=("overall mismatch rate 2/10 above the mismatch_rate threshold 0",),
    )
    assert capture.entries == [
        event(
            "run_finished",
            **SUMMARY,
            duration_s=3.142,
            cpu_s=0.123,
            pacing={"mode": "asap"},
            restarts={},
            calibration=None,
            interrupted=False,
            exit_code=1,
            reasons=["overall mismatch rate 2/10 above the mismatch_rate threshold 0"],
            recorded=False,
        )
    ]


def test_run_finished_with_workers_and_shard(sink: Sink, capture: LogCapture) -> None:
    workers = [
        {"worker": 0, "shard": "0/2", "pid": 100, "exit_code": 0, "requests": 6, "duration_s": 1.0},
        {"worker": 1, "shard": "1/2", "pid": 101, "exit_code": 1, "requests": 4, "duration_s": 1.1},
    ]
    shard = {"index": 0, "count": 2, "latency_hdr": {}, "endpoint_latency_hdr": {}}
    sink.run_finished(
        SUMMARY,
        duration_s=1.2,
        cpu_s=2.5,
        parent_cpu_s=0.5,
        pacing={},
        restarts={"candidate": {"restarts": 1}},
        calibration={"mode": "repeat", "pairs": 4},
        interrupted=True,
        exit_code=130,
        workers=workers,
        shard=shard,
    )
    assert capture.entries == [
        event(
            "run_finished",
            **SUMMARY,
            duration_s=1.2,
            cpu_s=2.5,
            pacing={},
            restarts={"candidate": {"restarts": 1}},
            calibration={"mode": "repeat", "pairs": 4},
            interrupted=True,
            exit_code=130,
            reasons=[],
            recorded=False,
            parent_cpu_s=0.5,
            workers=workers,
            shard=shard,
        )
    ]


# --- the real chain: bytes ---------------------------------------------------------------------


def test_every_line_starts_with_event_ts_run_id() -> None:
    out = io.BytesIO()
    Sink("abc", out).emit("progress", sent=3)
    line = out.getvalue()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    event = orjson.loads(line)
    assert list(event)[:3] == ["event", "ts", "run_id"]
    assert event["run_id"] == "abc" and event["sent"] == 3
    assert TS.fullmatch(event["ts"])
    assert TS.fullmatch(utc_now())


def test_the_real_chain_writes_what_the_capture_sees(capture: LogCapture) -> None:
    def build() -> Exchange:
        return exchange(
            {"primary": ok(), "candidate": Failure("timeout", "no answer")},
            record=SECRET_RECORD,
        )

    out = io.BytesIO()
    Sink(RUN_ID, out).exchange(build(), "error", Redactor(paths=["/**/email"]), auth_header="X-T")
    Sink(RUN_ID, processors=[capture]).exchange(
        build(), "error", Redactor(paths=["/**/email"]), auth_header="X-T"
    )
    written = orjson.loads(out.getvalue())
    assert TS.fullmatch(written.pop("ts"))
    (captured,) = capture.entries
    assert captured.pop("log_level") == "info"
    assert written == captured
    assert b"s3cret" not in out.getvalue() and b"a@example.com" not in out.getvalue()


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


def test_forward_writes_rendered_lines_as_they_are() -> None:
    writes: list[bytes] = []

    class Recording(io.BytesIO):
        def write(self, data: Any) -> int:
            writes.append(bytes(data))
            return len(data)

    sink = Sink("r", Recording())
    sink.forward(b'{"event":"mismatch"}\n{"event":"match"}\n')
    sink.forward(b"")
    assert writes == [b'{"event":"mismatch"}\n{"event":"match"}\n']
    assert sink.counts == {}  # a child's events are its own to count


class _Failing(io.BytesIO):
    def __init__(self, exc: OSError) -> None:
        super().__init__()
        self.exc = exc

    def write(self, data: Any) -> int:
        raise self.exc


def test_a_closed_reader_stops_writing_and_tells_the_app() -> None:
    told = []
    sink = Sink("r", _Failing(BrokenPipeError(32, "Broken pipe")), on_closed=lambda: told.append(1))
    sink.emit("mismatch", seq=1)
    sink.emit("mismatch", seq=2)
    sink.forward(b'{"event":"match"}\n')
    assert sink.closed and told == [1]
    assert sink.write_error is None
    assert sink.counts["mismatch"] == 2


@pytest.mark.parametrize("code", [errno.EPIPE, errno.EBADF])
def test_epipe_and_ebadf_are_a_reader_gone_too(code: int) -> None:
    told = []
    sink = Sink("r", _Failing(OSError(code, "gone")), on_closed=lambda: told.append(1))
    sink.forward(b'{"event":"match"}\n')
    assert sink.closed and told == [1] and sink.write_error is None


@pytest.mark.parametrize("via", ["emit", "forward"])
def test_a_write_error_is_kept_for_the_app(via: str) -> None:
    told = []
    full = OSError(errno.ENOSPC, "No space left on device")
    sink = Sink("r", _Failing(full), on_closed=lambda: told.append(1))
    if via == "emit":
        sink.emit("progress", sent=1)
    else:
        sink.forward(b'{"event":"progress"}\n')
    sink.emit("progress", sent=2)  # closed: dropped, still counted
    assert sink.closed and told == [1]
    assert sink.write_error is full
    assert sink.counts == ({"progress": 2} if via == "emit" else {"progress": 1})


def test_a_closed_stdout_is_pointed_at_devnull(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdout:
        buffer = _Failing(BrokenPipeError(32, "Broken pipe"))

        def fileno(self) -> int:
            return 1

    pointed: list[int] = []
    monkeypatch.setattr(sys, "stdout", Stdout())
    monkeypatch.setattr(sink_module, "point_at_devnull", pointed.append)
    sink = Sink("r")  # no stream: stdout
    sink.emit("run_started", schema=1)
    assert sink.closed and pointed == [1]
