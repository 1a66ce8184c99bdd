"""The live view: a rich display of a running replay on stderr, for a person at a terminal.

Only ever on stderr, and only when stderr is a terminal (the caller decides): stdout carries
events alone. While it runs, stderr lines from shadow itself are printed above the display
(rich's stderr redirection) instead of tearing it.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shadow.replay.pacing import Dispatch
from shadow.run.tally import Tally, percentiles_ms

TOP_ENDPOINTS = 5


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


class LiveView:
    """Renders counts, pace, latency and the worst endpoints from the run's own counters."""

    def __init__(
        self,
        tally: Tally,
        dispatch: Dispatch,
        duration_s: float | None,
        limit: int | None,
        stream: IO[str] | None = None,
    ) -> None:
        self.tally = tally
        self.dispatch = dispatch
        self.duration_s = duration_s
        self.limit = limit
        console = Console(file=stream if stream is not None else sys.stderr)
        self._live = Live(
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=True,
            transient=False,
        )

    def start(self) -> None:
        self._live.start()
        self.refresh()

    def refresh(self) -> None:
        self._live.update(self.render(), refresh=True)

    def stop(self) -> None:
        self.refresh()
        self._live.stop()

    def render(self) -> Group:
        return Group(self._header(), self._counts(), self._latency(), self._endpoints())

    def _header(self) -> Group:
        dispatch = self.dispatch
        elapsed = dispatch.elapsed_s()
        rate = dispatch.sent / elapsed if elapsed > 0 else 0.0
        target = dispatch.target_rate()
        pace = f"{rate:.1f}/s" + (f" (target {target:g}/s)" if target else "")
        lag = dispatch.lag_s()
        if lag >= 1.0:
            pace += f", {lag:.1f}s behind"
        if self.duration_s:
            done, total = elapsed, self.duration_s
            position = f"{_clock(elapsed)} / {_clock(self.duration_s)}"
        else:
            done, total = float(dispatch.sent), float(self.limit or 0)
            position = f"{_clock(elapsed)}, {dispatch.sent:,} sent" + (
                f" / {self.limit:,}" if self.limit else ""
            )
        line = Text.assemble(("shadow ", "bold"), position, "   rate ", pace)
        if not total:
            return Group(line)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=total, completed=min(done, total), width=50),
            f"{min(done, total) / total:.0%}",
        )
        return Group(line, bar)

    def _counts(self) -> Text:
        t = self.tally
        return Text.assemble(
            ("matched ", "green"),
            f"{t.matched:,}   ",
            ("mismatched ", "red"),
            f"{t.mismatched:,}   ",
            ("errors ", "yellow"),
            f"{t.errors:,}   ",
            f"warm-up {t.warmup['requests']:,}",
        )

    def _latency(self) -> Table:
        table = Table("latency", "p50", "p99", box=None, pad_edge=False)
        for name, histogram in self.tally.latency.items():
            pcts = percentiles_ms(histogram)
            table.add_row(name, _ms(pcts.get("p50")), _ms(pcts.get("p99")))
        return table

    def _endpoints(self) -> Table:
        worst = sorted(
            ((ep.mismatched, ep.requests, name) for name, ep in self.tally.by_endpoint.items()),
            reverse=True,
        )[:TOP_ENDPOINTS]
        table = Table("top mismatching endpoints", "mismatched", "of", box=None, pad_edge=False)
        for mismatched, requests, name in worst:
            if mismatched:
                table.add_row(name, f"{mismatched:,}", f"{requests:,}")
        return table
