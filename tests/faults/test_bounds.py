"""Bounded whatever the input: differences per exchange, the size of an event line, the bodies
held in memory across exchanges, the preallocation of --concurrency, and route matching.

Each row runs shadow as a subprocess against fault servers on 127.0.0.1 and asserts the exit
code, no traceback, the exact counts, and that no process is left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.helpers import check_run, fault_config, log_of, run_faults
from tests.support import write_jsonl

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("cap", "shown"), [(None, 100), (7, 7)])
def test_differences_past_the_cap_are_counted_not_kept(
    tmp_path: Path, tag: str, cap: int | None, shown: int
) -> None:
    # Two arrays of 20 000 numbers, every one different. Before, each became a difference in
    # memory and in the line (840 MB and a 121 MB line for 4 MB arrays).
    extra = f"[replay]\nmax_differences = {cap}\n" if cap else ""
    config = fault_config(tmp_path, tag, extra=extra)
    log = log_of(tmp_path, ["/json/wide", "/ok/1", "/json/wide"])

    result = run_faults(config, tmp_path, str(log))

    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["mismatched"], summary["matched"]) == (3, 2, 1)
    for event in result.of("mismatch"):
        assert len(event["diffs"]) == shown
        assert event["diffs_total"] == 20_000 and event["truncated"] == ["diffs"]
        assert [d["path"] for d in event["diffs"]] == [f"/{i}" for i in range(shown)]
    assert sum(summary["by_endpoint"]["GET /json/wide"]["diffs"].values()) == 2 * shown


def test_no_event_line_is_longer_than_max_event_bytes(tmp_path: Path, tag: str) -> None:
    # A difference whose sides are 200 kB each, differences past what the line can hold, and a
    # request whose path alone is over the limit: each line is cut, and says what was cut.
    limit = 16_384
    extra = f"[replay]\nmax_event_bytes = {limit}\nmax_differences = 5000\n"
    config = fault_config(tmp_path, tag, extra=extra)
    long_path = "/ok/" + "p" * 40_000
    log = log_of(tmp_path, ["/json/big-value", "/json/wide", long_path, "/reset"])

    result = run_faults(config, tmp_path, str(log))

    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["mismatched"], summary["errors"]) == (4, 2, 1)
    assert all(len(line) <= limit for line in result.stdout.splitlines())
    by_path = {e["request"]["path"][:20]: e for e in result.events if "request" in e}
    big = by_path["/json/big-value"]
    assert big["truncated"] == ["values"]
    assert big["diffs"][0]["primary"] == {"omitted_bytes": 200_002}
    wide = by_path["/json/wide"]
    assert wide["truncated"] == ["diffs"] and wide["diffs_total"] == 20_000
    assert 0 < len(wide["diffs"]) < 5000
    cut = by_path[long_path[:20]]
    assert cut["event"] == "match" and cut["truncated"] == ["request"]
    assert cut["request"]["omitted_bytes"] > limit and len(cut["request"]["path"]) == 200


def test_bodies_past_the_total_budget_fail_as_over_budget_and_the_run_goes_on(
    tmp_path: Path, tag: str
) -> None:
    # Each /big/2 body is 2 MiB, allowed by max_body_bytes; all the bodies in memory at once
    # may take 3 MiB. Before, only each body was bounded: 16 endless bodies reached 2.1 GB.
    mib = 1 << 20
    extra = f"[replay]\nmax_body_bytes = {2 * mib}\nmax_bodies_bytes = {3 * mib}\n"
    config = fault_config(tmp_path, tag, extra=extra)
    log = log_of(tmp_path, ["/big/2", "/ok/1", "/big/2", "/big/2", "/ok/2"])

    result = run_faults(config, tmp_path, str(log), "--concurrency", "4", timeout_s="10")

    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["errors"], summary["matched"]) == (5, 3, 2)
    for event in result.of("error"):
        assert event["error"] == "over_budget", event
        assert "max_bodies_bytes" in event["message"]


@pytest.mark.parametrize(
    ("args", "config_line", "message"),
    [
        (["--concurrency", "3000000"], "", "--concurrency: must be at most 10000"),
        ([], "[replay]\nconcurrency = 3000000\n", "replay.concurrency: must be at most 10000"),
        (["--workers", "100000"], "", "--workers: must be at most 256"),
        ([], "[replay]\nmax_differences = 0\n", "replay.max_differences: must be at least 1"),
        ([], "[replay]\nmax_bodies_bytes = 10\n", "replay.max_bodies_bytes: must be at least"),
    ],
)
def test_absurd_bounds_are_refused_with_the_setting_named(
    tmp_path: Path, tag: str, args: list[str], config_line: str, message: str
) -> None:
    config = fault_config(tmp_path, tag, extra=config_line)
    result = run_faults(config, tmp_path, str(log_of(tmp_path, ["/ok/1"])), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == b""  # refused before the run started


def test_the_largest_concurrency_costs_only_what_the_log_needs(tmp_path: Path, tag: str) -> None:
    # Before, --concurrency N started N workers whatever the log held.
    config = fault_config(tmp_path, tag)
    log = log_of(tmp_path, ["/ok/1", "/ok/2"])
    result = run_faults(config, tmp_path, str(log), "--concurrency", "10000")
    summary = check_run(result, tag, 0)
    assert (summary["requests"], summary["matched"]) == (2, 2)


def test_a_huge_path_against_starred_routes_is_matched_in_linear_time(
    tmp_path: Path, tag: str
) -> None:
    # Before, `*` compiled to `.*`: a 480 kB path against this route blocked the event loop
    # for 35 s (more stars, far longer). Matched segment-wise, it is one walk of the path.
    routes = "".join(
        f'[[compare.endpoint]]\npath = "{route}"\n'
        for route in ("/api/*/users/*/orders", "/api/*/users/*/orders/*/x/*/y")
    )
    config = fault_config(tmp_path, tag, extra=routes)
    huge = "/api" + "/users" * 80_000  # many partial matches: quadratic, then cubic
    log = write_jsonl(
        tmp_path / "routes.jsonl",
        [
            # The fault server answers 404 to both: expected, so not a run that proves nothing.
            {"method": "GET", "path": huge, "expect_status": 404},
            {"method": "GET", "path": "/api/1/users/2/orders", "expect_status": 404},
        ],
    )
    result = run_faults(config, tmp_path, str(log))
    summary = check_run(result, tag, 0)
    assert (summary["requests"], summary["matched"]) == (2, 2)  # both 404 on both sides
    assert summary["by_endpoint"]["/api/*/users/*/orders"]["requests"] == 1
