"""Schedules, dispatch bookkeeping, soak config keys and soak counters, with plain values."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path

import orjson
import pytest

from shadow.config.load import load
from shadow.config.replay import RateSpec, parse_duration, parse_rate
from shadow.errors import ConfigError
from shadow.events.sink import Sink
from shadow.model import (
    Behind,
    CompareRules,
    Difference,
    Exchange,
    Failure,
    Record,
    Response,
    Sample,
    Usage,
)
from shadow.replay.pacing import Dispatch, RatePacer, RecordedPacer, Unpaced
from shadow.run.progress import TimeoutStreaks
from shadow.run.tally import Tally


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), ("500ms", 0.5), ("90", 90.0), ("1.5m", 90.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "-5s", "s", "1h30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_rates_and_ramps() -> None:
    assert parse_rate("200") == RateSpec(200, 200)
    assert parse_rate("10:200:5m") == RateSpec(10, 200, 300)
    assert parse_rate("10:200:5m").text == "10:200:300s"
    for bad in ("0", "-1", "abc", "10:200", "10:200:0s", "10:0:5m", "1:2:3:4", "inf"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_rate(bad)


def test_constant_rate_offsets_do_not_drift() -> None:
    pacer = RatePacer(RateSpec(200, 200))
    offsets = [pacer.due(None) for _ in range(100_001)]
    assert offsets[0] == 0.0 and offsets[1] == pytest.approx(0.005)
    assert offsets[100_000] == pytest.approx(500.0, abs=1e-9)
    assert pacer.due_by(1.0) == 201  # records 0..200 are due by t = 1 s
    assert pacer.rate_at(0.0) == pacer.rate_at(1e6) == 200


@pytest.mark.parametrize(("start", "end"), [(10, 200), (200, 10), (0, 50)])
def test_ramp_schedule_matches_its_rate(start: float, end: float) -> None:
    spec = RateSpec(start, end, 60.0)
    pacer = RatePacer(spec)
    offsets = [pacer.due(None) for _ in range(20_000)]
    assert all(b > a for a, b in itertools.pairwise(offsets))
    ramp_count = 60 * (start + end) / 2
    # records due by the end of the ramp: the integral of the rate
    assert pacer.due_by(60.0) == math.floor(ramp_count) + 1
    for n in (1, 100, int(ramp_count) - 1, int(ramp_count) + 10, 19_999):
        assert pacer.due_by(offsets[n] + 1e-9) == n + 1
    assert pacer.rate_at(30.0) == pytest.approx((start + end) / 2)
    assert pacer.rate_at(61.0) == end


def test_recorded_timing_scales_caps_and_restarts() -> None:
    pacer = RecordedPacer(speed=2.0, max_wait_s=3.0)
    got = [pacer.due(ts) for ts in (100.0, 101.0, None, 101.5, 120.0, 90.0, 91.0)]
    # gaps: /2 -> 0.5; no ts -> 0; 0.25; 9.5 capped at 3; backwards -> 0; then 0.5 from 90
    assert got == [0.0, 0.5, 0.5, 0.75, 3.75, 3.75, 4.25]
    pacer.new_pass()
    assert pacer.due(100.0) == 4.25  # a new pass starts right where the last one ended
    assert pacer.due(100.2) == pytest.approx(4.35)
    with pytest.raises(ValueError):
        RecordedPacer(0, 1)


def test_dispatch_counts_backlog_and_lag() -> None:
    dispatch = Dispatch(RatePacer(RateSpec(10, 10)))
    dispatch.started = 1000.0
    for _ in range(5):
        dispatch.hold(dispatch.due(None))
        dispatch.admitted()
    # at t = 2 s, 21 records are due and 5 went out: 16 behind, the next was due at 0.5 s
    assert dispatch.backlog(1002.0) == 16
    assert dispatch.lag_s(1002.0) == pytest.approx(1.5)
    assert dispatch.lag_s(1000.1) == 0.0
    unpaced = Dispatch(Unpaced())
    assert unpaced.due(None) is None and unpaced.backlog() is None and unpaced.lag_s() == 0.0


def _exchange(seq: int, primary_ms: float, candidate: Response | Failure) -> Exchange:
    return Exchange(
        seq,
        Record("GET", "/x"),
        "GET /x",
        CompareRules(),
        {"primary": Response(200, (), b"{}", primary_ms), "candidate": candidate},
    )


def test_latency_per_endpoint_and_candidate_primary_ratio() -> None:
    tally = Tally(["primary", "candidate"])
    for i in range(100):
        tally.add(_exchange(i, 10.0, Response(200, (), b"{}", 30.0)))
    summary = tally.summary()
    endpoint = summary["by_endpoint"]["GET /x"]
    assert endpoint["latency_ms"]["primary"]["p50"] == pytest.approx(10.0, rel=0.01)
    assert endpoint["latency_ratio"]["p99"] == pytest.approx(3.0, rel=0.02)
    assert summary["latency_ratio"]["p50"] == pytest.approx(3.0, rel=0.01)
    assert set(tally.take_interval_latency()["candidate"]) == {"p50", "p90", "p99", "max"}
    assert tally.take_interval_latency()["candidate"] == {}  # a new interval


def test_warmup_exchanges_are_counted_apart() -> None:
    tally = Tally(["primary", "candidate"])
    mismatch = _exchange(0, 1.0, Response(200, (), b"[]", 1.0))
    mismatch.diffs = [Difference("/", "type", {}, [])]
    assert tally.add_warmup(mismatch) == "mismatch"
    assert tally.add_warmup(_exchange(1, 1.0, Failure("reset", "x"))) == "error"
    summary = tally.summary()
    assert summary["warmup"] == {"requests": 2, "matched": 0, "mismatched": 1, "errors": 1}
    assert summary["requests"] == 0 and summary["latency_ms"]["primary"] == {}


def test_timeouts_in_a_row_trip_once_until_an_answer() -> None:
    streaks = TimeoutStreaks(after=3)
    timeout = Failure("timeout", "no complete answer within 1s")
    tripped = [streaks.observe(_exchange(i, 1.0, timeout)) for i in range(5)]
    assert tripped == [[], [], [("candidate", 3)], [], []]
    assert streaks.observe(_exchange(5, 1.0, Response(200, (), b"{}", 1.0))) == []
    assert [streaks.observe(_exchange(i, 1.0, timeout)) for i in range(3)][-1] == [("candidate", 3)]


TARGETS = """
[targets.primary]
url = "http://127.0.0.1:8002"
command = ["serve"]
[targets.candidate]
url = "http://127.0.0.1:3000"
"""


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ('[replay]\nramp = "10:x:5m"\n', "replay.ramp", "'10:x:5m'"),
        ('[replay]\nramp = "50"\n', "replay.ramp", "is not a ramp"),
        ('[replay]\nrate = 5\nramp = "1:9:1m"\n', "replay.ramp", "rate or ramp, not both"),
        ("[replay]\nunresponsive_after = 0\n", "replay.unresponsive_after", "at least 1"),
        ("[replay]\nprogress_interval_s = -1\n", "replay.progress_interval_s", "at least 0"),
        ('[targets.candidate]\nurl = "http://h:1"\nrestart = "on-failure"\n', "", ""),
    ],
)
def test_soak_config_errors_name_file_and_key(
    tmp_path: Path, extra: str, key: str, problem: str
) -> None:
    text = TARGETS + extra
    if not key:  # an attached target cannot be restarted
        text = TARGETS.split("[targets.candidate]")[0] + extra
        key, problem = "targets.candidate.restart", "only a managed target"
    path = tmp_path / "soak.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert problem in str(caught.value)


def test_soak_config_values(tmp_path: Path) -> None:
    path = tmp_path / "soak.toml"
    path.write_text(
        TARGETS.replace('command = ["serve"]', 'command = ["serve"]\nrestart = "on-failure"')
        + '[replay]\nramp = "10:200:5m"\nprogress_interval_s = 2\nbehind_warning_s = 1\n'
    )
    config = load(path)
    assert config.replay.ramp == RateSpec(10, 200, 300)
    assert config.replay.progress_interval_s == 2 and config.replay.behind_warning_s == 1
    primary = config.targets["primary"]
    assert (primary.restart, primary.max_restarts, primary.restart_backoff_s) == (
        "on-failure",
        3,
        1.0,
    )


def test_soak_events_are_flat_and_rounded() -> None:
    out = io.BytesIO()
    sink = Sink("r", out)
    usage = Usage(pid=42, processes=2, rss_bytes=50 * (1 << 20) + 1234, cpu_percent=12.5)
    sink.progress(
        Sample(
            elapsed_s=10.00049,
            sent=500,
            counts={"requests": 498, "matched": 490, "mismatched": 7, "errors": 1, "warmup": 0},
            rate=49.98765,
            target_rate=50.0,
            backlog=0,
            lag_s=0.0004,
            in_flight=2,
            latency_ms={"primary": {"p50": 2.1}},
            servers={"candidate": usage},
            shadow=usage,
        )
    )
    sink.behind_schedule(Behind(lag_s=6.12345, backlog=300, target_rate=None, in_flight=32), 5.0)
    sink.server_unresponsive("candidate", 5, 10.0)
    progress, behind, unresponsive = (orjson.loads(x) for x in out.getvalue().splitlines())
    assert progress["event"] == "progress" and progress["elapsed_s"] == 10.0
    assert progress["requests"] == 498 and progress["rate"] == 49.99 and progress["lag_s"] == 0.0
    assert progress["servers"]["candidate"] == {
        "pid": 42,
        "processes": 2,
        "rss_mb": 50.0,
        "cpu_percent": 12.5,
    }
    assert behind == {
        **behind,
        "event": "behind_schedule",
        "lag_s": 6.123,
        "warning_s": 5.0,
        "backlog": 300,
        "target_rate": None,
    }
    assert unresponsive["target"] == "candidate" and unresponsive["timeouts"] == 5
