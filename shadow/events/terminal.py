"""Lines for a person when stdout is a terminal: each mismatch and error as it lands.

A terminal is read, not parsed: a mismatch becomes its endpoint and request line, then one
line per differing path with its kind and `primary -> candidate`, every line cut to the
terminal's width. The events themselves go to a file then (shadow.run.lifecycle says which);
this view only ever sees them after redaction, as they were written. rich does the width and
the colour, and with it `NO_COLOR` and `FORCE_COLOR`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

import orjson
from rich.console import Console
from rich.text import Text

MAX_DIFF_LINES = 6  # per mismatch; the rest are counted ("... and 3 more")
VALUE_CHARS = 60  # of one side's value, before the line itself is cut to the width

# Values come from servers: no control character (an escape sequence) may reach the terminal.
_CONTROLS = dict.fromkeys((*range(32), *range(127, 160)), "�")


def plain(text: str) -> str:
    """`text` safe for a terminal: on one line, control characters shown as U+FFFD."""
    return " ".join(text.split()).translate(_CONTROLS) if text else text


def show_value(value: Any) -> str:
    """One side's value as compact JSON, shortened to VALUE_CHARS."""
    try:
        text = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    text = plain(text)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def request_line(request: Mapping[str, Any]) -> str:
    return plain(f"{request.get('method', '?')} {request.get('path', '?')}")


def status_text(status: Mapping[str, Any]) -> str:
    primary, candidate = status.get("primary"), status.get("candidate")
    if primary == candidate:
        return str(primary)
    return f"{primary} -> {candidate}"


def diff_text(diff: Mapping[str, Any]) -> Text:
    """`  /path  kind  primary -> candidate` (an absent side says so)."""
    kind, path = str(diff.get("kind")), str(diff.get("path"))
    primary = "(absent)" if kind == "extra" else show_value(diff.get("primary"))
    candidate = "(absent)" if kind == "missing" else show_value(diff.get("candidate"))
    return Text.assemble(
        "    ",
        (plain(path), "bold"),
        "  ",
        ("" if kind == path else kind, "magenta"),  # `status  200 -> 404`, said once
        "" if kind == path else "  ",
        primary,
        (" -> ", "dim"),
        (candidate, "yellow"),
    )


class TerminalView:
    """Prints mismatches, errors, unexpected server exits and progress for a person, as they
    happen."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.console = Console(
            file=stream if stream is not None else sys.stdout,
            highlight=False,
            markup=False,
            emoji=False,
        )

    def _line(self, text: Text) -> None:
        self.console.print(text, no_wrap=True, overflow="ellipsis", crop=True, soft_wrap=False)

    def on_event(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == "mismatch":
            self.mismatch(fields)
        elif event == "error":
            self.error(fields)
        elif event == "server_exited" and not fields.get("expected"):
            what = f"{fields.get('target')} exited unexpectedly (code {fields.get('returncode')})"
            self._line(Text.assemble(("server ", "bold red"), plain(what)))
        elif event == "progress":
            self.progress(fields)
        elif event == "input_error":
            where = f"{fields.get('source')}:{fields.get('line')}"
            self._line(
                Text.assemble(
                    ("input error ", "yellow"),
                    plain(where),
                    "  ",
                    plain(str(fields.get("message"))),
                )
            )

    def _head(self, label: str, style: str, fields: Mapping[str, Any], rest: str) -> None:
        endpoint, request = str(fields.get("endpoint")), request_line(fields.get("request") or {})
        # An endpoint named after the request itself (nothing to infer) is said once.
        where: tuple[str | tuple[str, str], ...] = ((plain(endpoint), "bold"), "  ", request, "  ")
        if plain(endpoint) == request:
            where = ((request, "bold"), "  ")
        self._line(Text.assemble((label, style), "  ", *where, (rest, "dim")))

    def mismatch(self, fields: Mapping[str, Any]) -> None:
        diffs = [d for d in fields.get("diffs") or [] if not d.get("suppressed")]
        self._head("mismatch", "bold red", fields, status_text(fields.get("status") or {}))
        for diff in diffs[:MAX_DIFF_LINES]:
            self._line(diff_text(diff))
        if len(diffs) > MAX_DIFF_LINES:
            self._line(Text(f"    ... and {len(diffs) - MAX_DIFF_LINES} more", style="dim"))

    def progress(self, fields: Mapping[str, Any]) -> None:
        """A `progress` event as one dim line: where a long run is, every interval."""
        whole = int(fields.get("elapsed_s") or 0)
        clock = f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
        counts = "  ".join(
            f"{name} {fields.get(name, 0):,}" for name in ("matched", "mismatched", "errors")
        )
        rate = fields.get("rate") or 0.0
        line = f"{clock}  sent {fields.get('sent', 0):,} ({rate:,.1f}/s)  {counts}"
        self._line(Text(line, style="dim"))

    def error(self, fields: Mapping[str, Any]) -> None:
        self._head("error", "bold yellow", fields, f"{fields.get('side')} {fields.get('error')}")
        self._line(Text("    " + plain(str(fields.get("message"))), style="yellow"))

    def write(self, text: str) -> None:
        """Print text already laid out for 100 columns (the report's headline) as it is."""
        for line in text.rstrip("\n").split("\n"):
            self._line(Text(line))
