"""One record's trip in-process: Pipeline, Replayer, two servers on 127.0.0.1, events as bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shadow.config.load import Config, attach_config, parse
from shadow.config.replay import ReplayConfig
from shadow.events.sink import Sink
from shadow.model import Record
from shadow.replay.pool import Replayer
from shadow.replay.transport import AiohttpTransport
from shadow.run.lifecycle import client_session
from shadow.run.pipeline import Pipeline
from shadow.run.tally import Tally
from shadow.stdio import Console
from tests.support import event_of

RUN_ID = "run-under-test"
GUARD_S = 5.0  # a hang guard, never a timing assertion
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LATENCY = "<ms>"  # what every latency value is normalised to

# The candidate answers `/items/7` with its id as a string: a `type` difference.
ANSWERS: dict[str, dict[str, Any]] = {
    "primary": {"/items/7": {"id": 7, "name": "widget"}, "/same": {"ok": True}},
    "candidate": {"/items/7": {"id": "7", "name": "widget"}, "/same": {"ok": True}},
}


@dataclass
class Servers:
    """The primary and the candidate (answering from ANSWERS), and what each received."""

    urls: dict[str, str] = field(default_factory=dict)
    received: defaultdict[str, list[dict[str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # per target, the headers of each request
    release: asyncio.Event = field(default_factory=asyncio.Event)  # set on teardown

    def app(self, name: str) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.received[name].append(dict(request.headers))
            if request.path == "/hang":
                await self.release.wait()
            return web.json_response(ANSWERS[name].get(request.path, {}))

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    servers = Servers()
    async with (
        TestServer(servers.app("primary"), host="127.0.0.1") as primary,
        TestServer(servers.app("candidate"), host="127.0.0.1") as candidate,
    ):
        servers.urls = {
            "primary": f"http://127.0.0.1:{primary.port}",
            "candidate": f"http://127.0.0.1:{candidate.port}",
        }
        try:
            yield servers
        finally:
            servers.release.set()


@dataclass
class Harness:
    """A Pipeline over a Sink on bytes, a Tally and a Console on a string."""

    pipeline: Pipeline
    tally: Tally
    out: io.BytesIO
    console: io.StringIO

    async def replay(self, records: Iterable[Record]) -> None:
        async def feed() -> AsyncIterator[tuple[int, Record, float | None]]:
            for seq, record in enumerate(records):
                yield seq, record, None

        config = self.pipeline.config
        async with client_session() as session:
            transport = AiohttpTransport(session, config.replay)
            replayer = Replayer(
                transport,
                config.targets,
                config.replay,
                self.pipeline.prepare,
                self.pipeline.finish,
            )
            await asyncio.wait_for(replayer.run(feed()), GUARD_S)
            assert replayer.pending == {}

    def events(self, by_seq: bool = True) -> list[dict[str, Any]]:
        """The events written, `ts`, `run_id` and latency values checked and normalised away."""
        events = []
        for line in self.out.getvalue().splitlines():
            event = event_of(line)
            assert list(event)[:3] == ["event", "ts", "run_id"]
            assert TS.fullmatch(event.pop("ts")) and event.pop("run_id") == RUN_ID
            if "latency_ms" in event:
                latency = event["latency_ms"]
                assert all(isinstance(v, float) and v >= 0 for v in latency.values())
                event["latency_ms"] = dict.fromkeys(latency, LATENCY)
            events.append(event)
        return sorted(events, key=lambda e: e["seq"]) if by_seq else events

    def counts(self) -> dict[str, int]:
        """The tally's four counts, once checked that every request is counted exactly once."""
        t = self.tally
        assert t.requests == t.matched + t.mismatched + t.errors
        return {
            "requests": t.requests,
            "matched": t.matched,
            "mismatched": t.mismatched,
            "errors": t.errors,
        }


def harness(config: Config, emit: str = "mismatches") -> Harness:
    out, stderr = io.BytesIO(), io.StringIO()
    # These events are about the pipeline; calibration (on by default, adding the primary's
    # second answer to every read) has its own tests.
    config = dataclasses.replace(config, noise=dataclasses.replace(config.noise, enabled=False))
    tally = Tally(list(config.targets))
    pipeline = Pipeline(config, Sink(RUN_ID, out), tally, Console(0, stderr), emit=emit)
    return Harness(pipeline, tally, out, stderr)


def both(value: Any) -> dict[str, Any]:
    return {"primary": value, "candidate": value}


def mismatch_event(seq: int, request: dict[str, Any], curl: str) -> dict[str, Any]:
    return {
        "event": "mismatch",
        "seq": seq,
        "id": request.get("id"),
        "endpoint": "GET /items/{int}",
        "request": request,
        "status": both(200),
        "latency_ms": both(LATENCY),
        "diffs": [{"path": "/id", "kind": "type", "primary": 7, "candidate": "7"}],
        "curl": curl,
    }


def match_event(seq: int, path: str) -> dict[str, Any]:
    return {
        "event": "match",
        "seq": seq,
        "id": None,
        "endpoint": f"GET {path}",
        "request": {"method": "GET", "path": path},
        "status": both(200),
        "latency_ms": both(LATENCY),
    }


CURL_ITEM = 'curl -sS -g --path-as-is -X GET "$TARGET"/items/7'


async def test_mismatches_and_errors_are_written_and_every_record_counted(
    servers: Servers,
) -> None:
    h = harness(attach_config(servers.urls))
    await h.replay(
        [
            Record("GET", "/items/7"),
            Record("GET", "/same"),
            Record("GET", "/items/7", id="rec-2"),
            Record("GET", "/same", auth="nope"),  # no such profile: never sent
        ]
    )

    not_configured = "no [auth.nope] profile is configured"
    assert h.events() == [
        mismatch_event(0, {"method": "GET", "path": "/items/7"}, CURL_ITEM),
        mismatch_event(2, {"method": "GET", "path": "/items/7", "id": "rec-2"}, CURL_ITEM),
        {
            "event": "error",
            "seq": 3,
            "id": None,
            "endpoint": "GET /same",
            "request": {"method": "GET", "path": "/same", "auth": "nope"},
            "status": both(None),
            "latency_ms": both(LATENCY),
            "side": "both",
            "error": "auth",
            "message": f"primary: {not_configured}; candidate: {not_configured}",
            "curl": 'curl -sS -g --path-as-is -X GET "$TARGET"/same',
        },
    ]
    assert h.counts() == {"requests": 4, "matched": 1, "mismatched": 2, "errors": 1}
    endpoints = {name: ep.to_dict() for name, ep in h.tally.by_endpoint.items()}
    assert endpoints["GET /items/{int}"] == {
        "requests": 2,
        "matched": 0,
        "mismatched": 2,
        "errors": 0,
        "diffs": {"/id": 2},
        "noise": {},
        "statuses": both({"2xx": 2, "200": 2}),
        "both_failed": {},
    }
    assert (endpoints["GET /same"]["matched"], endpoints["GET /same"]["errors"]) == (1, 1)
    assert [len(servers.received[name]) for name in ("primary", "candidate")] == [3, 3]
    assert h.console.getvalue() == ""


async def test_emit_all_writes_a_match_for_each_matching_exchange(servers: Servers) -> None:
    h = harness(attach_config(servers.urls), emit="all")
    await h.replay([Record("GET", "/same"), Record("GET", "/items/7"), Record("GET", "/same")])

    assert h.events() == [
        match_event(0, "/same"),
        mismatch_event(1, {"method": "GET", "path": "/items/7"}, CURL_ITEM),
        match_event(2, "/same"),
    ]
    assert h.counts() == {"requests": 3, "matched": 2, "mismatched": 1, "errors": 0}


async def test_a_recorded_authorization_is_replayed_but_redacted_in_events(
    servers: Servers,
) -> None:
    secret = "Bearer s3cr3t-t0ken"
    record = Record("GET", "/items/7", (("Authorization", secret), ("X-Trace", "t-1")))
    h = harness(attach_config(servers.urls))
    await h.replay([record])

    request = {
        "method": "GET",
        "path": "/items/7",
        "headers": [["Authorization", "[REDACTED]"], ["X-Trace", "t-1"]],
    }
    curl = f"{CURL_ITEM} -H \"Authorization: $AUTHORIZATION\" -H 'X-Trace: t-1'"
    assert h.events() == [mismatch_event(0, request, curl)]
    assert b"s3cr3t" not in h.out.getvalue()
    assert [seen[0]["Authorization"] for seen in servers.received.values()] == [secret, secret]


async def test_an_auth_profiles_header_is_sent_and_a_placeholder_in_curl(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOW_TEST_SERVICE_KEY", "k3y-value")
    data = {
        "targets": {name: {"url": url} for name, url in servers.urls.items()},
        "auth": {
            "svc": {
                "type": "header",
                "header": "X-Service-Key",
                "value_env": "SHADOW_TEST_SERVICE_KEY",
            }
        },
    }
    h = harness(parse(data, "test", Path.cwd()))
    await h.replay([Record("GET", "/items/7", auth="svc")])

    request = {"method": "GET", "path": "/items/7", "auth": "svc"}
    curl = f'{CURL_ITEM} -H "X-Service-Key: $X_SERVICE_KEY"'
    assert h.events() == [mismatch_event(0, request, curl)]
    assert b"k3y-value" not in h.out.getvalue()
    assert [seen[0]["X-Service-Key"] for seen in servers.received.values()] == ["k3y-value"] * 2


def test_unfinished_records_are_cancelled_errors_and_counted() -> None:
    # Nothing is sent: the targets are never contacted.
    config = attach_config({"primary": "http://127.0.0.1:9", "candidate": "http://127.0.0.1:9"})
    h = harness(config)
    pending = {
        7: Record("GET", "/same"),
        5: Record("GET", "/items/9", (("Authorization", "Bearer s3cr3t"),)),
    }
    h.pipeline.unfinished(pending, "not finished when the run stopped (interrupted)", "both")

    common = {
        "event": "error",
        "id": None,
        "status": {},
        "latency_ms": {},
        "side": "both",
        "error": "cancelled",
        "message": "not finished when the run stopped (interrupted)",
    }
    assert h.events(by_seq=False) == [
        {
            **common,
            "seq": 5,
            "endpoint": "GET /items/{int}",
            "request": {
                "method": "GET",
                "path": "/items/9",
                "headers": [["Authorization", "[REDACTED]"]],
            },
            "curl": 'curl -sS -g --path-as-is -X GET "$TARGET"/items/9'
            ' -H "Authorization: $AUTHORIZATION"',
        },
        {
            **common,
            "seq": 7,
            "endpoint": "GET /same",
            "request": {"method": "GET", "path": "/same"},
            "curl": 'curl -sS -g --path-as-is -X GET "$TARGET"/same',
        },
    ]
    assert h.counts() == {"requests": 2, "matched": 0, "mismatched": 0, "errors": 2}
    assert h.tally.by_endpoint["GET /items/{int}"].errors == 1


async def test_timeouts_in_a_row_report_the_targets_unresponsive_once(servers: Servers) -> None:
    settings = ReplayConfig(concurrency=1, timeout_s=0.05, unresponsive_after=2)
    config = dataclasses.replace(attach_config(servers.urls), replay=settings)
    h = harness(config)
    await h.replay([Record("GET", "/hang") for _ in range(3)])

    events = h.events(by_seq=False)
    assert [e["event"] for e in events] == [
        "error",
        "server_unresponsive",
        "server_unresponsive",
        "error",
        "error",
    ]
    assert [(e["seq"], e["error"], e["side"]) for e in events if e["event"] == "error"] == [
        (0, "timeout", "both"),
        (1, "timeout", "both"),
        (2, "timeout", "both"),
    ]
    assert events[1:3] == [
        {"event": "server_unresponsive", "target": name, "timeouts": 2, "timeout_s": 0.05}
        for name in ("primary", "candidate")
    ]
    assert h.counts() == {"requests": 3, "matched": 0, "mismatched": 0, "errors": 3}
    assert h.console.getvalue() == (
        "shadow: warning: primary: 2 requests in a row timed out\n"
        "shadow: warning: candidate: 2 requests in a row timed out\n"
    )
