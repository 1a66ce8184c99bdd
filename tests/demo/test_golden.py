"""`shadow demo` writes the same events as before the package was reorganised.

The golden files were written by the demo of the flat layout (the last commit before the
stage subpackages), normalised as below: what differs from run to run (timestamps, the run
id, pids, ports, latencies, durations, the checkout's path, the clock values that calibration
suppresses as noise) is replaced by a marker, and events are sorted by kind and `seq` (the
replay is concurrent, so the order of exchanges varies). Anything else that changes in an
event, a field added, dropped or renamed, a count, a path, a kind, fails this test: change the
golden file only with a change to the event schema, and say so in CHANGELOG.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import ROOT, run_shadow
from tests.support import events_of as checked_events

GOLDEN = Path(__file__).with_name("golden")
VOLATILE = {
    "ts",
    "run_id",
    "pid",
    "startup_ms",
    "latency_ms",
    "latency_ratio",
    "duration_s",
    "cpu_s",
    "elapsed_s",
    "achieved_rate",
    "max_lag_s",
}
ORDER = {"run_started": 0, "server_ready": 1, "server_exited": 3, "run_finished": 4}
PORT = re.compile(r"127\.0\.0\.1:\d+")


def normalised(value: Any, key: str | None = None) -> Any:
    if key in VOLATILE:
        return "<volatile>"
    if isinstance(value, dict):
        if value.get("suppressed") == "noise":  # a clock or an id: it differs on every run
            value = {**value, "primary": "<noise>", "candidate": "<noise>"}
        return {k: normalised(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, str):
        return PORT.sub("127.0.0.1:<port>", value).replace(str(ROOT), "<root>")
    return value


def events_of(stdout: bytes) -> list[dict[str, Any]]:
    events = [normalised(e) for e in checked_events(stdout)]
    events.sort(key=lambda e: (ORDER.get(e["event"], 2), e.get("seq", -1), e.get("target", "")))
    return events


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "golden"), [((), "demo-events.json"), (("--emit", "all"), "demo-events-all.json")]
)
def test_the_demo_writes_the_events_it_wrote_before(args: tuple[str, ...], golden: str) -> None:
    result = run_shadow("demo", *args)
    assert result.returncode == 1, result.stderr  # the two seeded bugs
    expected = orjson.loads((GOLDEN / golden).read_bytes())
    assert events_of(result.stdout) == expected
