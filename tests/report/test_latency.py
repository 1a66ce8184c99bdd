"""Latency across shards: `shadow report` over N shards' events gives the percentiles one run
over the same records gives, merged from the histograms each shard's `run_finished` carries.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow.config.settings import Shard
from shadow.model import CompareRules, Exchange, Record, Response
from shadow.report import aggregate_files
from shadow.run.merge import absorb, shard_summary
from shadow.run.tally import Tally
from tests.support import run_shadow

TARGETS = ["primary", "candidate"]
ENDPOINTS = ["GET /a", "GET /b", "POST /c"]


def exchanges(count: int) -> list[Exchange]:
    """Exchanges with latencies spread over four decades, long tails, per endpoint."""
    rng = random.Random(7)
    out = []
    for seq in range(count):
        endpoint = ENDPOINTS[seq % len(ENDPOINTS)]
        outcomes: dict[str, Any] = {
            side: Response(200, (), b"{}", rng.lognormvariate(2.5 + i, 1.2))
            for i, side in enumerate(TARGETS)
        }
        record = Record("GET", f"/{seq}", id=f"r{seq}")
        out.append(Exchange(seq, record, endpoint, CompareRules(), outcomes))
    return out


def run_finished(tally: Tally, shard: Shard | None) -> dict[str, Any]:
    return {"event": "run_finished", "run_id": f"run-{shard}", **tally.summary()} | (
        shard_summary(tally, shard)
    )


def write_run(path: Path, finished: dict[str, Any]) -> Path:
    started = {"event": "run_started", "run_id": finished["run_id"], "targets": {}}
    path.write_bytes(orjson.dumps(started) + b"\n" + orjson.dumps(finished) + b"\n")
    return path


PERCENTILE_KEYS = ("p50", "p90", "p99", "max")


def figures(latency: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The percentiles of the two compared targets (the demo's calibration adds `repeat`)."""
    return {t: {k: latency[t][k] for k in PERCENTILE_KEYS} for t in TARGETS}


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_n_shards_reported_together_give_the_percentiles_of_one_run(
    tmp_path: Path, shards: int
) -> None:
    records = exchanges(3000)
    whole = Tally(TARGETS)
    parts = [Tally(TARGETS) for _ in range(shards)]
    for exchange in records:
        whole.add(exchange)
        parts[exchange.seq % shards].add(exchange)
    one = run_finished(whole, None)
    files = [
        str(write_run(tmp_path / f"shard-{i}.jsonl", run_finished(t, Shard(i, shards))))
        for i, t in enumerate(parts)
    ]
    report = aggregate_files(files).data
    assert report["totals"]["requests"] == 3000
    assert report["latency_ms"]["source"] == "summary"
    assert figures(report["latency_ms"]["targets"]) == figures(one["latency_ms"])
    for name in ENDPOINTS:
        entry = report["endpoints"][name]
        assert figures(entry["latency_ms"]) == figures(one["by_endpoint"][name]["latency_ms"])
        assert entry["latency_ms"]["candidate"]["count"] == 1000
    # What the report did before, each percentile the highest of the shards', is not that.
    highest = max(float(p["latency_ms"]["primary"]["p50"]) for p in map(orjson.loads, (
        Path(f).read_bytes().splitlines()[-1] for f in files
    )))  # fmt: skip
    assert highest != one["latency_ms"]["primary"]["p50"]


def test_runs_without_histograms_fall_back_to_the_highest_percentile(tmp_path: Path) -> None:
    records = exchanges(300)
    halves = [Tally(TARGETS), Tally(TARGETS)]
    for exchange in records:
        halves[exchange.seq % 2].add(exchange)
    finals = [run_finished(halves[0], Shard(0, 2)), run_finished(halves[1], None)]  # one has none
    files = [str(write_run(tmp_path / f"{i}.jsonl", f)) for i, f in enumerate(finals)]
    report = aggregate_files(files).data
    for target in TARGETS:
        expected = max(f["latency_ms"][target]["p99"] for f in finals)
        assert report["latency_ms"]["targets"][target]["p99"] == expected
        assert "count" not in report["latency_ms"]["targets"][target]


def test_a_malformed_histogram_falls_back_rather_than_failing(tmp_path: Path) -> None:
    tally = Tally(TARGETS)
    for exchange in exchanges(30):
        tally.add(exchange)
    finished = run_finished(tally, Shard(0, 1))
    finished["shard"]["latency_hdr"]["primary"] = "not a histogram"
    report = aggregate_files([str(write_run(tmp_path / "x.jsonl", finished))]).data
    primary = report["latency_ms"]["targets"]["primary"]
    assert primary["p50"] == finished["latency_ms"]["primary"]["p50"] and "count" not in primary


@pytest.mark.e2e
def test_real_shards_merge_as_a_workers_parent_merges_them(tmp_path: Path) -> None:
    # Three real shards of the demo; the report's figures are those the run's own merge
    # (shadow.run.merge, as `--workers` uses it) computes from the same run_finished lines.
    files = []
    merged = Tally(TARGETS)
    for index in range(3):
        out = tmp_path / f"shard-{index}.jsonl"
        ran = run_shadow(
            "demo", "-q", "--shard", f"{index}/3", "--output", str(out),
            "--run-dir", str(tmp_path / f"run-{index}"),
        )  # fmt: skip
        assert ran.returncode in (0, 1), ran.stderr
        absorb(merged, orjson.loads(out.read_bytes().splitlines()[-1]))
        files.append(str(out))
    report = aggregate_files(files).data
    expected = merged.summary()
    assert report["totals"]["requests"] == expected["requests"] == 13
    assert figures(report["latency_ms"]["targets"]) == figures(expected["latency_ms"])
    compared = 0
    for name, entry in expected["by_endpoint"].items():
        found = report["endpoints"][name]
        # An endpoint whose every exchange has an event (here: a mismatch) is measured from
        # the events' own latencies, finer than a run's histogram; the rest are merged.
        if found["latency_source"] == "summary":
            assert figures(found["latency_ms"]) == figures(entry["latency_ms"])
            compared += 1
    assert compared >= len(expected["by_endpoint"]) - 2  # the demo's two bugs have events
