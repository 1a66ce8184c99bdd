"""Folding a stream of events into per-run and per-endpoint totals, in bounded memory.

Counts come from each run's `run_finished` when it has one (it counts every record, also
those whose `match` events were not emitted) and from the exchange events otherwise (a run cut
off before its summary). Diff paths, examples, error kinds and latency distributions come from
the exchange events. Tables are capped: past MAX_ENDPOINTS endpoints, MAX_PATHS_PER_ENDPOINT paths per
endpoint or MAX_KINDS error kinds, the rest is counted under "(other)"; at most
EXAMPLES_PER_PATH examples are kept per path, and MAX_EXAMPLES in all. Array indices in diff
paths fold into `*` (`/items/*/price`), so one difference repeated down a list is one row.
A run seen twice (the same file given twice) is counted once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadow.model import MAX_ENDPOINTS, MAX_PATHS_PER_ENDPOINT, OTHER, fold_indices
from shadow.report.examples import dumps, make_example
from shadow.report.latency import LatencyBuckets
from shadow.report.series import Series, parse_ts, read_point

UNKNOWN = "(unknown)"
MAX_KINDS = 50
EXAMPLES_PER_PATH = 3
MAX_EXAMPLES = 5000
KEEP_INPUT_ERRORS = 20
KEEP_SERVER_EXITS = 10


@dataclass(slots=True)
class Counts:
    """Outcomes of one endpoint in one run, counted from its exchange events."""

    requests: int = 0
    matched: int = 0
    mismatched: int = 0
    errors: int = 0
    noise: int = 0
    noise_paths: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class DiffTally:
    count: int = 0  # differences at this path
    exchanges: int = 0  # mismatched exchanges with at least one
    kinds: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    from_summary: int = 0  # differences known only from a run_finished
    example_records: set[bytes] = field(default_factory=set)  # record_key of each example


@dataclass(slots=True)
class ErrorTally:
    count: int = 0
    sides: dict[str, int] = field(default_factory=dict)
    example: dict[str, Any] | None = None


@dataclass(slots=True)
class EndpointEvents:
    """What the exchange events of every run say about one endpoint."""

    exchanges: int = 0
    latency: dict[str, LatencyBuckets] = field(default_factory=dict)
    diffs: dict[str, DiffTally] = field(default_factory=dict)
    errors: dict[str, ErrorTally] = field(default_factory=dict)

    def diff(self, path: str) -> DiffTally:
        tally = self.diffs.get(path)
        if tally is None:
            if len(self.diffs) >= MAX_PATHS_PER_ENDPOINT:
                path = OTHER
            tally = self.diffs.setdefault(path, DiffTally())
        return tally


@dataclass(slots=True)
class RunState:
    run_id: str
    inputs: list[str] = field(default_factory=list)
    started: dict[str, Any] | None = None
    started_at: float | None = None
    urls: dict[str, str] = field(default_factory=dict)
    finished: dict[str, Any] | None = None
    counts: dict[str, Counts] = field(default_factory=dict)
    input_errors: int = 0
    server_exits: list[dict[str, Any]] = field(default_factory=list)
    progress: Series = field(default_factory=Series)
    duplicates: int = 0
    skipping: bool = False
    first_ts: Any = None  # `ts` of the first and last events, checked where used
    last_ts: Any = None
    source: str | None = None  # the input of the previous event


class Aggregator:
    """Feed it events with `add`; read `runs` and `endpoints` when done."""

    def __init__(self) -> None:
        self.runs: dict[str, RunState] = {}
        self.endpoints: dict[str, EndpointEvents] = {}
        self.input_errors: list[dict[str, Any]] = []
        self.other_events: dict[str, int] = {}
        self.examples_kept = 0
        self._handlers = {
            "run_started": self._run_started,
            "server_ready": self._server_ready,
            "server_exited": self._server_exited,
            "match": self._exchange,
            "mismatch": self._exchange,
            "error": self._exchange,
            "input_error": self._input_error,
            "progress": self._progress,
            "run_finished": self._run_finished,
        }

    def add(self, event: dict[str, Any], source: str) -> None:
        run_id = event.get("run_id")
        if run_id.__class__ is not str:
            run_id = UNKNOWN
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = RunState(run_id, first_ts=event.get("ts"))
        if run.source is not source:
            run.source = source
            if source not in run.inputs:
                run.inputs.append(source)
        kind = event["event"]
        if run.skipping and kind != "run_finished":
            return
        run.last_ts = event.get("ts")
        handler = self._handlers.get(kind)
        if handler is None:
            # A kind this report draws nothing from (behind_schedule, ...): counted, listed.
            self.other_events[kind] = self.other_events.get(kind, 0) + 1
        else:
            handler(event, run)

    def endpoint_name(self, name: Any) -> str:
        if not isinstance(name, str):
            return UNKNOWN
        if name in self.endpoints or len(self.endpoints) < MAX_ENDPOINTS:
            return name
        return OTHER

    def _events_of(self, name: str) -> EndpointEvents:
        ep = self.endpoints.get(name)
        if ep is None:
            ep = self.endpoints[name] = EndpointEvents()
        return ep

    def _run_started(self, event: dict[str, Any], run: RunState) -> None:
        if run.started is not None or run.finished is not None:
            run.duplicates += 1  # the same run given twice: keep the first copy only
            run.skipping = True
            return
        run.started = event
        run.started_at = parse_ts(event.get("ts"))

    def _server_ready(self, event: dict[str, Any], run: RunState) -> None:
        target, url = event.get("target"), event.get("url")
        if isinstance(target, str) and isinstance(url, str):
            run.urls[target] = url

    def _server_exited(self, event: dict[str, Any], run: RunState) -> None:
        if event.get("expected") is False and len(run.server_exits) < KEEP_SERVER_EXITS:
            tail = event.get("log_tail")
            run.server_exits.append(
                {
                    "target": event.get("target"),
                    "returncode": event.get("returncode"),
                    "log_tail": [str(x) for x in tail[-20:]] if isinstance(tail, list) else [],
                }
            )

    def _input_error(self, event: dict[str, Any], run: RunState) -> None:
        run.input_errors += 1
        if len(self.input_errors) < KEEP_INPUT_ERRORS:
            self.input_errors.append(
                {
                    "run_id": run.run_id,
                    "source": event.get("source"),
                    "line": event.get("line"),
                    "message": event.get("message"),
                }
            )

    def _progress(self, event: dict[str, Any], run: RunState) -> None:
        point = read_point(event, run.started_at)
        if point is not None:
            run.progress.add(point)

    def _run_finished(self, event: dict[str, Any], run: RunState) -> None:
        if run.skipping:
            run.skipping = False
        elif run.finished is not None:
            run.duplicates += 1
        else:
            run.finished = event

    def _exchange(self, event: dict[str, Any], run: RunState) -> None:
        name: Any = event.get("endpoint")  # a str, or a miss below that makes it one
        ep = self.endpoints.get(name) if name.__class__ is str else None
        if ep is None:
            name = self.endpoint_name(name)
            ep = self._events_of(name)
        counts = run.counts.get(name)
        if counts is None:
            counts = run.counts[name] = Counts()
        counts.requests += 1
        ep.exchanges += 1
        _record_latency(ep, event)
        kind = event["event"]
        if event.get("suppressed") == "noise":
            counts.noise += 1
            _count_noise_paths(counts, event.get("diffs"))
            kind = "match" if kind == "mismatch" else kind
        if kind == "match":
            counts.matched += 1
        elif kind == "mismatch":
            counts.mismatched += 1
            self._mismatch(ep, counts, event, run)
        else:
            counts.errors += 1
            self._error(ep, event, run)

    def _mismatch(
        self, ep: EndpointEvents, counts: Counts, event: dict[str, Any], run: RunState
    ) -> None:
        diffs = event.get("diffs")
        if not isinstance(diffs, list):
            return
        example: dict[str, Any] | None = None
        seen: set[str] = set()
        for diff in diffs:
            if not isinstance(diff, dict):
                continue
            if diff.get("suppressed") == "noise":
                _count_noise_paths(counts, [diff])
                continue
            path = diff.get("path")
            path = fold_indices(path) if isinstance(path, str) else UNKNOWN
            tally = ep.diff(path)
            tally.count += 1
            kind = diff.get("kind")
            kind = kind if isinstance(kind, str) else UNKNOWN
            tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
            if path in seen:
                continue
            seen.add(path)
            tally.exchanges += 1
            key = record_key(event)
            if len(tally.examples) < EXAMPLES_PER_PATH and key not in tally.example_records:
                example = example or self._new_example(event, run)
                if example is not None:
                    tally.examples.append(example)
                    tally.example_records.add(key)

    def _error(self, ep: EndpointEvents, event: dict[str, Any], run: RunState) -> None:
        kind = event.get("error")
        kind = kind if isinstance(kind, str) else UNKNOWN
        tally = ep.errors.get(kind)
        if tally is None:
            if len(ep.errors) >= MAX_KINDS:
                kind = OTHER
            tally = ep.errors.setdefault(kind, ErrorTally())
        tally.count += 1
        side = event.get("side")
        side = side if isinstance(side, str) else UNKNOWN
        tally.sides[side] = tally.sides.get(side, 0) + 1
        if tally.example is None:
            tally.example = self._new_example(event, run)

    def _new_example(self, event: dict[str, Any], run: RunState) -> dict[str, Any] | None:
        if self.examples_kept >= MAX_EXAMPLES:
            return None
        self.examples_kept += 1
        return make_example(event, run.run_id, primary_url(run))


def record_key(event: Mapping[str, Any]) -> bytes:
    """Which record an exchange replayed: a record seen again (a looped log, runs merged) is
    the same example, whatever its `seq`."""
    return dumps([event.get("id"), event.get("request")])


def primary_url(run: RunState) -> str | None:
    """Where the run's primary answered: its `server_ready` url, else the configured one."""
    if "primary" in run.urls:
        return run.urls["primary"]
    targets = run.started.get("targets") if run.started else None
    if isinstance(targets, Mapping) and isinstance(targets.get("primary"), Mapping):
        url = targets["primary"].get("url")
        return url if isinstance(url, str) else None
    return None


def _record_latency(ep: EndpointEvents, event: dict[str, Any]) -> None:
    # The hot path of a big report: class checks rather than isinstance, few lookups.
    latency = event.get("latency_ms")
    if latency.__class__ is not dict:
        return
    status = event.get("status")
    if status.__class__ is not dict:
        status = {}
    by_side = ep.latency
    for side, ms in latency.items():
        # A side that failed has no status: its time to failure is no response time.
        if (ms.__class__ is not float and ms.__class__ is not int) or status.get(side, 0) is None:
            continue
        buckets = by_side.get(side)
        if buckets is None:
            buckets = by_side[side] = LatencyBuckets()
        buckets.add(ms)


def _count_noise_paths(counts: Counts, diffs: Any) -> None:
    if not isinstance(diffs, list):
        return
    for diff in diffs:
        if isinstance(diff, dict) and isinstance(diff.get("path"), str):
            path = fold_indices(diff["path"])
            if path in counts.noise_paths or len(counts.noise_paths) < MAX_PATHS_PER_ENDPOINT:
                counts.noise_paths[path] = counts.noise_paths.get(path, 0) + 1
