"""Learning from answers: the values a finished exchange's answers carry, per target.

With rules, each `[[replay.capture]]` that applies names the place; automatically, every
place where the two answers hold different values of id shape (an integer, a UUID, a string
of at least `min_length` characters) of the same JSON type. The value later requests hold is
the recorded answer's when the record has one, else the primary's.

The automatic mode cannot know, from one answer, whether a differing value is an id or a
real difference, so its entries start unconfirmed: an entry becomes confirmed when a later
request of the lane uses it, and the place it came from (endpoint and pointer) is then known
to carry ids, in every lane. Only confirmed entries hide differences in answers (`hidden`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadow.config.correlate import Capture
from shadow.model import ABSENT, Response, member_at
from shadow.replay.correlate.state import Entry, LaneState, value_text

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Answer headers that differ between any two answers without naming anything a request uses.
_PASSING_HEADERS = frozenset(
    (
        "date",
        "server",
        "content-length",
        "content-type",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "x-request-id",
        "set-cookie",
        "vary",
        "age",
        "expires",
    )
)
_ABSENT = ABSENT


@dataclass(slots=True)
class Learned:
    """What one exchange taught: the conflicts met, and the places its answers differ only by
    correlated values (body pointers, header names) that the comparison is to see as such."""

    conflicts: list[dict[str, Any]] = field(default_factory=list)
    pointers: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)


def parse_body(response: Response | None) -> Any:
    """The answer's JSON body, or `_ABSENT` when it has none."""
    if response is None or not response.body or response.body[:1] not in (b"{", b"["):
        return _ABSENT
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return _ABSENT


def id_shaped(value: Any, min_length: int) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and (len(value) >= min_length or bool(_UUID.fullmatch(value)))


class Answers:
    """The three answers of an exchange (primary, candidate, recorded), parsed once."""

    def __init__(self, primary: Response, candidate: Response, recorded: Response | None) -> None:
        self.responses = {"primary": primary, "candidate": candidate, "recorded": recorded}
        self._bodies: dict[str, Any] = {}

    def body(self, side: str) -> Any:
        if side not in self._bodies:
            self._bodies[side] = parse_body(self.responses[side])
        return self._bodies[side]

    def value(self, side: str, place: str) -> Any:
        response = self.responses[side]
        if response is None:
            return _ABSENT
        if place.startswith("header:"):
            found = response.header(place[7:])
            return _ABSENT if found is None else found
        return member_at(self.body(side), place)


def learn_rules(
    answers: Answers,
    captures: list[Capture],
    endpoint: str,
    state: LaneState,
    learned: Learned,
    taught_by: tuple[str, int] = ("", 0),
) -> None:
    for capture in captures:
        place = capture.place
        primary, candidate = answers.value("primary", place), answers.value("candidate", place)
        if value_text(primary) is None or value_text(candidate) is None:
            continue
        recorded = answers.value("recorded", place)
        if value_text(recorded) is None:
            recorded = primary
        entry = Entry(
            recorded,
            {"primary": primary, "candidate": candidate},
            capture.name,
            (endpoint, place),
            confirmed=True,
            taught_by=taught_by,
        )
        _put(state, entry, place, learned)


def learn_auto(
    answers: Answers,
    endpoint: str,
    state: LaneState,
    min_length: int,
    known_places: set[tuple[str, str]],
    learned: Learned,
    taught_by: tuple[str, int] = ("", 0),
) -> None:
    for place, primary, candidate in differing(answers):
        if type(primary) is not type(candidate) or not id_shaped(primary, min_length):
            continue
        recorded = answers.value("recorded", place)
        if type(recorded) is not type(primary):
            recorded = primary
        origin = (endpoint, place)
        entry = Entry(
            recorded,
            {"primary": primary, "candidate": candidate},
            None,
            origin,
            confirmed=origin in known_places,
            taught_by=taught_by,
        )
        _put(state, entry, place, learned)


def _put(state: LaneState, entry: Entry, place: str, learned: Learned) -> None:
    before = state.by_text.get(value_text(entry.recorded) or "")
    if before is not None and before.sent == entry.sent:  # the same value seen again
        before.confirmed = before.confirmed or entry.confirmed
        if entry.name is not None:
            before.name = before.name or entry.name
            state.by_name[entry.name] = before
        return
    if before is not None and before.origin == entry.origin:
        entry.confirmed = entry.confirmed or before.confirmed
    replaced = state.put(entry)
    if replaced is not None and replaced.confirmed and replaced.taught_by != entry.taught_by:
        learned.conflicts.append(
            {
                "name": entry.name,
                "place": place,
                "recorded": entry.recorded,
                "before": replaced.sent,
                "after": entry.sent,
            }
        )


def differing(answers: Answers) -> Iterator[tuple[str, Any, Any]]:
    """(place, primary value, candidate value) wherever the two answers hold different
    scalars at the same place: headers first, then the JSON bodies' common structure."""
    primary, candidate = answers.responses["primary"], answers.responses["candidate"]
    assert primary is not None and candidate is not None
    theirs = {k.lower(): v for k, v in candidate.headers}
    for name, value in primary.headers:
        lower = name.lower()
        other = theirs.get(lower)
        if lower not in _PASSING_HEADERS and other is not None and other != value:
            yield f"header:{lower}", value, other
    if primary.body == candidate.body:
        return
    yield from _walk(answers.body("primary"), answers.body("candidate"), "")


def _walk(a: Any, b: Any, pointer: str) -> Iterator[tuple[str, Any, Any]]:
    stack = [(a, b, pointer)]
    while stack:
        a, b, pointer = stack.pop()
        if isinstance(a, dict | list) and a == b:
            # Equal by Python's `==` (at C speed): no two values differ beneath, but for
            # 1 against 1.0 or True, never an id against another.
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key, value in a.items():
                if key in b:
                    escaped = key.replace("~", "~0").replace("/", "~1")
                    stack.append((value, b[key], f"{pointer}/{escaped}"))
        elif isinstance(a, list) and isinstance(b, list):
            stack.extend(
                (x, y, f"{pointer}/{i}") for i, (x, y) in enumerate(zip(a, b, strict=False))
            )
        elif isinstance(a, dict | list) or isinstance(b, dict | list):
            continue  # a container against a scalar: not one value for another
        elif type(a) is not type(b) or a != b:
            yield pointer or "/", a, b


def hide(answers: Answers, state: LaneState, learned: Learned) -> None:
    """The places where the answers differ exactly as a confirmed entry of the lane says
    each target answered (the capture's own answer, or a later one echoing the value)."""
    pairs = _pairs(state.by_text.values())
    primary, candidate = answers.responses["primary"], answers.responses["candidate"]
    assert primary is not None and candidate is not None
    if not pairs or not _may_hold(pairs, primary, candidate):
        return
    for place, primary, candidate in differing(answers):
        if (_typed(primary), _typed(candidate)) not in pairs:
            continue
        if place.startswith("header:"):
            learned.headers.append(place[7:])
        else:
            learned.pointers.append(place)


def _may_hold(pairs: set[tuple[Any, Any]], primary: Response, candidate: Response) -> bool:
    """Whether some pair's texts are in the two answers at all (a byte search, at C speed):
    most answers hold none, and are then not walked."""
    texts = [(str(p[1]).encode(), str(c[1]).encode()) for p, c in pairs]
    heads = [
        (str(v).encode() for _, v in primary.headers),
        (str(v).encode() for _, v in candidate.headers),
    ]
    head_p, head_c = b"\n".join(heads[0]), b"\n".join(heads[1])
    return any(
        (p in primary.body or p in head_p) and (c in candidate.body or c in head_c)
        for p, c in texts
    )


def _pairs(entries: Any) -> set[tuple[Any, Any]]:
    out = set()
    for entry in entries:
        if entry.confirmed and "primary" in entry.sent and "candidate" in entry.sent:
            out.add((_typed(entry.sent["primary"]), _typed(entry.sent["candidate"])))
    return out


def _typed(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def sides(outcomes: Mapping[str, Any]) -> tuple[Response, Response] | None:
    primary, candidate = outcomes.get("primary"), outcomes.get("candidate")
    if isinstance(primary, Response) and isinstance(candidate, Response):
        return primary, candidate
    return None
