"""`shadow run --transport aiohttp` and `--transport httptools` over the fault matrix: the
same events, exchange by exchange, but for latencies, and the same requests received."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.faults.helpers import check_run, fault_config, received, run_faults
from tests.support import write_jsonl

pytestmark = pytest.mark.e2e

PATHS = [
    "/ok/1",
    "/chunked",
    "/encoded?primary=gzip&candidate=br",
    "/encoded?primary=deflate&candidate=identity",
    "/status/204",
    "/status/304",
    "/status/500",
    "/reset",
    "/reset-candidate",
    "/close-after-headers",
    "/malformed",
    "/short-length",
    "/long-length",
    "/big/2",
    "/hang",
    "/json/bad-utf8",
    "/json/dup-keys",
    "/redirect?to=/elsewhere",
    "/set-cookie",
    "/storm/1",
]
RECORDS: list[dict[str, Any]] = [
    *({"method": "GET", "path": p} for p in PATHS),
    {"method": "HEAD", "path": "/ok/2"},
    {"method": "POST", "path": "/echo", "body": {"a": [1, 2]}, "headers": {"X-Id": "7"}},
    {"method": "DELETE", "path": "/echo"},
]
# What no two runs share: when, who, where (each run its own ports), how long.
VOLATILE = {"ts", "run_id", "pid", "latency_ms", "startup_ms", "duration_s", "url", "curl"}
PORT = re.compile(r"127\.0\.0\.1:\d+")


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, str):
        return PORT.sub("127.0.0.1:PORT", value)
    return value


def run_with(tmp_path: Path, transport: str) -> tuple[list[dict[str, Any]], Any, list[Any]]:
    """The exchange events by seq, run_finished's summary, and what the servers received."""
    where = tmp_path / transport
    where.mkdir()
    primary_record, candidate_record = where / "primary.record", where / "candidate.record"
    config = fault_config(
        where,
        f"transports-{transport}",
        primary=["--record", str(primary_record)],
        candidate=["--record", str(candidate_record)],
        extra="[replay]\nmax_body_bytes = 1048576\nconcurrency = 4\n",
    )
    log = write_jsonl(where / "log.jsonl", RECORDS)
    result = run_faults(config, where, str(log), "--no-calibration", "--transport", transport)
    check_run(result, f"transports-{transport}", 1)
    started = result.events[0]
    assert started["transport"]["name"] == transport, started["transport"]
    exchanges = sorted(
        (e for e in result.events if e["event"] in ("match", "mismatch", "error")),
        key=lambda e: (e["seq"], e.get("side", "")),
    )
    seen = [
        sorted(
            (r["method"], r["target"], r["body"])
            for r in received(record)
            if "method" in r and r["target"] != "/health"
        )
        for record in (primary_record, candidate_record)
    ]
    summary = {k: v for k, v in result.summary.items() if k not in ("latency_ms",)}
    return normalised(exchanges), normalised(summary.get("requests")), seen


def test_both_transports_give_the_same_events_on_the_fault_matrix(tmp_path: Path) -> None:
    reference = run_with(tmp_path, "aiohttp")
    fast = run_with(tmp_path, "httptools")
    reference_events, fast_events = reference[0], fast[0]
    assert len(fast_events) == len(reference_events) == len(RECORDS)
    for ours, theirs in zip(fast_events, reference_events, strict=True):
        assert ours == theirs
    assert fast[1:] == reference[1:]
    kinds = {e["error"] for e in fast_events if e["event"] == "error"}
    assert {"timeout", "reset", "bad_http", "bad_body", "too_large"} <= kinds, kinds
