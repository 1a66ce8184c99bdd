"""The process's standard streams: lines for people on stderr, and stdout whose reader left.

stdout carries events (or JSONL, or a report) and nothing else; everything a person reads
while a command runs goes to stderr through `Console`. A reader that goes away
(`shadow run | head -1`) is how such output normally ends, so whoever meets the broken pipe
points the descriptor at /dev/null: the interpreter's final flush then stays quiet instead of
printing a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import IO


def use_color(stream: IO[str]) -> bool:
    """Colour for a terminal, unless `NO_COLOR` is set; always with `FORCE_COLOR`
    (no-color.org, force-color.org: a set, non-empty variable counts)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


_LEVEL_COLORS = {"error: ": "\x1b[1;31m", "warning: ": "\x1b[33m"}


class Console:
    """Human-readable lines on stderr; `-q` keeps only errors, `-v` adds detail."""

    def __init__(self, verbosity: int = 0, stream: IO[str] | None = None) -> None:
        self.verbosity = verbosity
        self._stream = stream
        self.scrub: Callable[[str], str] = str  # a run sets its scrubber's (secrets masked)

    @property
    def stream(self) -> IO[str]:
        # sys.stderr looked up each time: the live view swaps in a proxy that prints above it
        return self._stream if self._stream is not None else sys.stderr

    def _say(self, level: str, message: str) -> None:
        stream = self.stream
        if level and use_color(stream):
            level = f"{_LEVEL_COLORS[level]}{level}\x1b[0m"
        # stderr gone too: nothing left to tell
        with contextlib.suppress(OSError, ValueError):
            print(f"shadow: {level}{self.scrub(message)}", file=stream, flush=True)

    def error(self, message: str) -> None:
        self._say("error: ", message)

    def warning(self, message: str) -> None:
        if self.verbosity >= 0:
            self._say("warning: ", message)

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            self._say("", message)

    def debug(self, message: str) -> None:
        if self.verbosity > 0:
            self._say("", message)

    def internal_error(self, exc: BaseException) -> None:
        """Say that `exc` is a bug in shadow, with its traceback (at any verbosity)."""
        self.error(f"internal error ({type(exc).__name__}): this is a bug in shadow")
        with contextlib.suppress(OSError, ValueError):
            text = "".join(traceback.format_exception(exc))
            print(self.scrub(text), end="", file=self.stream, flush=True)


def same_terminal(fd: int, other: int) -> bool:
    """Whether descriptors `fd` and `other` write to the same terminal (then a display drawn
    on one tears the lines written to the other)."""
    try:
        return (
            os.isatty(fd) and os.isatty(other) and os.fstat(fd).st_rdev == os.fstat(other).st_rdev
        )
    except OSError:
        return False


def point_at_devnull(fd: int) -> None:
    """Point descriptor `fd` at /dev/null: its reader left, or it was closed at start."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)


def reopen_closed_streams() -> None:
    """Started with fd 1 or 2 closed (`shadow run ... >&-`), Python sets sys.stdout or
    sys.stderr to None, and `print` to a None stderr writes to stdout, among the events. A
    closed stdout becomes a pipe nobody reads, so every command meets the gone reader it
    already handles (as with `| head -0`); a closed stderr becomes /dev/null."""
    if sys.stderr is None:
        point_at_devnull(2)
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    if sys.stdout is None:
        read_end, write_end = os.pipe()
        os.close(read_end)
        if write_end != 1:
            os.dup2(write_end, 1)
            os.close(write_end)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
