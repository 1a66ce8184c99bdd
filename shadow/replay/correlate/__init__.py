"""Correlated values per target: ids, ETags, tokens a server made, sent back as it made them.

Captured traffic from a stateful API refers to values the servers generated: `POST /orders`
answers `{"id": 1001}` on the primary and `{"id": 1}` on the candidate, and the capture's
`GET /orders/1001` must reach the candidate as `GET /orders/1`. Within a lane (whose records
run strictly in order, in one process: lanes never split across shards or workers), the
Correlator learns such values from each finished exchange's answers and rewrites the lane's
later requests per target (shadow.replay.correlate.learn, .rewrite). Records without a lane
have no order to rely on and are never correlated.

The lane's record in flight is at most one, so the rewrite made for it is kept in the lane
until its exchange comes back to `learn`, which reports it (the event's `rewrites`) together
with what the answers taught.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadow.config.correlate import CorrelateConfig
from shadow.config.replay import LaneRule
from shadow.model import CompareRules, Exchange, Record
from shadow.replay.correlate.learn import Answers, Learned, hide, learn_auto, learn_rules, sides
from shadow.replay.correlate.rewrite import rewrite_record
from shadow.replay.correlate.state import MAX_LANES, LaneState
from shadow.replay.partition import lane_of

__all__ = ["Correlated", "Correlator"]

_TARGETS = ("primary", "candidate")
_MAX_RULES = 1024


@dataclass(slots=True)
class Correlated:
    """What the correlator says about one finished exchange (for its events)."""

    lane: str
    rewrites: list[dict[str, Any]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (name, place)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


class Correlator:
    """Per lane: learn from answers (`learn`), rewrite requests per target (`prepare`)."""

    def __init__(self, config: CorrelateConfig, lane_rule: LaneRule) -> None:
        self.config = config
        self._rule = lane_rule
        self._regex = re.compile(lane_rule.pattern) if lane_rule.pattern else None
        self._names = frozenset(config.names)
        self._lanes: dict[str, LaneState] = {}
        self._known_places: set[tuple[str, str]] = set()  # auto: (endpoint, place) of ids
        self._rules: dict[tuple[CompareRules, tuple[str, ...], tuple[str, ...]], CompareRules] = {}

    def forget(self) -> None:
        """Clear every lane's values: the targets start again from a known state (a new
        `--loop` pass after a reset). Call it only when no exchange is in flight."""
        self._lanes.clear()

    def prepare(self, record: Record) -> Mapping[str, Record]:
        """The record as each target is to get it (targets not named: as recorded)."""
        lane = lane_of(record, self._rule, self._regex)
        if lane is None:
            return {}
        state = self._lanes.get(lane)
        if state is None:
            if not self._names or "{" not in record.path + str(record.headers) + str(record.body):
                return {}
            state = self._lane(lane)
        rewrite = rewrite_record(record, state, _TARGETS, self._names)
        state.pending = rewrite
        if rewrite is None:
            return {}
        for change in rewrite.changes:
            self._confirm(state, change)
        return rewrite.records

    def _confirm(self, state: LaneState, change: Mapping[str, Any]) -> None:
        if self.config.mode != "auto":
            return
        entry = state.by_text.get(str(change["recorded"]))
        if entry is not None:
            self._known_places.add(entry.origin)

    def learn(self, exchange: Exchange) -> Correlated | None:
        """Learn from a finished exchange's answers; make its rules see the correlated
        differences as such (presence and JSON type still compared); say what was done."""
        lane = lane_of(exchange.record, self._rule, self._regex)
        if lane is None:
            return None
        state = self._lanes.pop(lane, None)
        pending = state.pending if state is not None else None
        if state is not None:
            state.pending = None
            self._lanes[lane] = state  # the most recently heard-from lane: dropped last
        answered = sides(exchange.outcomes)
        learned = Learned()
        if answered is not None:
            state = state if state is not None else self._lane(lane)
            self._learn(exchange, Answers(*answered, exchange.record.response), state, learned)
        if pending is None and not learned.conflicts:
            return None
        return Correlated(
            lane,
            pending.changes if pending is not None else [],
            pending.missing if pending is not None else [],
            learned.conflicts,
        )

    def _learn(
        self, exchange: Exchange, answers: Answers, state: LaneState, learned: Learned
    ) -> None:
        record, endpoint = exchange.record, exchange.endpoint
        taught_by = (record.source, record.line)
        if self.config.mode == "auto":
            known = self._known_places
            learn_auto(answers, endpoint, state, self.config.min_length, known, learned, taught_by)
        captures = [c for c in self.config.captures if c.applies(record, endpoint)]
        if captures:
            learn_rules(answers, captures, endpoint, state, learned, taught_by)
        if not state.by_text:
            return
        hide(answers, state, learned)
        if learned.pointers or learned.headers:
            exchange.rules = self._with_hidden(exchange.rules, learned)

    def _with_hidden(self, rules: CompareRules, learned: Learned) -> CompareRules:
        """`rules` plus `volatile` on the pointers and the headers ignored: the same few
        combinations recur in a run, so they are made once."""
        key = (rules, tuple(learned.pointers), tuple(learned.headers))
        found = self._rules.get(key)
        if found is None:
            found = dataclasses.replace(
                rules,
                normalize=rules.normalize + tuple((p, "volatile") for p in learned.pointers),
                ignore_headers=tuple(dict.fromkeys(rules.ignore_headers + key[2])),
            )
            if len(self._rules) >= _MAX_RULES:
                self._rules.clear()
            self._rules[key] = found
        return found

    def _lane(self, lane: str) -> LaneState:
        state = self._lanes.get(lane)
        if state is None:
            state = self._lanes[lane] = LaneState()
            if len(self._lanes) > MAX_LANES:
                del self._lanes[next(iter(self._lanes))]
        return state
