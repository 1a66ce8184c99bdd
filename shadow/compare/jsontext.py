"""JSON text, read two ways: whole and exactly (`parse_json_body`), or one level at a time
(`shallow`), its members left as text.

`shallow` is what lets two large bodies that differ in a few leaves be compared without
parsing them: msgspec reads an object or array into its members' raw texts (`msgspec.Raw`,
slices of the body, not copies) at several times the speed of a full parse, checking the
syntax of all of it as it goes. Two members with the same text hold the same JSON whatever
the rules, so only the texts that differ are opened further (see `shadow.compare.diff`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Self

import msgspec
import orjson
from msgspec import Raw

__all__ = ["HugeNumber", "Raw", "is_utf8", "parse_json_body", "shallow"]

_INFINITY = float("inf")
_ONLY_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # digits as 0, others blank
_DIGIT_RUN = b"0" * 19  # the shortest integer orjson may not read exactly
_BEFORE_NUMBER = frozenset(b"[:, \t\r\n")  # what may come right before a JSON number
_SHALLOW = msgspec.json.Decoder(dict[str, Raw] | list[Raw])


def parse_json_body(body: bytes) -> tuple[bool, Any]:
    """`(True, value)` when `body` is JSON text, else `(False, None)`; never raises."""
    # orjson silently turns an integer beyond 64 bits into a float, losing digits, so text with
    # a run of 19 digits (the shortest such integer) goes to the exact stdlib parser, as does
    # text orjson refuses (nesting past 1024, a number past a float's range). NaN and Infinity
    # are refused: they are not JSON.
    if not _has_long_integer(body):
        try:
            return True, orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return True, json.loads(body, parse_constant=_reject_constant, parse_float=_float)
    except (ValueError, RecursionError):
        return False, None


def _has_long_integer(body: bytes) -> bool:
    """Whether `body` may hold an integer token of 19 digits or more."""
    # A regex scan costs tens of ns a byte; translate and find run at C speed. Digit runs in
    # strings (ids, hex) are told apart from numbers by the byte before the run.
    digits = body.translate(_ONLY_DIGITS)
    at = digits.find(_DIGIT_RUN)
    while at != -1:
        start, end = at, at + len(_DIGIT_RUN)  # find gives a run's first digit
        if start > 0 and body[start - 1] == 45:  # a minus sign
            start -= 1
        if start == 0 or body[start - 1] in _BEFORE_NUMBER:
            return True
        while end < len(digits) and digits[end] == 48:
            end += 1
        at = digits.find(_DIGIT_RUN, end)
    return False


class HugeNumber(float):
    """A JSON number past a float's range (`1e400`), kept as its text: as a float it would be
    infinity, and `1e400` would equal `1e500`. Compared exactly; events write it as its text."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Self:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int | float) and not isinstance(other, bool):
            return Decimal(self.text) == Decimal(repr(other))
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(Decimal(self.text))

    def __repr__(self) -> str:
        return self.text


def _float(text: str) -> float:
    value = float(text)
    return value if value not in (_INFINITY, -_INFINITY) else HugeNumber(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def shallow(text: Raw | bytes) -> dict[str, Raw] | list[Raw] | None:
    """An object's members or an array's elements, each as its raw text, the whole of `text`
    checked for syntax; None when it is not an object or an array, or not JSON at all.

    The check is msgspec's. Where it refuses text that `parse_json_body` reads (a lone
    UTF-16 surrogate escape, nesting deeper than the interpreter's recursion limit), the
    answer is None, never a wrong one. It leaves the UTF-8 of strings unchecked: see
    `is_utf8`.
    """
    try:
        opened: dict[str, Raw] | list[Raw] = _SHALLOW.decode(text)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    return opened


def is_utf8(body: bytes) -> bool:
    """Whether `body` is UTF-8 text, as JSON must be (at C speed: most bodies are ASCII)."""
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
