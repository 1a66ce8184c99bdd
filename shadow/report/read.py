"""Reading event files line by line: files, `.gz` and `-` for stdin, never more than a line held.

A line that is not a JSON object with a string `event` field is malformed: counted, its line
number kept (the first few), and skipped. A file with no event at all is an input problem
(exit 2): it is empty, or not an events file, and the message names it.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadow.errors import InputError
from shadow.sources.opening import STDIN, display_name, open_input

KEEP_MALFORMED_LINES = 20
# A file whose first lines hold no event is not read to its end: it is the wrong file.
GIVE_UP_AFTER_LINES = 1000


@dataclass(slots=True)
class InputStats:
    """What one input held: lines read, events, malformed lines (the first few numbered)."""

    path: str
    lines: int = 0
    events: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)
    read_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "lines": self.lines,
            "events": self.events,
            "malformed": self.malformed,
            "malformed_lines": list(self.malformed_lines),
            "read_error": self.read_error,
        }


def check_inputs(paths: list[str]) -> None:
    """Fail before reading anything if an input cannot be opened (exit 2, naming it)."""
    if not paths:
        raise InputError("no events file given (a path, several, or '-' for stdin)")
    if paths.count(STDIN) > 1:
        raise InputError("stdin ('-') can be given only once")
    for path in paths:
        if path == STDIN:
            continue
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not an events file")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_events(path: str, stats: InputStats) -> Iterator[dict[str, Any]]:
    """Every event of `path`, in order; malformed lines counted in `stats` and skipped."""
    name = display_name(path)
    try:
        stream = open_input(path)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        for line in stream:
            stats.lines += 1
            event = _parse(line)
            if event is None:
                if line.strip():
                    _count_malformed(stats, name)
                continue
            stats.events += 1
            yield event
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if not stats.events:
            raise InputError(f"{name}: cannot read: {exc}") from None
        # A truncated tail (a run killed while writing a .gz) still leaves a useful report.
        stats.read_error = f"read stopped at line {stats.lines + 1}: {exc}"
    finally:
        if path != STDIN:
            stream.close()
    if not stats.events:
        raise InputError(_no_events_message(name, stats))


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = _parse_slowly(line)
    if isinstance(value, dict) and isinstance(value.get("event"), str):
        return value
    return None


def _parse_slowly(line: bytes) -> Any:
    """What orjson refuses but JSON allows (a lone surrogate escape such as `"\\ud800"`)."""
    try:
        return json.loads(line, parse_constant=_reject)
    except (ValueError, RecursionError):  # ValueError: also JSONDecodeError, UnicodeDecodeError
        return None


def _reject(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _count_malformed(stats: InputStats, name: str) -> None:
    stats.malformed += 1
    if len(stats.malformed_lines) < KEEP_MALFORMED_LINES:
        stats.malformed_lines.append(stats.lines)
    if not stats.events and stats.malformed >= GIVE_UP_AFTER_LINES:
        raise InputError(
            f"{name}: not a shadow events file: none of its first {stats.malformed} lines is "
            'an event (a JSON object with an "event" field)'
        )


def _no_events_message(name: str, stats: InputStats) -> str:
    if not stats.malformed:
        return f"{name}: empty, no events to report on"
    return (
        f"{name}: not a shadow events file: none of its {stats.malformed} non-blank lines is "
        f'an event (a JSON object with an "event" field; first at line {stats.malformed_lines[0]})'
    )
