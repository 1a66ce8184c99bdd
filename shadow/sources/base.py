"""Opening inputs (files, `.gz`, `-` for stdin) and chaining their records into one stream."""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from shadow.errors import InputError
from shadow.model import Record


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A record that could not be read: `line` is a line number, or a byte offset for binary
    formats (then `offset` is True)."""

    source: str
    line: int
    message: str


Item = Record | InputProblem

STDIN = "-"


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def open_input(path: str) -> BinaryIO:
    """A binary stream for `path`: stdin for `-`, transparently gunzipped for `.gz`."""
    if path == STDIN:
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def validate_inputs(paths: list[str]) -> None:
    """Fail before anything starts if an input cannot be opened (exit 2, naming it)."""
    if paths.count(STDIN) > 1:
        raise InputError("stdin ('-') can be given only once")
    for path in paths:
        if path == STDIN:
            continue
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not a log file")
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def iter_inputs(paths: list[str], max_record_bytes: int) -> Iterator[Item]:
    """Every record of every input, in order; problems inline, never raised."""
    from shadow.sources import jsonl  # the readers import this module

    for path in paths:
        name = display_name(path)
        try:
            stream = open_input(path)
        except OSError as exc:
            yield InputProblem(name, 0, f"cannot open: {exc.strerror or exc}")
            continue
        try:
            yield from jsonl.read_records(stream, name, max_record_bytes)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield InputProblem(name, 0, f"read failed: {exc}")
        finally:
            if path != STDIN:
                stream.close()
