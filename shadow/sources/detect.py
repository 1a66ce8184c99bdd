"""Which format a log is in, from its name and its first bytes.

An unambiguous extension decides (`.har`, `.gor`, `.jsonl`, `.ndjson`, each also with `.gz`);
anything else (`.json`, `.log`, `.txt`, no extension, stdin) is sniffed: a JSON document whose
first key is `log` is HAR, a line that is a JSON object is JSONL, a `1 ID TIMESTAMP` line is
GoReplay, and an nginx combined or AWS ALB line is an access log.
"""

from __future__ import annotations

import re

import orjson

from shadow.sources import access

SNIFF_BYTES = 64 << 10

_BY_EXTENSION = {
    ".har": "har",
    ".gor": "gor",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}
_HAR_START = re.compile(rb'\{\s*"log"\s*:')
_HAR_KEY = re.compile(rb'[{,]\s*"log"\s*:\s*\{')
_GOR_HEADER = re.compile(rb"[123] [0-9a-fA-F]+ \d+(?: [^ \r\n]+)*\r?\n")
_BOM = b"\xef\xbb\xbf"


def from_name(path: str) -> str | None:
    name = path.lower().removesuffix(".gz")
    for extension, fmt in _BY_EXTENSION.items():
        if name.endswith(extension):
            return fmt
    return None


def from_content(head: bytes, complete: bool) -> str | None:
    """The format of a log that starts with `head`; `complete` when head is the whole log.

    An empty log is JSONL (it has no records in any format).
    """
    text = head.removeprefix(_BOM).lstrip()
    if not text:
        return "jsonl"
    if _GOR_HEADER.match(text):
        return "gor"
    first, newline, _ = text.partition(b"\n")
    if text.startswith(b"{"):
        return _json_format(text, first, bool(newline) or complete)
    if access.matches(first.rstrip(b"\r")):
        return "access"
    return None


def _json_format(text: bytes, first: bytes, whole_line: bool) -> str | None:
    if _HAR_START.match(text):
        return "har"
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError:
        # A pretty-printed document whose "log" is not the first key, or a JSONL line longer
        # than the sniffed bytes.
        if _HAR_KEY.search(text):
            return "har"
        return None if whole_line else "jsonl"
    if isinstance(value, dict) and "log" in value and "method" not in value:
        return "har"
    return "jsonl"


def is_enough(head: bytes) -> bool:
    """Whether `head` holds enough of a stream to decide (a first line with content)."""
    content = head.removeprefix(_BOM)
    last = content.rfind(b"\n")
    return last >= 0 and len(content[:last].strip()) >= 2


def unknown_message(head: bytes) -> str:
    first = head.removeprefix(_BOM).lstrip().partition(b"\n")[0][:60]
    return (
        "not a log format shadow reads (JSONL, HAR, GoReplay .gor, nginx or AWS ALB "
        f"access log); it starts with {first!r}. Name the format with --format "
        "jsonl|har|gor|access if it is one of these"
    )
