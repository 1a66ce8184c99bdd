"""`--metrics HOST:PORT`: the run's counts in Prometheus text format, read from its tally.

Nothing is counted twice: a scrape reads the run's own Tally (and the supervisor's servers),
in the event loop that updates them, so a scrape sees one consistent moment and the replay
pays nothing between scrapes. prometheus_client writes the exposition format. Every label
set is bounded: endpoints by MAX_ENDPOINTS (then "(other)"), paths by MAX_PATHS_PER_ENDPOINT
per endpoint, latency histograms by MAX_LATENCY_ENDPOINTS endpoints, error kinds by the
replayer's short vocabulary (capped too), targets by the config.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from shadow.errors import UsageError
from shadow.run.progress import UsageSampler
from shadow.run.tally import Tally
from shadow.servers.supervisor import Supervisor

# Seconds: from a fast in-memory answer to a request timeout's worth.
LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
METRIC_NAMES = (
    "shadow_exchanges_total",
    "shadow_differences_total",
    "shadow_errors_total",
    "shadow_noise_suppressed_total",
    "shadow_latency_seconds",
    "shadow_server_rss_bytes",
    "shadow_server_cpu_percent",
    "shadow_server_restarts_total",
)


def buckets(histogram: HdrHistogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets (`le` in seconds) and the sum, from an HDR histogram of
    microseconds. A value is placed by the lowest value of its HDR bucket, so one within
    1 % above a bound (the HDR bucket's width) may count below it."""
    counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
    for item in histogram.get_recorded_iterator():
        seconds = histogram.get_lowest_equivalent_value(item.value_iterated_to) / 1e6
        slot = next((i for i, le in enumerate(LATENCY_BUCKETS_S) if seconds <= le), -1)
        counts[slot] += item.count_added_in_this_iter_step
    out, running = [], 0
    for le, count in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), counts, strict=True):
        running += count
        out.append((le, float(running)))
    total = histogram.get_total_count()
    return out, histogram.get_mean_value() * total / 1e6 if total else 0.0


class RunCollector:
    """prometheus_client's custom collector over a run's tally and servers."""

    def __init__(self, tally: Tally, supervisor: Callable[[], Supervisor | None]) -> None:
        self.tally = tally
        self.supervisor = supervisor
        self._samplers: dict[str, UsageSampler] = {}

    def collect(self) -> Iterator[Metric]:
        yield from self._outcomes()
        yield self._latency()
        yield from self._servers()

    def _outcomes(self) -> Iterator[Metric]:
        tally = self.tally
        exchanges = CounterMetricFamily(
            "shadow_exchanges", "Records replayed, by endpoint and outcome (match, mismatch, "
            "error; warm-up exchanges excluded).", labels=["endpoint", "outcome"],
        )  # fmt: skip
        diffs = CounterMetricFamily(
            "shadow_differences", "Real differences, by endpoint and JSON path.",
            labels=["endpoint", "path"],
        )  # fmt: skip
        noise = CounterMetricFamily(
            "shadow_noise_suppressed", "Differences suppressed as noise, by endpoint.",
            labels=["endpoint"],
        )  # fmt: skip
        both = CounterMetricFamily(
            "shadow_both_failed", "Exchanges where both sides failed alike, by endpoint and "
            "cause (a status >= 400, or a transport error's kind).", labels=["endpoint", "cause"],
        )  # fmt: skip
        for name, ep in tally.by_endpoint.items():
            for cause, count in ep.both_failed.items():
                both.add_metric([name, cause], count)
            for outcome, count in (("match", ep.matched), ("mismatch", ep.mismatched)):
                exchanges.add_metric([name, outcome], count)
            exchanges.add_metric([name, "error"], ep.errors)
            for path, count in ep.diffs.items():
                diffs.add_metric([name, path], count)
            noise.add_metric([name], sum(ep.noise.values()))
        errors = CounterMetricFamily(
            "shadow_errors", "Failed answers, by target and kind (timeout, refused, reset, "
            "...).", labels=["target", "kind"],
        )  # fmt: skip
        for (target, kind), count in tally.error_kinds.items():
            errors.add_metric([target, kind], count)
        yield from (exchanges, diffs, errors, noise, both)

    def _latency(self) -> Metric:
        family = HistogramMetricFamily(
            "shadow_latency_seconds", "Answer latency, by target and endpoint.",
            labels=["target", "endpoint"],
        )  # fmt: skip
        for name, ep in self.tally.by_endpoint.items():
            for target, histogram in (ep.latency or {}).items():
                if histogram.get_total_count():
                    counts, total = buckets(histogram)
                    family.add_metric([target, name], counts, total)
        return family

    def _servers(self) -> Iterator[Metric]:
        rss = GaugeMetricFamily(
            "shadow_server_rss_bytes", "Resident memory of a managed target's process group.",
            labels=["target"],
        )  # fmt: skip
        cpu = GaugeMetricFamily(
            "shadow_server_cpu_percent", "CPU of a managed target's process group since the "
            "previous scrape, in percent of one core.", labels=["target"],
        )  # fmt: skip
        restarts = CounterMetricFamily(
            "shadow_server_restarts", "Restarts of a managed target (restart = on-failure).",
            labels=["target"],
        )  # fmt: skip
        supervisor = self.supervisor()
        if supervisor is not None:
            for name, (leader, pids) in supervisor.groups().items():
                usage = self._samplers.setdefault(name, UsageSampler()).sample(leader, pids)
                rss.add_metric([name], usage.rss_bytes)
                cpu.add_metric([name], usage.cpu_percent)
                restarts.add_metric([name], supervisor.restarts.count.get(name, 0))
        yield from (rss, cpu, restarts)


@contextlib.asynccontextmanager
async def serving(
    address: tuple[str, int], tally: Tally, supervisor: Callable[[], Supervisor | None]
) -> AsyncIterator[str]:
    """`GET /metrics` on `address` while inside; yields the URL. A usage error (exit 2) when
    the address cannot be bound."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(tally, supervisor))

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4  # what Prometheus 2 and 3 read
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = address
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"--metrics {host}:{port}: {exc.strerror or exc}") from None
    try:
        yield f"http://{host}:{port}/metrics"
    finally:
        await runner.cleanup()
