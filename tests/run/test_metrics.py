"""`--metrics HOST:PORT`: Prometheus text format read from the run's tally, scraped during a
real run (in step with its progress events), and the collector's figures checked exactly.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shadow.model import CompareRules, Difference, Exchange, Failure, Record, Response
from shadow.run.metrics import LATENCY_BUCKETS_S, METRIC_NAMES, RunCollector, buckets
from shadow.run.tally import Tally, new_histogram, record_ms
from tests.support import (
    ROOT,
    assert_accounted,
    assert_no_orphans,
    free_port,
    managed_config,
    run_shadow,
    shadow_cmd,
    write_jsonl,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(found: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def exchange(seq: int, endpoint: str, primary: Any, candidate: Any, diffs: int = 0) -> Exchange:
    found = [Difference("/n", "type", 1, "1") for _ in range(diffs)]
    outcomes = {"primary": primary, "candidate": candidate}
    record = Record("GET", f"/{seq}")
    return Exchange(seq, record, endpoint, CompareRules(), outcomes, diffs=found)


def ok(ms: float) -> Response:
    return Response(200, (), b"{}", ms)


def test_the_collector_reports_the_tally_exactly() -> None:
    tally = Tally(["primary", "candidate"])
    tally.add(exchange(0, "GET /a", ok(3), ok(4)))
    tally.add(exchange(1, "GET /a", ok(30), ok(700), diffs=2))
    tally.add(exchange(2, "GET /b", Failure("timeout", "t"), ok(5)))
    tally.add(exchange(3, "GET /b", Failure("refused", "r"), Failure("refused", "r")))
    denied = Response(401, (), b"{}", 1.0)
    tally.add(exchange(4, "GET /c", denied, denied))
    collector = RunCollector(tally, lambda: None)
    found: Samples = {}
    for family in collector.collect():
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert total(found, "shadow_exchanges_total", endpoint="GET /a", outcome="match") == 1
    assert total(found, "shadow_exchanges_total", endpoint="GET /a", outcome="mismatch") == 1
    assert total(found, "shadow_exchanges_total", endpoint="GET /b", outcome="error") == 2
    assert total(found, "shadow_differences_total", endpoint="GET /a", path="/n") == 2
    assert total(found, "shadow_errors_total", target="primary", kind="timeout") == 1
    assert total(found, "shadow_errors_total", target="primary", kind="refused") == 1
    assert total(found, "shadow_errors_total", target="candidate", kind="refused") == 1
    assert total(found, "shadow_errors_total", target="candidate", kind="timeout") == 0
    assert total(found, "shadow_both_failed_total", endpoint="GET /b", cause="refused") == 1
    assert total(found, "shadow_both_failed_total", endpoint="GET /c", cause="401") == 1
    assert total(found, "shadow_both_failed_total") == 2
    bucket = "shadow_latency_seconds_bucket"
    labels = {"target": "candidate", "endpoint": "GET /a"}
    assert total(found, bucket, le="0.005", **labels) == 1  # 4 ms
    assert total(found, bucket, le="0.5", **labels) == 1
    assert total(found, bucket, le="1.0", **labels) == 2  # 700 ms
    assert total(found, bucket, le="+Inf", **labels) == 2
    assert total(found, "shadow_latency_seconds_count", **labels) == 2


def test_buckets_are_cumulative_and_end_with_every_value() -> None:
    histogram = new_histogram(2)
    values_ms = [0.5, 1.0, 7.0, 7.0, 99.0, 4000.0, 120_000.0]
    for ms in values_ms:
        record_ms(histogram, ms)
    counts, sum_s = buckets(histogram)
    assert [le for le, _ in counts] == [*map(str, LATENCY_BUCKETS_S), "+Inf"]
    assert [c for _, c in counts] == sorted(c for _, c in counts)  # cumulative
    expected = [sum(ms / 1000 <= le for ms in values_ms) for le in LATENCY_BUCKETS_S]
    assert [c for _, c in counts[:-1]] == expected and counts[-1][1] == len(values_ms)
    assert sum_s == pytest.approx(sum(values_ms) / 1000, rel=0.01)


def scrape(url: str) -> tuple[str, Samples]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        kind = answer.headers["Content-Type"]
        return kind, samples(answer.read().decode())


def read_until(proc: subprocess.Popen[bytes], wanted: Any) -> dict[str, Any]:
    """The first event `wanted` accepts (shadow's stdout, in order; bounded by the run)."""
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        event = orjson.loads(line)
        if wanted(event):
            return event
    raise AssertionError("the run ended before the event the test waits for")


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_scrape_during_a_real_run_sees_its_counts_servers_and_latency(
    tmp_path: Path, tag: str
) -> None:
    config = managed_config(tmp_path, tag, extra="[replay]\ntimeout_s = 0.2\n")
    # Three requests that time out on both sides first, then items (every fifth differs).
    paths = ["/slow/400"] * 3 + [f"/items/{n}" for n in range(1, 61)]
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": p} for p in paths])
    port = free_port()
    argv = shadow_cmd("run", "-c", str(config), str(log), "--metrics", f"127.0.0.1:{port}",
                      "--rate", "20", "--progress-interval", "0.3",
                      "--run-dir", str(tmp_path / "run"))  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        seen = read_until(proc, lambda e: e["event"] == "progress" and e["errors"] >= 3)
        kind, first = scrape(url)
        later = read_until(
            proc, lambda e: e["event"] == "progress" and e["requests"] > seen["requests"]
        )
        _, second = scrape(url)
        rest, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    finished = orjson.loads(rest.splitlines()[-1])
    assert finished["event"] == "run_finished" and proc.returncode == 1, stderr
    assert_accounted(finished)
    assert kind.startswith("text/plain") and "version=0.0.4" in kind  # the text format
    names = {n for n, _ in first}
    for name in METRIC_NAMES:
        assert any(n == name or n.startswith(name + "_") or n == name.removesuffix("_total")
                   for n in names), name  # fmt: skip
    # In step with the events: at least what the progress event had counted, at most the end.
    for scraped, event in ((first, seen), (second, later)):
        assert event["requests"] <= total(scraped, "shadow_exchanges_total")
        assert total(scraped, "shadow_exchanges_total") <= finished["requests"]
    assert total(first, "shadow_exchanges_total") <= total(second, "shadow_exchanges_total")
    for side in ("primary", "candidate"):
        assert total(first, "shadow_errors_total", target=side, kind="timeout") == 3
        assert total(second, "shadow_server_rss_bytes", target=side) > 0
        assert total(second, "shadow_server_restarts_total", target=side) == 0
        count = total(second, "shadow_latency_seconds_count", target=side)
        assert 0 < count <= finished["requests"]
    assert total(second, "shadow_differences_total") <= finished["mismatched"]
    assert f"metrics at {url}" in stderr.decode()
    assert_no_orphans(tag)


@pytest.mark.e2e
def test_a_metrics_address_that_cannot_be_bound_is_a_usage_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": "/x"}])
        result = run_shadow("run", "--primary", "http://127.0.0.1:9", "--candidate",
                            "http://127.0.0.1:9", str(log), "--metrics", f"127.0.0.1:{port}")  # fmt: skip
    assert result.returncode == 2 and "--metrics 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
    bad = run_shadow("run", "--primary", "http://127.0.0.1:9", "--candidate",
                     "http://127.0.0.1:9", str(log), "--metrics", "9100")  # fmt: skip
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr
