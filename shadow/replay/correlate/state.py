"""What one lane knows: each correlated value as recorded, and what every target answered.

An entry is keyed by the text of the recorded value (what a path segment, a query value or a
header would hold), so a lookup from any place of a request is one dict access. Memory is
bounded: a lane keeps its newest `MAX_ENTRIES` values, the correlator the `MAX_LANES` lanes
heard from most recently (a lane silent while that many others went on is done).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 256
MAX_LANES = 10_000


def value_text(value: Any) -> str | None:
    """The text of a scalar as a path segment or header carries it; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


@dataclass(slots=True)
class Entry:
    """One correlated value: as recorded, and as each target answered it."""

    recorded: Any
    sent: dict[str, Any]  # target -> its value
    name: str | None  # the capture's name; None when found by the automatic mode
    origin: tuple[str, str]  # (endpoint, place) of the answer that gave it
    confirmed: bool  # a rule's value, or an automatic one a later request used
    # The record whose answer gave it (source, line): the same record answered again, in a
    # new `--loop` pass, replaces it without a conflict.
    taught_by: tuple[str, int] = ("", 0)


@dataclass(slots=True)
class Rewrite:
    """The requests to send for one record, per target, and what was changed in them."""

    records: dict[str, Any]  # target -> Record (a target not named gets the record as is)
    changes: list[dict[str, Any]] = field(default_factory=list)  # the event's `rewrites`
    missing: list[tuple[str, str]] = field(default_factory=list)  # (name, place) not found


@dataclass(slots=True)
class LaneState:
    by_text: dict[str, Entry] = field(default_factory=dict)
    by_name: dict[str, Entry] = field(default_factory=dict)
    pending: Rewrite | None = None  # the rewrite of the lane's record in flight (one at most)

    def put(self, entry: Entry) -> Entry | None:
        """Add `entry`; the entry it replaces when that one had other values, else None."""
        text = value_text(entry.recorded)
        if text is None:
            return None
        before = self.by_text.pop(text, None)
        self.by_text[text] = entry
        if entry.name is not None:
            self.by_name[entry.name] = entry
        if len(self.by_text) > MAX_ENTRIES:
            del self.by_text[next(iter(self.by_text))]
        if before is not None and before.sent != entry.sent:
            return before
        return None
