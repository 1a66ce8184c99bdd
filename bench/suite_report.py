"""The tables of bench/suite.py: ratios to the floor, memory, and scaling over workers."""

from __future__ import annotations

import statistics
from typing import Any, Protocol

from run import table


class Measured(Protocol):
    size: int
    variant: str

    def rate(self, name: str) -> float: ...

    def cpu(self, name: str) -> float: ...


def _ratio(value: float, floor: float) -> str:
    if not floor:
        return "-"
    ratio = value / floor
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}"


def render(cells: list[Measured], transport: bool, wrk: bool) -> list[str]:
    """One row per body size and variant: the floor's pairs/s, every other contender as a
    ratio to it, and CPU per pair."""
    columns = [("shadow", "shadow (aiohttp)")]
    if transport:
        columns.append(("chosen", "shadow (chosen transport)"))
    columns += [("workers", "shadow --workers 2")]
    if wrk:
        columns.append(("wrk", "wrk / 2"))
    columns.append(("naive", "requests + DeepDiff"))
    shadow_cpu = "CPU µs/pair: shadow (chosen transport)" if transport else "CPU µs/pair: shadow"
    header = ["body", "answers", "floor, pairs/s", *(label for _, label in columns),
              shadow_cpu, "floor", "requests + DeepDiff",
              "shadow pairs/s per core"]  # fmt: skip
    rows = []
    for cell in cells:
        floor = cell.rate("floor")
        cpu = cell.cpu("chosen") if transport else cell.cpu("shadow")
        rows.append([
            f"{cell.size // 1024} KB", cell.variant, f"{floor:.0f}",
            *(_ratio(cell.rate(name), floor) for name, _ in columns),
            f"{cpu:.0f}", f"{cell.cpu('floor'):.0f}", f"{cell.cpu('naive'):.0f}",
            f"{1e6 / cpu:.0f}" if cpu else "-",
        ])  # fmt: skip
    return table(header, rows)


def render_memory(rows: list[tuple[int, float, float]]) -> list[str]:
    lines = table(
        ["records (1 KB, equal)", "shadow peak RSS, MiB", "pairs/s"],
        [[f"{n:,}", f"{rss:.1f}", f"{rate:.0f}"] for n, rss, rate in rows],
    )
    if len(rows) == 2 and rows[0][1]:
        lines.append("")
        lines.append(f"Peak RSS, long log / short log: **{rows[1][1] / rows[0][1]:.2f}**")
    return lines


def render_scaling(runs: dict[int, list[dict[str, Any]]]) -> list[str]:
    """`--workers 1` and `2` side by side, with each worker's CPU."""

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    rows, base = [], 0.0
    for workers, results in runs.items():
        rate = med([r["pairs_per_s"] for r in results])
        base = base or rate
        replay_only = []
        for r in results:
            summary = r["summary"]
            durations = [w.get("duration_s") or 0 for w in summary.get("workers") or [summary]]
            replay_only.append(summary.get("requests", 0) / max(max(durations), 1e-9))
        parts = [
            ", ".join(f"{w.get('cpu_s') or 0:.2f}" for w in r["summary"].get("workers", []))
            for r in results
        ]
        rows.append([
            str(workers), f"{rate:.0f}", _ratio(rate, base), f"{med(replay_only):.0f}",
            f"{med([r['cpu_us'] for r in results]):.0f}",
            "; ".join(p for p in parts if p) or "-",
            ", ".join(f"{r['pairs_per_s']:.0f}" for r in results),
        ])  # fmt: skip
    header = ["--workers", "pairs/s", "vs 1", "pairs/s, replay only", "CPU µs/pair",
              "workers' cpu_s, each run", "pairs/s, each run"]  # fmt: skip
    return table(header, rows)
