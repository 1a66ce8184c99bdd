"""`[[replay.capture]]` and `[replay] correlate`: which answer values are correlated per target.

A capture names an endpoint (an `[[compare.endpoint]]` name, a record name, or a method and a
route as those blocks use them), where its answers carry the value (a JSON Pointer into the
body, or a header such as `ETag` or `Location`), and a `name` that `[synth]` scenario steps can
use as `{NAME}`. The engine that applies them is shadow.replay.correlate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shadow.config.routepattern import RoutePattern
from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue, check_at_least, check_choice
from shadow.model import Record

CORRELATE_MODES = ("rules", "auto", "off")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class Capture:
    """One `[[replay.capture]]`: answers of `endpoint` (or of `method` + `route`) carry a value
    at `pointer` (body) or in `header`, known as `name`."""

    name: str
    endpoint: str = ""
    method: str = "*"
    route: str = ""  # the key `path` in the file
    pointer: str = ""
    header: str = ""
    pattern: RoutePattern | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidValue(
                "name", f"must be letters, digits and _, not starting with a digit: {self.name!r}"
            )
        if bool(self.endpoint) == bool(self.route):
            raise InvalidValue("endpoint", "give endpoint (a name) or path (a route), one of them")
        if self.route and not self.route.startswith("/"):
            raise InvalidValue("path", f"must be a route starting with '/', not {self.route!r}")
        if not self.method.isascii() or not (self.method == "*" or self.method.isalpha()):
            raise InvalidValue("method", f"must be an HTTP method or *, not {self.method!r}")
        object.__setattr__(self, "method", self.method.upper())
        if bool(self.pointer) == bool(self.header):
            raise InvalidValue("pointer", "give pointer (into the body) or header, one of them")
        if self.pointer and not self.pointer.startswith("/"):
            raise InvalidValue(
                "pointer", f"must be a JSON Pointer starting with '/': {self.pointer!r}"
            )
        if self.header and not _HEADER.fullmatch(self.header):
            raise InvalidValue("header", f"not a header name: {self.header!r}")
        pattern = RoutePattern.compile(self.route) if self.route else None
        object.__setattr__(self, "pattern", pattern)

    @property
    def place(self) -> str:
        """Where answers carry the value: the pointer, or `header:<name>` (lowercase)."""
        return self.pointer or f"header:{self.header.lower()}"

    def applies(self, record: Record, endpoint: str) -> bool:
        """Whether the answers to `record` (of `endpoint`) carry this capture's value."""
        if self.endpoint:
            return endpoint == self.endpoint
        if self.method not in ("*", record.method):
            return False
        return self.pattern is not None and self.pattern.matches(record.path)


@dataclass(frozen=True, slots=True)
class CorrelateConfig:
    """`[replay] correlate` (rules | auto | off), `correlate_min_length` and the captures."""

    mode: str = "rules"
    min_length: int = 16  # auto: the shortest string taken for an id
    captures: tuple[Capture, ...] = ()

    def __post_init__(self) -> None:
        check_choice("correlate", self.mode, CORRELATE_MODES)
        check_at_least("correlate_min_length", self.min_length, 1)
        seen: set[str] = set()
        for i, capture in enumerate(self.captures):
            if capture.name in seen:
                raise InvalidValue(f"capture[{i}].name", f"{capture.name!r} is used twice")
            seen.add(capture.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.captures)

    @property
    def active(self) -> bool:
        return self.mode == "auto" or (self.mode == "rules" and bool(self.captures))


def parse_correlate(t: Table) -> CorrelateConfig:
    """The correlation keys of a `[replay]` table (`t`) and its `[[replay.capture]]` list."""
    items = t.get("capture", (list,), "a list of tables ([[replay.capture]])") or []
    captures = []
    for i, item in enumerate(items):
        c = t.child(f"capture[{i}]", item)
        captures.append(
            c.build(
                Capture,
                {"route": "path"},
                name=c.text("name") if "name" in c.data else _missing(c, "name"),
                endpoint=c.text("endpoint"),
                method=c.text("method"),
                route=c.text("path"),
                pointer=c.text("pointer"),
                header=c.text("header"),
            )
        )
        c.done()
    return t.build(
        CorrelateConfig,
        {"mode": "correlate", "min_length": "correlate_min_length"},
        mode=t.text("correlate"),
        min_length=t.integer("correlate_min_length"),
        captures=tuple(captures) if captures else UNSET,
    )


def _missing(t: Table, key: str) -> str:
    raise t.fail(key, "missing (the name later requests and [synth] steps use, as {NAME})")
