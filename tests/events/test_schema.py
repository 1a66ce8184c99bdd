"""The README's Events table against what the sink emits: the same event kinds, the same
top-level fields.

Each Sink method is driven (every variant that adds a field), the events are captured with
structlog's LogCapture behind the real `_order_fields` (so `ts` is there as on stdout), and
the keys are compared with the table's rows.

How a row's fields column is read:

- a parenthesised aside describes a field's members or values (`targets` (url, managed),
  `side` (`primary`, `candidate`, `both`), `servers` (per managed target: `pid`, ...)) and is
  dropped first, nested ones included, so its backticked words are not taken for fields;
- what comes before the first `;` is present in every event of the kind; each later `;`
  clause names fields present only sometimes (`when every difference was noise: ...`,
  `` `workers` with `--workers` ``);
- `as `mismatch`, without `diffs` and `curl`` is the mismatch row's always-present fields
  less those named after `without`;
- a field is a backticked name; `"suppressed": "noise"` names the field `suppressed`; a
  backticked command-line option (`--workers`) is not a field.

`event`, `ts` and `run_id` are in no row: the sentence above the table gives them to every
event, and it is read the same way.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from structlog.testing import LogCapture

from shadow.config.settings import Shard
from shadow.events.redact import Redactor
from shadow.events.sink import Sink, _order_fields
from shadow.model import (
    Behind,
    CompareRules,
    Difference,
    Exchange,
    Failure,
    Outcome,
    Record,
    Response,
    Usage,
)
from shadow.run.merge import merge_progress, shard_summary
from shadow.run.tally import Tally
from tests.support import EVENTS_SCHEMA, events_of, valid_event

README = Path(__file__).resolve().parents[2] / "README.md"


# --- the README --------------------------------------------------------------------------------


@dataclass
class Row:
    always: set[str]
    sometimes: set[str] = field(default_factory=set)


def events_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Events\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def without_asides(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", "", text)
    return text


def names(text: str) -> set[str]:
    found = set()
    for token in re.findall(r"`([^`]+)`", text):
        if token.startswith("-"):
            continue  # a command-line option
        key = re.fullmatch(r'"(\w+)"\s*:.*', token)
        if key is not None:
            found.add(key.group(1))
        else:
            assert re.fullmatch(r"\w+", token), f"cannot read {token!r} as a field name"
            found.add(token)
    return found


def common_fields() -> set[str]:
    sentence = without_asides(events_section()).split("Every event has", 1)[1].split(".", 1)[0]
    return names(sentence)


def table() -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for line in events_section().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a row of the Events table with {len(cells)} cells: {line}"
        kind = re.fullmatch(r"`(\w+)`", cells[0])
        assert kind is not None, cells[0]
        first, *rest = without_asides(cells[2]).split(";")
        like = re.fullmatch(r"\s*as `(\w+)`, without (.*)", first)
        if like is not None:
            always = rows[like.group(1)].always - names(like.group(2))
        else:
            always = names(first)
        sometimes = set().union(*(names(clause) for clause in rest)) - always
        rows[kind.group(1)] = Row(always, sometimes)
    return rows


def test_the_table_is_read_as_meant() -> None:
    rows = table()
    assert common_fields() == {"event", "ts", "run_id"}
    assert all(row.always for row in rows.values())
    mismatch = {"seq", "id", "endpoint", "request", "status", "latency_ms", "diffs", "curl"}
    assert rows["mismatch"] == Row(mismatch, {"truncated", "diffs_total", "rewrites"})
    assert rows["match"] == Row(
        mismatch - {"diffs", "curl"}, {"suppressed", "diffs", "truncated", "rewrites"}
    )
    assert rows["server_ready"] == Row({"target", "url", "pid", "startup_ms"})
    assert rows["error"].always >= {"side", "error", "message"}
    assert "primary" not in rows["error"].always  # a value of `side`, not a field
    assert rows["progress"].always >= {"servers", "shadow"}
    assert "rss_mb" not in rows["progress"].always  # a member of `servers`
    assert rows["run_finished"].sometimes == {"parent_cpu_s", "workers", "shard"}


# --- the sink ----------------------------------------------------------------------------------


def _exchange(outcomes: dict[str, Outcome], **lists: list[Difference]) -> Exchange:
    return Exchange(0, Record("GET", "/s", id="r1"), "GET /s", CompareRules(), outcomes, **lists)


def _ok() -> Response:
    return Response(200, (), b"{}", 1.0)


def _usage() -> Usage:
    return Usage(1, 1, 0, 0.0)


def _exchanges(sink: Sink) -> None:
    diff = [Difference("/a", "value", 1, 2)]
    redact = Redactor()
    sink.exchange(_exchange({"primary": _ok(), "candidate": _ok()}, diffs=diff), "mismatch", redact)
    sink.exchange(_exchange({"primary": _ok(), "candidate": _ok()}), "match", redact)
    noisy = _exchange({"primary": _ok(), "candidate": _ok()}, noise=diff)
    sink.exchange(noisy, "match", redact, show_noise=True)
    failed = _exchange({"primary": _ok(), "candidate": Failure("timeout", "slow")})
    sink.exchange(failed, "error", redact)
    capped = _exchange({"primary": _ok(), "candidate": _ok()}, diffs=diff)
    capped.diffs_left_out = 5  # past `max_differences`
    sink.exchange(capped, "mismatch", redact)
    rewrites = [{"place": "path", "name": "id", "recorded": 7, "sent": {"candidate": 1}}]
    for outcome, exchange in (("mismatch", capped), ("match", noisy), ("error", failed)):
        sink.exchange(exchange, outcome, redact, rewrites=rewrites)


def _correlation(sink: Sink) -> None:
    exchange = _exchange({})
    sink.correlation_missing(exchange, "lane-1", "order_id", "path", Redactor())
    conflict = {"name": "id", "place": "/id", "recorded": 7, "before": {}, "after": {}}
    sink.correlation_conflict(exchange, "lane-1", conflict, Redactor())


def _cut_exchanges(sink: Sink) -> None:
    """Exchange events over the sink's `max_event_bytes`: each cut, and saying so."""
    huge = Record("GET", "/s/" + "x" * 10_000)
    redact = Redactor()
    sink.exchange(Exchange(0, huge, "GET /s", CompareRules(), {"primary": _ok()}), "match", redact)
    failed = {"primary": Failure("timeout", "slow")}
    sink.exchange(Exchange(1, huge, "GET /s", CompareRules(), failed), "error", redact)


def _run_finished(sink: Sink) -> None:
    # The counts are the tally's own summary, and `shard` what a sharded run adds, so the row
    # is checked against what the app passes, not against a hand-made dict.
    tally = Tally(["primary", "candidate"])
    kwargs: dict[str, Any] = {
        "duration_s": 1.0,
        "cpu_s": 0.5,
        "pacing": {},
        "restarts": {},
        "calibration": None,
        "interrupted": False,
        "exit_code": 0,
    }
    sink.run_finished(tally.summary(), **kwargs)
    workers = [{"worker": 0, "shard": "0/1", "pid": 1, "exit_code": 0, "requests": 0, "cpu_s": 0.4}]
    sink.run_finished(
        tally.summary(),
        **kwargs,
        parent_cpu_s=0.1,
        workers=workers,
        **shard_summary(tally, Shard(0, 1)),
    )


# Each public Sink method, driven once per variant that changes the fields.
DRIVERS: dict[str, Callable[[Sink], None]] = {
    "run_started": lambda s: s.run_started(
        {"primary": ("http://p", True)},
        ["-"],
        {},
        1,
        {"name": "httptools", "requested": "auto", "reason": "every target is plain http://"},
    ),
    "run_finished": _run_finished,
    "server_ready": lambda s: s.server_ready("primary", "http://p", None, 1.0),
    "server_exited": lambda s: s.server_exited("primary", 1, False, []),
    "exchange": _exchanges,
    "unfinished": lambda s: s.unfinished(0, {"method": "GET", "path": "/"}, "GET /", "stopped"),
    "input_error": lambda s: s.input_error("in.jsonl", 1, "not JSON"),
    "correlation_missing": _correlation,
    "correlation_conflict": _correlation,
    # The counts a progress event carries are the ones the app samples.
    "progress": lambda s: s.progress(merge_progress([], [], 0.0, {"primary": _usage()}, _usage())),
    "behind_schedule": lambda s: s.behind_schedule(Behind(6.0, None, None, 0), 5.0),
    "server_unresponsive": lambda s: s.server_unresponsive("candidate", 5, 1.0),
    "reset": lambda s: s.reset("primary", "command", 0.25, True),
}


def emitted() -> dict[str, list[set[str]]]:
    """Each kind the sink emits, with the top-level fields of each of its events."""
    capture = LogCapture()
    sink = Sink("r", processors=[_order_fields, capture])
    for drive in DRIVERS.values():
        drive(sink)
    _cut_exchanges(Sink("r", processors=[_order_fields, capture], max_event_bytes=4096))
    kinds: dict[str, list[set[str]]] = {}
    for entry in capture.entries:
        keys = set(entry) - {"log_level"}  # LogCapture's own, never written
        kinds.setdefault(entry["event"], []).append(keys)
    return kinds


def test_every_sink_method_is_driven() -> None:
    # `emit` is the primitive the others call; `forward` passes on what a worker's own sink
    # already rendered.
    public = {
        name for name, value in vars(Sink).items() if callable(value) and not name.startswith("_")
    }
    assert public - {"emit", "forward"} == set(DRIVERS)


def test_the_table_lists_exactly_the_kinds_the_sink_emits() -> None:
    assert set(table()) == set(emitted())


@pytest.mark.parametrize("kind", sorted(table()))
def test_a_kinds_fields_match_its_row(kind: str) -> None:
    row, common = table()[kind], common_fields()
    events = emitted().get(kind, [])
    assert events, f"the sink emitted no {kind}"
    for keys in events:
        assert sorted((common | row.always) - keys) == [], "named in the README, not emitted"
        assert sorted(keys - common - row.always - row.sometimes) == [], (
            "emitted, not in the README"
        )
    seen = set().union(*events)
    assert sorted(row.sometimes - seen) == [], "named in the README, never emitted"


# --- the JSON Schema shipped in the package ----------------------------------------------------


def _schema_kinds() -> dict[str, dict[str, Any]]:
    schema = orjson.loads(EVENTS_SCHEMA.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    kinds: dict[str, dict[str, Any]] = schema["$defs"]
    assert schema["properties"]["event"]["enum"] == list(kinds)
    return kinds


def test_the_schema_and_the_table_name_the_same_kinds_and_fields() -> None:
    kinds, rows, common = _schema_kinds(), table(), common_fields()
    assert set(kinds) == set(rows)
    for kind, row in rows.items():
        definition = kinds[kind]
        assert set(definition["required"]) == common | row.always, kind
        assert set(definition["properties"]) == common | row.always | row.sometimes, kind
        assert definition["additionalProperties"] is False  # a new field must be added


def test_every_event_the_sink_writes_matches_the_schema() -> None:
    out = io.BytesIO()
    sink = Sink("r", out)
    for drive in DRIVERS.values():
        drive(sink)
    events = events_of(out.getvalue())
    assert {e["event"] for e in events} == set(table())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra_field": 1}, "Additional properties are not allowed"),
        ({"line": "one"}, "'one' is not of type 'integer'"),
        ({"event": "nope"}, "'nope' is not one of"),
    ],
)
def test_the_schema_refuses_what_the_table_does_not_say(
    change: dict[str, Any], message: str
) -> None:
    event = {"event": "input_error", "ts": "2026-01-01T00:00:00.000Z", "run_id": "r"}
    event |= {"source": "in.jsonl", "line": 1, "message": "not JSON", **change}
    with pytest.raises(AssertionError, match=message):
        valid_event(event)
