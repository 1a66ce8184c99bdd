"""Opening inputs (files, gzip, `-` for stdin), picking each one's reader, chaining their records.

Gzip is recognised by its magic bytes (and a `.gz` name must have them), so compressed stdin
and misnamed files work too. The format is decided before a file's first record is read: from
the name when its extension is unambiguous, else from the first bytes, which are read once and
then handed to the reader again, so stdin can be sniffed without being seekable.
"""

from __future__ import annotations

import gzip
import heapq
import io
import math
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from shadow.config.settings import AUTO
from shadow.errors import InputError
from shadow.model import Item, Record, UnreadableInput
from shadow.sources import access, detect, gor, gorpairs, har, jsonl

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


Reader = Callable[[BinaryIO, str, int], Iterator[Item]]

STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_READ_ERRORS = (OSError, EOFError, zlib.error)


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


class _Replayed(io.RawIOBase):
    """A stream whose first bytes were already read, serving them again before the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read1(len(view))  # type: ignore[attr-defined]
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()


class _Gunzipped(gzip.GzipFile):
    """A GzipFile that also closes the stream it reads (GzipFile leaves a given one open)."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__(fileobj=source, mode="rb")
        self._source = source

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._source.close()


def _read_head(stream: BinaryIO, enough: Callable[[bytes], bool], limit: int) -> bytes:
    """The first bytes of `stream`: up to `limit`, fewer once `enough` says so (stdin must not
    wait for more than it needs)."""
    head = b""
    while len(head) < limit and not enough(head):
        chunk = stream.read1(limit - len(head))  # type: ignore[attr-defined]
        if not chunk:
            break
        head += chunk
    return head


def open_input(path: str) -> BinaryIO:
    """A binary stream of `path`'s content: stdin for `-`, gunzipped when it is gzip."""
    raw: BinaryIO = sys.stdin.buffer if path == STDIN else open(path, "rb")  # noqa: SIM115
    try:
        magic = _read_head(raw, lambda head: len(head) >= 2, 2)
        if path.endswith(".gz") and magic != _GZIP_MAGIC:
            raise gzip.BadGzipFile("named .gz but not gzip-compressed")
    except BaseException:
        if path != STDIN:
            raw.close()
        raise
    stream: BinaryIO = io.BufferedReader(_Replayed(magic, raw), 1 << 16)
    if magic == _GZIP_MAGIC:
        return _Gunzipped(stream)  # type: ignore[return-value]
    return stream


def open_detected(path: str, fmt: str) -> tuple[BinaryIO, str | None, bytes]:
    """`path` opened past any UTF-8 byte order mark, its format (`fmt` unless "auto"; None if
    unknown), and its first bytes (for messages)."""
    stream = open_input(path)
    try:
        head = _read_head(stream, detect.is_enough, detect.SNIFF_BYTES)
    except BaseException:
        stream.close()
        raise
    found: str | None = fmt
    if fmt == AUTO:
        found = None if path == STDIN else detect.from_name(path)
        if found is None:
            complete = len(head) < detect.SNIFF_BYTES and not detect.is_enough(head)
            found = detect.from_content(head, complete)
    head = head.removeprefix(_BOM)  # Windows tools write one; no reader expects it
    return io.BufferedReader(_Replayed(head, stream), 1 << 16), found, head


def is_stream(path: str) -> bool:
    """Whether `path` is stdin, or a pipe, socket or device (`<(zcat log.gz)` is a pipe): it
    can be read only once, so it is never opened ahead of the run."""
    if path == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def validate_inputs(paths: list[str], fmt: str = AUTO) -> None:
    """Fail before anything starts (exit 2, naming the file) if an input cannot be opened or
    is of no known format. Stdin and pipes are sniffed only when they are read."""
    if paths.count(STDIN) > 1:
        raise InputError("stdin ('-') can be given only once")
    for path in paths:
        if is_stream(path):
            continue  # sniffed when it is read: reading it now would consume it
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not a log file")
        try:
            stream, found, head = open_detected(path, fmt)
            stream.close()
        except gzip.BadGzipFile as exc:
            raise InputError(f"{path}: not a valid gzip file: {exc}") from None
        except _READ_ERRORS as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InputError(f"{path}: cannot read: {reason}") from None
        if found is None:
            raise InputError(f"{path}: {detect.unknown_message(head)}")


def reader_for(fmt: str, answers: bool = False) -> Reader:
    """The reader of a format name (one of config.settings.INPUT_FORMATS); with `answers`,
    one that keeps the recorded answers where pairing them costs (GoReplay's type 2)."""
    readers: dict[str, Reader] = {
        "jsonl": jsonl.read_records,
        "har": har.read_records,
        "gor": gorpairs.read_paired if answers else gor.read_records,
        "access": access.read_records,
    }
    return readers[fmt]


def iter_inputs(
    paths: list[str], max_record_bytes: int, fmt: str = AUTO, answers: bool = False
) -> Iterator[Item]:
    """Every record of every input, in order (per file, then file after file); problems
    inline, never raised. `fmt` is a format name or "auto" (detected per input); `answers`
    pairs `.gor` responses with their requests (`--recorded`, `convert --keep-responses`)."""
    for path in paths:
        name = display_name(path)
        try:
            stream, found, head = open_detected(path, fmt)
        except _READ_ERRORS as exc:
            yield UnreadableInput(name, 0, f"cannot read: {exc}")
            continue
        try:
            if found is None:
                yield UnreadableInput(name, 0, detect.unknown_message(head))
                continue
            yield from reader_for(found, answers)(stream, name, max_record_bytes)
        except _READ_ERRORS as exc:
            yield UnreadableInput(name, 0, f"read failed: {exc}")
        finally:
            stream.close()


def merge_by_ts(
    paths: list[str], max_record_bytes: int, fmt: str = AUTO, answers: bool = False
) -> Iterator[Item]:
    """Every input at once, merged in `ts` order, for replay with the recorded timing.

    Each file is taken to be in its own recorded order; an item without a `ts` (a record
    that has none, a problem) keeps the place of the item before it in its file.
    """

    def keyed(index: int, path: str) -> Iterator[tuple[float, int, int, Item]]:
        last = -math.inf
        for position, item in enumerate(iter_inputs([path], max_record_bytes, fmt, answers)):
            if isinstance(item, Record) and item.ts is not None:
                last = item.ts
            yield last, index, position, item

    streams = [keyed(index, path) for index, path in enumerate(paths)]
    for *_, item in heapq.merge(*streams):
        yield item
