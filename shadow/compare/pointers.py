"""JSON Pointer patterns (`*` = one segment, `**` = any number) compiled into a lazily built DFA.

A rule set's patterns compile once into a `Machine`. A `State` is the set of live pattern
positions; its transitions are cached, and segments no pattern spells out share one transition,
which bounds the cache. Without patterns every node sits in the dead state and matching costs
an attribute read. Each state knows what the rules say about the node it stands on: ignored,
unordered (plain or keyed), which scalar normalizer applies (the first matching entry wins),
and whether `sorted` or `null_is_missing` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TypeAlias

from shadow.compare.normalize import SCALAR_KINDS, Norm, parse_norm
from shadow.model import CompareRules

__all__ = ["Machine", "State", "compile_rules", "format_pointer", "match_pointer", "parse_pointer"]

_Position: TypeAlias = tuple[int, int]  # (pattern index, segments consumed)
# A node's location: None for the root, else (parent location, key or index).
Path: TypeAlias = "tuple[Path, str | int] | None"


def parse_pointer(text: str) -> tuple[str, ...]:
    """Unescaped segments of a pointer or pattern; "" and "/" are both the root."""
    if text in ("", "/"):
        return ()
    body = text.removeprefix("/")
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in body.split("/"))


def format_pointer(path: Path) -> str:
    """The RFC 6901 text of a linked location; the root is "/"."""
    segments: list[str] = []
    while path is not None:
        path, segment = path
        text = str(segment)
        if "~" in text or "/" in text:
            text = text.replace("~", "~0").replace("/", "~1")
        segments.append(text)
    segments.reverse()
    return "/" + "/".join(segments)


def match_pointer(pattern: str, pointer: str) -> bool:
    """Whether `pointer` is matched by `pattern` (`*` = one segment, `**` = zero or more)."""
    state = _compile((("ignore", pattern, ""),)).root
    for segment in parse_pointer(pointer):
        state = state.step(segment)
    return state.ignored


class State:
    """One set of live pattern positions: a node of the lazily built DFA over segments."""

    __slots__ = (
        "_machine",
        "_next",
        "_positions",
        "ignored",
        "live",
        "norm",
        "null_is_missing",
        "sorted",
        "unordered",
        "unordered_key",
    )

    def __init__(self, machine: Machine, positions: frozenset[_Position]) -> None:
        self._machine = machine
        self._positions = positions
        self._next: dict[str | None, State] = {}
        patterns, entries = machine.patterns, machine.entries
        done = sorted(i for i, pos in positions if pos == len(patterns[i]))
        actions = [entries[i][0] for i in done]
        self.ignored = "ignore" in actions
        self.unordered = "unordered" in actions
        keys = [entries[i][2] for i in done if entries[i][0] == "keyed"]
        self.unordered_key: str | None = keys[0] if keys else None
        norms = [machine.norms[i] for i in done if machine.norms[i] is not None]
        self.norm: Norm | None = norms[0] if norms else None
        self.sorted = "sorted" in actions
        self.null_is_missing = "null_is_missing" in actions
        self.live = any(pos < len(patterns[i]) for i, pos in positions)

    def step(self, segment: str) -> State:
        """The state after descending into `segment`."""
        if not self.live:
            return self._machine.dead
        key = segment if segment in self._machine.literals else None
        state = self._next.get(key)
        if state is None:
            state = self._next[key] = self._machine.advance(self._positions, segment)
        return state

    def step_index(self, index: int) -> State:
        return self.step(str(index)) if self.live else self._machine.dead


# (action, pattern, argument): action is ignore, unordered, keyed (argument: the key member),
# normalize (argument: a scalar normalizer), sorted or null_is_missing.
_Entry: TypeAlias = tuple[str, str, str]


class Machine:
    """The compiled patterns of one rule set and the DFA states built from them so far."""

    def __init__(self, entries: tuple[_Entry, ...]) -> None:
        self.entries = entries
        self.patterns = tuple(parse_pointer(pattern) for _, pattern, _ in entries)
        self.norms: tuple[Norm | None, ...] = tuple(
            parse_norm(pattern, arg) if action == "normalize" else None
            for action, pattern, arg in entries
        )
        self.literals = frozenset(s for pat in self.patterns for s in pat if s not in ("*", "**"))
        self._interned: dict[frozenset[_Position], State] = {}
        self.dead = self._intern(frozenset())
        self.root = self._intern(self._closure((i, 0) for i in range(len(entries))))

    def advance(self, positions: frozenset[_Position], segment: str) -> State:
        moved: list[_Position] = []
        for i, pos in positions:
            pattern = self.patterns[i]
            if pos == len(pattern):
                continue
            if pattern[pos] == "**":
                moved.append((i, pos))  # `**` swallows this segment and stays
            elif pattern[pos] in ("*", segment):
                moved.append((i, pos + 1))
        return self._intern(self._closure(moved))

    def _closure(self, positions: Iterable[_Position]) -> frozenset[_Position]:
        # `**` also matches zero segments, so a position before it is also one after it.
        result: set[_Position] = set()
        todo = list(positions)
        while todo:
            i, pos = todo.pop()
            if (i, pos) not in result:
                result.add((i, pos))
                if pos < len(self.patterns[i]) and self.patterns[i][pos] == "**":
                    todo.append((i, pos + 1))
        return frozenset(result)

    def _intern(self, positions: frozenset[_Position]) -> State:
        state = self._interned.get(positions)
        if state is None:
            state = self._interned[positions] = State(self, positions)
        return state


def compile_rules(rules: CompareRules) -> Machine:
    """The machine for a rule set's patterns (cached: rule sets repeat per endpoint)."""
    return _compile_rules(rules.ignore, rules.unordered, rules.unordered_keys, rules.normalize)


@lru_cache(maxsize=256)
def _compile_rules(
    ignore: tuple[str, ...],
    unordered: tuple[str, ...],
    unordered_keys: tuple[tuple[str, str], ...],
    normalize: tuple[tuple[str, str], ...],
) -> Machine:
    # Keyed on the patterns alone, so rules differing only in headers, status or tolerance
    # share one machine (and its cached states). `line:N` patterns are for text bodies only.
    ignore = tuple(p for p in ignore if p.startswith("/"))
    normalize = tuple((p, spec) for p, spec in normalize if p.startswith("/"))
    entries: list[_Entry] = [("ignore", p, "") for p in ignore]
    entries += [("unordered", p, "") for p in unordered]
    entries += [("keyed", p, key) for p, key in unordered_keys]
    for pattern, spec in normalize:
        kind = parse_norm(pattern, spec)[0]  # raises on an unknown one, naming the pattern
        if kind in SCALAR_KINDS:
            entries.append(("normalize", pattern, spec))
        else:
            entries.append((kind, pattern, ""))
    return _compile(tuple(entries))


@lru_cache(maxsize=256)
def _compile(entries: tuple[_Entry, ...]) -> Machine:
    return Machine(entries)
