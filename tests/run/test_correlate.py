"""Correlated values end to end: two stateful servers with their own id sequences and ETags,
a captured CRUD lane per order, replayed by `shadow run` with and without correlation."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import HELPERS, Shadow, free_port, run_shadow, serving, write_jsonl

pytestmark = pytest.mark.e2e

STATEFUL = HELPERS / "stateful_server.py"
RULES = """
[[replay.capture]]
name = "order_id"
method = "POST"
path = "/orders"
pointer = "/id"

[[replay.capture]]
name = "order_etag"
path = "/*"
header = "ETag"
"""


def etag(number: int, version: int) -> str:
    return '"' + hashlib.sha1(f"{number}:{version}".encode()).hexdigest() + '"'


def order(number: int, total: int, version: int) -> dict[str, Any]:
    return {"id": number, "item": "book", "total": total, "version": version}


def answer(status: int, body: Any, tag: str | None = None) -> dict[str, Any]:
    headers = [["Content-Type", "application/json"]]
    if tag is not None:
        headers.append(["ETag", tag])
    return {"status": status, "headers": headers, "body": body}


def crud_lane(lane: str, number: int, answers: bool) -> list[dict[str, Any]]:
    """create, read, update (If-Match), read, delete, read again: as the legacy answered,
    its answers kept in the records when `answers`."""
    path = f"/orders/{number}"
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"method": "POST", "path": "/orders", "body": {"item": "book", "total": 10}},
            answer(201, order(number, 10, 1), etag(number, 1)),
        ),
        ({"method": "GET", "path": path}, answer(200, order(number, 10, 1), etag(number, 1))),
        (
            {
                "method": "PATCH",
                "path": path,
                "headers": {"If-Match": etag(number, 1)},
                "body": {"total": 12},
            },
            answer(200, order(number, 12, 2), etag(number, 2)),
        ),
        ({"method": "GET", "path": f"{path}?fields=all"}, answer(200, order(number, 12, 2))),
        ({"method": "DELETE", "path": path}, {"status": 204}),
        ({"method": "GET", "path": path}, answer(404, {"error": "not found"})),
    ]
    out = []
    for request, response in steps:
        record = {**request, "lane": lane}
        if answers:
            record["response"] = response
        out.append(record)
    return out


@contextlib.contextmanager
def stateful_pair(bug: bool = False) -> Iterator[tuple[str, str]]:
    """The legacy (ids from 1001) and the rewrite (ids from 1), fresh for each test."""
    with contextlib.ExitStack() as stack:
        urls = []
        for first_id in (1001, 1):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            argv = [sys.executable, str(STATEFUL), "--port", str(port), "--first-id", str(first_id)]
            if bug and first_id == 1:
                argv.append("--bug-total")
            stack.enter_context(serving(argv, url + "/health"))
            urls.append(url)
        yield urls[0], urls[1]


def run(
    tmp_path: Path, urls: tuple[str, str], records: list[dict[str, Any]], extra: str, *args: str
) -> Shadow:
    config = tmp_path / "shadow.toml"
    config.write_text(
        f'[targets.primary]\nurl = "{urls[0]}"\n[targets.candidate]\nurl = "{urls[1]}"\n'
        f"[replay]\n{extra}\n"
    )
    log = write_jsonl(tmp_path / "capture.jsonl", records)
    return run_shadow(
        "run", "-c", str(config), "--no-calibration", "--emit", "all", *args, str(log)
    )


def statuses(result: Shadow) -> list[tuple[int, int]]:
    events = sorted(result.of("match") + result.of("mismatch"), key=lambda e: e["seq"])
    return [(e["status"]["primary"], e["status"]["candidate"]) for e in events]


def test_a_crud_lane_matches_with_correlation(tmp_path: Path) -> None:
    with stateful_pair() as urls:
        result = run(tmp_path, urls, crud_lane("a", 1001, answers=False), RULES)
    summary = result.summary
    assert (summary["matched"], summary["mismatched"], summary["errors"]) == (6, 0, 0), (
        result.stderr
    )
    assert statuses(result) == [
        (201, 201),
        (200, 200),
        (200, 200),
        (200, 200),
        (204, 204),
        (404, 404),
    ]
    events = {e["seq"]: e for e in result.of("match")}
    assert "rewrites" not in events[0]
    assert events[1]["rewrites"] == [
        {
            "place": "path",
            "name": "order_id",
            "recorded": 1001,
            "sent": {"primary": 1001, "candidate": 1},
        }
    ]
    patch = {r["place"]: r for r in events[2]["rewrites"]}
    assert patch["header:If-Match"]["sent"] == {"primary": etag(1001, 1), "candidate": etag(1, 1)}
    assert patch["path"]["sent"]["candidate"] == 1
    assert events[3]["request"]["path"] == "/orders/1001?fields=all"  # the request as recorded
    assert result.returncode == 0


def test_without_correlation_the_lane_is_404_against_200(tmp_path: Path) -> None:
    with stateful_pair() as urls:
        off = 'correlate = "off"\n' + RULES
        result = run(tmp_path, urls, crud_lane("a", 1001, answers=False), off)
    assert statuses(result) == [
        (201, 201),
        (200, 404),
        (200, 404),
        (200, 404),
        (204, 404),
        (404, 404),
    ]
    assert result.summary["mismatched"] == 5  # the create's /id and the four 200-vs-404s
    assert not any("rewrites" in e for e in result.events)
    assert result.returncode == 1


def test_a_real_difference_in_a_correlated_lane_is_found(tmp_path: Path) -> None:
    with stateful_pair(bug=True) as urls:
        result = run(tmp_path, urls, crud_lane("a", 1001, answers=False), RULES)
    mismatches = result.of("mismatch")
    found = {
        (e["seq"], d["path"], d["primary"], d["candidate"]) for e in mismatches for d in e["diffs"]
    }
    # PATCH answers total 13 instead of 12, and the next read shows it; nothing else differs.
    assert found == {(2, "/total", 12, 13), (3, "/total", 12, 13)}, found
    assert result.returncode == 1


def test_auto_mode_finds_the_pairs_without_rules(tmp_path: Path) -> None:
    with stateful_pair() as urls:
        result = run(tmp_path, urls, crud_lane("a", 1001, answers=False), 'correlate = "auto"')
    assert statuses(result) == [
        (201, 201),
        (200, 200),
        (200, 200),
        (200, 200),
        (204, 204),
        (404, 404),
    ]
    # The create cannot be told from a real difference before a later request uses its id.
    mismatches = result.of("mismatch")
    assert [e["seq"] for e in mismatches] == [0]
    assert [d["path"] for d in mismatches[0]["diffs"]] == ["/id"]


def many_lanes(count: int) -> list[dict[str, Any]]:
    """Several lanes interleaved, as a capture of concurrent clients with the legacy's
    answers (whose ids then need not follow the replay's order)."""
    lanes = [crud_lane(f"client-{i}", 5000 + i, answers=True) for i in range(count)]
    return [record for step in zip(*lanes, strict=True) for record in step]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_recorded_answers_give_the_values_with_workers(tmp_path: Path, workers: str) -> None:
    with stateful_pair() as urls:
        result = run(tmp_path, urls, many_lanes(6), RULES, "--workers", workers)
    summary = result.summary
    assert (summary["matched"], summary["mismatched"], summary["errors"]) == (36, 0, 0), [
        e.get("diffs") for e in result.of("mismatch")
    ]
    rewritten = [e for e in result.of("match") if "rewrites" in e]
    assert len(rewritten) == 6 * 5  # every request after the create refers to the order
    assert all(
        r["recorded"] in range(5000, 5006) or r["recorded"].startswith('"')
        for e in rewritten
        for r in e["rewrites"]
    )


def test_recorded_compares_the_candidate_with_the_capture(tmp_path: Path) -> None:
    with stateful_pair() as urls:
        # The primary's url is never asked under --recorded.
        result = run(tmp_path, urls, many_lanes(3), RULES, "--recorded")
    summary = result.summary
    assert (summary["matched"], summary["mismatched"], summary["errors"]) == (18, 0, 0), [
        e.get("diffs") for e in result.of("mismatch")
    ]
    read = next(e for e in result.of("match") if e["seq"] == 3)
    assert read["rewrites"][0]["recorded"] == 5000
    assert read["rewrites"][0]["sent"]["candidate"] in (1, 2, 3)


def test_shards_each_correlate_their_own_lanes(tmp_path: Path) -> None:
    """`--shard i/N` splits by lane: each shard learns and uses its lanes' values alone."""
    matched = 0
    with stateful_pair() as urls:
        for index in range(2):
            work = tmp_path / str(index)
            work.mkdir()
            result = run(work, urls, many_lanes(6), RULES, "--shard", f"{index}/2")
            summary = result.summary
            assert (summary["mismatched"], summary["errors"]) == (0, 0), result.stderr
            assert 0 < summary["matched"] < 36  # a share of the lanes, whole lanes only
            assert summary["matched"] % 6 == 0
            matched += summary["matched"]
    assert matched == 36


def test_a_reset_before_each_loop_pass_starts_the_lane_again(tmp_path: Path) -> None:
    """Both servers reset between two passes: the lane is created again from the start of
    each target's sequence, the values learned in the first pass are forgotten with the
    reset, and both passes match with the same rewrites."""
    reset = '[targets.{name}.reset]\nmethod = "POST"\npath = "/reset"\nstatus = 204\n'
    # It first asks for the order it is about to create: a 404 on both sides, sent as
    # recorded in each pass (a value kept from the first pass would be rewritten).
    lane = [{"method": "GET", "path": "/orders/1001", "lane": "a"}]
    lane += crud_lane("a", 1001, answers=False)
    with stateful_pair() as urls:
        config = tmp_path / "shadow.toml"
        config.write_text(
            f'[targets.primary]\nurl = "{urls[0]}"\n{reset.format(name="primary")}'
            f'[targets.candidate]\nurl = "{urls[1]}"\n{reset.format(name="candidate")}'
            f"[replay]\n{RULES}\n"
        )
        log = write_jsonl(tmp_path / "capture.jsonl", lane)
        result = run_shadow(
            "run", "-c", str(config), "--no-calibration", "--emit", "all",
            "--loop", "--limit", str(2 * len(lane)), str(log),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [e["target"] for e in result.of("reset")] == ["primary", "candidate"] * 2
    summary = result.summary
    assert (summary["matched"], summary["mismatched"], summary["errors"]) == (14, 0, 0)
    events = sorted(result.of("match"), key=lambda e: e["seq"])
    first, second = events[: len(lane)], events[len(lane) :]
    assert [e.get("rewrites") for e in first] == [e.get("rewrites") for e in second]
    assert "rewrites" not in second[0]
    assert first[2]["rewrites"][0]["sent"] == {"primary": 1001, "candidate": 1}
