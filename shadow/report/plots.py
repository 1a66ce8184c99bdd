"""Plots for the HTML report, drawn by matplotlib (Agg, no display) and inlined as SVG text.

Latency is drawn as a percentile curve: the x axis runs 0 %, 90 %, 99 %, 99.9 %, ... evenly
(`-log10(1 - p)`), so the tail where a rewrite usually hurts gets as much room as the median;
the maximum sits half a step past the last percentile. Text stays text in the SVG (smaller,
and searchable); each figure gets its own id salt so the inlined SVGs never share an id.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

# The backend is chosen before these load.
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from shadow.report.series import Point

Curve = Sequence[tuple[float, float]]

COLORS = {"primary": "#3b6ea8", "candidate": "#d9822b", "secondary": "#7a7a7a", "repeat": "#9aa3ad"}
_SERIES_COLORS = {"rate": "#3d4650", "mismatched": "#c0392b", "shadow": "#5b9e5b"}
_ORDER = {"primary": 0, "candidate": 1, "secondary": 2}
_EXTRA_COLORS = ("#5b9e5b", "#a855a8", "#b5651d", "#2a9d8f")
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": "#3d4650",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#55606b",
    "ytick.color": "#55606b",
    "axes.grid": True,
    "grid.color": "#e3e7eb",
    "grid.linewidth": 0.7,
    "legend.frameon": False,
}
_TICKS = ((0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%"))


class Plotter:
    """Draws figures to SVG strings; counts them to give each its own id salt."""

    def __init__(self) -> None:
        self.count = 0

    def _svg(self, figure: Figure) -> str:
        self.count += 1
        buffer = io.StringIO()
        with matplotlib.rc_context({**_RC, "svg.hashsalt": f"shadow-plot-{self.count}"}):
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        text = buffer.getvalue()
        return text[text.index("<svg") :]  # drop the XML declaration and doctype

    def latency(self, curves: Mapping[str, Curve], sparse: bool, wide: bool = False) -> str:
        """Percentile curves, one per target, on shared axes."""
        with matplotlib.rc_context(_RC):
            figure = Figure(figsize=(9.0, 3.0) if wide else (6.4, 2.6))
            # Fixed margins: a "tight" bounding box would draw every figure twice.
            figure.subplots_adjust(left=0.1 if wide else 0.12, right=0.98, top=0.96, bottom=0.17)
            axes = figure.add_subplot()
            last = 0.0
            for i, (target, points) in enumerate(curves.items()):
                xs = [_x(p) for p, _ in points if p < 100]
                last = max([last, *xs])
                ys = [ms for p, ms in points if p < 100]
                if points and points[-1][0] >= 100:
                    xs.append(max(xs, default=0.0) + 0.5)
                    ys.append(points[-1][1])
                style = {"marker": "o", "markersize": 3.5} if sparse else {"linewidth": 1.6}
                axes.plot(xs, ys, label=label(target), color=color(target, i), **style)
            _percentile_axis(axes, last)
            axes.set_ylabel("latency (ms)")
            axes.set_ylim(bottom=0)
            axes.legend(loc="upper left")
            return self._svg(figure)

    def progress(self, series: Mapping[str, Sequence[Point]]) -> str | None:
        """Over time: throughput, mismatch rate and each server's memory, as data allows."""
        panels = [
            (title, lines)
            for title, lines in (
                ("requests / s", _rate_lines(series)),
                ("mismatched %", _mismatch_lines(series)),
                ("p99 latency (ms)", _p99_lines(series)),
                ("RSS (MiB)", _rss_lines(series)),
            )
            if lines
        ]
        if not panels:
            return None
        top = max((p.elapsed_s for points in series.values() for p in points), default=0.0)
        scale, unit = (3600.0, "h") if top > 36000 else (60.0, "min") if top > 600 else (1.0, "s")
        with matplotlib.rc_context(_RC):
            figure = Figure(figsize=(9.0, 1.8 * len(panels)))
            figure.subplots_adjust(
                left=0.1, right=0.84, top=1 - 0.1 / len(panels), bottom=0.3 / len(panels)
            )
            axes_list = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
            for axes, (title, lines) in zip(axes_list, panels, strict=True):
                for i, (name, xs, ys) in enumerate(lines):
                    xs = [x / scale for x in xs]
                    axes.plot(xs, ys, label=label(name), color=color(name, i), linewidth=1.4)
                axes.set_ylabel(title)
                axes.set_ylim(bottom=0)
                if len(lines) > 1 or title.startswith(("RSS", "p99")):
                    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
            axes_list[-1].set_xlabel(f"elapsed ({unit})")
            return self._svg(figure)


def _x(percentile: float) -> float:
    return -math.log10(1 - percentile / 100)


def _percentile_axis(axes: Axes, last: float) -> None:
    ticks = [(x, text) for x, text in _TICKS if x <= last + 1e-9]
    ticks.append((max(last, 0.0) + 0.5, "max"))
    axes.set_xticks([x for x, _ in ticks], [text for _, text in ticks])
    axes.set_xlabel("percentile")
    axes.set_xlim(-0.05, ticks[-1][0] + 0.1)


def label(name: str) -> str:
    """A legend label taken from events: never read as mathtext, never hidden by a `_`."""
    text = name[:40].replace("\\", "\\\\").replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def color(name: str, index: int) -> str:
    base = name.split(" ", 1)[0]
    found = COLORS.get(base) or _SERIES_COLORS.get(base)
    return found or _EXTRA_COLORS[index % len(_EXTRA_COLORS)]


Line = tuple[str, list[float], list[float]]


def _run_label(run_id: str, many: bool, name: str) -> str:
    return f"{name} {run_id}" if many else name


def _rate_lines(series: Mapping[str, Sequence[Point]]) -> list[Line]:
    out = []
    for run_id, points in series.items():
        xs, ys = [], []
        for prev, point in zip([None, *points[:-1]], points, strict=True):
            rate = point.rate
            if rate is None and prev is not None and point.sent is not None and prev.sent:
                span = point.elapsed_s - prev.elapsed_s
                rate = (point.sent - prev.sent) / span if span > 0 else None
            if rate is not None:
                xs.append(point.elapsed_s)
                ys.append(rate)
        if xs:
            out.append((_run_label(run_id, len(series) > 1, "rate"), xs, ys))
    return out


def _done(point: Point) -> float | None:
    parts = (point.matched, point.mismatched, point.errors)
    return None if any(p is None for p in parts) else sum(p or 0.0 for p in parts)


def _mismatch_lines(series: Mapping[str, Sequence[Point]]) -> list[Line]:
    """The share of exchanges finished in each interval that mismatched."""
    out = []
    for run_id, points in series.items():
        xs, ys = [], []
        for prev, point in itertools.pairwise(points):
            done, before = _done(point), _done(prev)
            if done is None or before is None or done <= before:
                continue
            mismatched = (point.mismatched or 0.0) - (prev.mismatched or 0.0)
            xs.append(point.elapsed_s)
            ys.append(100.0 * mismatched / (done - before))
        if xs:
            out.append((_run_label(run_id, len(series) > 1, "mismatched"), xs, ys))
    return out


def _named_lines(
    series: Mapping[str, Sequence[Point]],
    values: Callable[[Point], Mapping[str, float]],
    scale: float,
) -> list[Line]:
    out = []
    for run_id, points in series.items():
        names = sorted({n for p in points for n in values(p)}, key=lambda n: (_ORDER.get(n, 9), n))
        for name in names:
            xs = [p.elapsed_s for p in points if name in values(p)]
            ys = [values(p)[name] / scale for p in points if name in values(p)]
            out.append((_run_label(run_id, len(series) > 1, name), xs, ys))
    return out


def _p99_lines(series: Mapping[str, Sequence[Point]]) -> list[Line]:
    return _named_lines(series, lambda p: p.p99_ms, 1.0)


def _rss_lines(series: Mapping[str, Sequence[Point]]) -> list[Line]:
    return _named_lines(series, lambda p: p.rss_bytes, 2**20)
