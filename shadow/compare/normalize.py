"""Normalizers: how a value looks to a `normalize` rule, and JSON kinds and numbers compared exactly.

Two families, because they act at different places in a walk:

* scalar normalizers (`datetime`, `number`, `case`, `trim`, `volatile`) map one value to a
  comparable form and, set on a container, apply to every scalar beneath it; `volatile` keeps
  only the JSON type, for values that change on every answer (clocks, generated ids), so a
  type change or a missing member still shows;
* structural ones act on the node their pattern names: `sorted` compares an array of scalars as
  its sorted sequence, `null_is_missing` treats a member holding `null` as absent.

A datetime is an ISO-8601 text (any offset, `Z`, basic or extended form; digits past the
microsecond are dropped) or an RFC 1123 text (`Sun, 06 Nov 1994 08:49:37 GMT`). One without an
offset is taken to be UTC. A precision (`datetime:s`, `:ms`, `:us`) truncates before comparing,
so `...39.584Z` and `...39.584855Z` are equal at `ms` and differ at `us` or with none.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from datetime import UTC, datetime
from decimal import Context, Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias

from shadow.model import NORMALIZERS

Norm: TypeAlias = tuple[str, str]  # (kind, precision), e.g. ("datetime", "ms")

SCALAR_KINDS = ("datetime", "number", "case", "trim", "volatile")
STRUCTURAL_KINDS = ("sorted", "null_is_missing")
_PRECISIONS = {"datetime": ("", "s", "ms", "us")}

_NUMBER_TEXT = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_RFC1123 = re.compile(r"[A-Za-z]{3}, \d")
# Arithmetic for tolerance checks runs in a private context so the caller's decimal settings
# (and an overflow trap on absurd exponents) cannot change the answer; overflow just means "far".
_DECIMAL = Context(prec=60)
_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "list",
    dict: "dict",
}


def json_kind(value: Any) -> str:
    """The JSON kind of a parsed value: null, bool, int, float, str, list or dict."""
    kind = _KINDS.get(type(value))
    if kind is None:  # only hand-built values hold subclasses; bool is tried before int
        bases = (bool, int, float, str, list, dict)
        kind = next((_KINDS[t] for t in bases if isinstance(value, t)), type(value).__name__)
    return kind


def parse_norm(pattern: str, spec: str) -> Norm:
    """`"datetime:ms"` -> `("datetime", "ms")`; ValueError naming the pattern when unknown."""
    kind, _, precision = spec.partition(":")
    known = kind in SCALAR_KINDS or kind in STRUCTURAL_KINDS
    if not known or precision not in _PRECISIONS.get(kind, ("",)):
        raise ValueError(
            f"normalize {pattern!r}: unknown kind {spec!r}; expected one of {', '.join(NORMALIZERS)}"
        )
    return kind, precision


def normalize(value: Any, norm: Norm) -> Hashable | None:
    """`value` as scalar normalizer `norm` sees it, or None when the normalizer does not apply."""
    kind, precision = norm
    if kind == "datetime":
        return parse_instant(value, precision)
    if kind == "number":
        return as_decimal(value)
    if kind == "volatile":
        return ("volatile", json_kind(value))
    if isinstance(value, str):
        if kind == "case":
            return value.casefold()
        if kind == "trim":
            return value.strip()
    return None


def parse_instant(value: Any, precision: str = "") -> datetime | None:
    """The UTC instant an ISO-8601 or RFC 1123 text names, truncated to `precision`; else None."""
    if not isinstance(value, str) or len(value) < 8:
        return None
    try:
        if value[:4].isdigit():
            moment = datetime.fromisoformat(value)
        elif _RFC1123.match(value):
            moment = parsedate_to_datetime(value)
        else:
            return None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
    if precision == "s":
        return moment.replace(microsecond=0)
    if precision == "ms":
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment


def as_decimal(value: Any) -> Decimal | None:
    """An int, a float or a decimal text as an exact Decimal; None for anything else."""
    kind = json_kind(value)
    if kind == "int":
        return Decimal(value)
    if kind == "float":
        # repr is the shortest text that round-trips, so 0.1 and "0.1" come out equal.
        return Decimal(repr(value))
    if kind == "str" and _NUMBER_TEXT.fullmatch(value):
        return Decimal(value)
    return None


def numbers_close(a: Decimal, b: Decimal, absolute: float, relative: float) -> bool:
    """Whether |a - b| <= max(absolute, relative * max(|a|, |b|)), computed exactly."""
    if (absolute <= 0 and relative <= 0) or not (a.is_finite() and b.is_finite()):
        return False
    try:
        gap = _DECIMAL.abs(_DECIMAL.subtract(a, b))
        allowed = Decimal(repr(absolute))
        if relative > 0:
            scale = _DECIMAL.max(_DECIMAL.abs(a), _DECIMAL.abs(b))
            allowed = max(allowed, _DECIMAL.multiply(Decimal(repr(relative)), scale))
        return gap <= allowed
    except ArithmeticError:
        return False


def decimal_text(number: Decimal) -> str:
    """One spelling per numeric value: 1, 1.0 and 1e0 all give "1e0"."""
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # infinity (from an overflowing float)
        return str(number)
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if digits == (0,):
        return "0"
    return f"{'-' if sign else ''}{''.join(map(str, digits))}e{exponent}"


def equal_under(spec: str, a: Any, b: Any) -> bool:
    """Whether scalar normalizer `spec` makes `a` and `b` equal (both must parse)."""
    norm = parse_norm("", spec)
    x, y = normalize(a, norm), normalize(b, norm)
    return x is not None and y is not None and x == y
