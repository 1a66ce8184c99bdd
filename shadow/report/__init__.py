"""`shadow report`: event files in, a summary people read out (text, JSON or one HTML file)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import BinaryIO

from shadow.errors import UsageError
from shadow.report.aggregate import Aggregator
from shadow.report.examples import dumps
from shadow.report.read import InputStats, check_inputs, read_events
from shadow.report.summary import Report, build_report
from shadow.report.text import render_text
from shadow.sources.clobber import check_outputs
from shadow.sources.opening import display_name
from shadow.stdio import point_at_devnull

__all__ = ["Report", "aggregate_files", "report"]

HTML_NEEDS = (
    "shadow report --html needs matplotlib, which is not installed: "
    "pip install 'shadow-replay[report]' (or: pip install matplotlib)"
)


def aggregate_files(paths: list[str]) -> Report:
    """Read every event of every file, in order, into one report."""
    check_inputs(paths)
    agg = Aggregator()
    inputs = []
    for path in paths:
        stats = InputStats(display_name(path))
        inputs.append(stats)
        for event in read_events(path, stats):
            agg.add(event, stats.path)
    return build_report(agg, inputs)


def report(paths: list[str], html: str | None, as_json: bool, stdout: BinaryIO) -> int:
    """The `shadow report` command: 0 once the report is written, 2 for a bad input."""
    check_outputs(paths, {"--html": html})
    if html is not None:
        _check_plotting()
    result = aggregate_files(paths)
    if html is not None:
        from shadow.report.html import render_html  # matplotlib loads only when needed

        # "replace": a lone surrogate from an event cannot be written as UTF-8.
        _write_file(Path(html), render_html(result).encode("utf-8", "replace"))
        with contextlib.suppress(OSError, ValueError):  # stderr gone: the file is there
            print(f"shadow: HTML report written to {html}", file=sys.stderr, flush=True)
    if as_json:
        body = dumps(result.data) + b"\n"
    else:
        body = render_text(result.data).encode("utf-8", "replace")
    try:
        stdout.write(body)
        stdout.flush()
    except BrokenPipeError:
        with contextlib.suppress(ValueError, io.UnsupportedOperation):  # not a real descriptor
            point_at_devnull(stdout.fileno())
    return 0


def _check_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(HTML_NEEDS) from None


def _write_file(path: Path, content: bytes) -> None:
    """Write through a temporary file so a reader never sees half a report."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
