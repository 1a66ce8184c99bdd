"""Sharding: the partition function, and N `--shard I/N` runs that add up to one full run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow.config.replay import LaneRule
from shadow.config.settings import WHOLE, Shard, parse_shard
from shadow.model import InputProblem, Record
from shadow.replay.partition import Partition, shard_of
from tests.support import assert_accounted, run_shadow, write_jsonl


def mixed_items(count: int) -> list[Record | InputProblem]:
    items: list[Record | InputProblem] = []
    for i in range(count):
        if i % 17 == 0:
            items.append(InputProblem("log.jsonl", i + 1, "not JSON"))
        elif i % 3 == 0:
            items.append(Record("POST", f"/lane/{i % 11}/{i}", lane=f"user-{i % 11}"))
        else:
            items.append(Record("GET", f"/items/{i}", headers=(("X-User", f"u{i % 5}"),)))
    return items


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_item_is_in_exactly_one_shard_and_lanes_never_split(count: int) -> None:
    items = mixed_items(400)
    partitions = [Partition(Shard(i, count), LaneRule()) for i in range(count)]
    owners = [[p.owns(item, pos) for p in partitions] for pos, item in enumerate(items)]
    assert all(sum(row) == 1 for row in owners)
    lanes: dict[str, set[int]] = {}
    for row, item in zip(owners, items, strict=True):
        if isinstance(item, Record) and item.lane is not None:
            lanes.setdefault(item.lane, set()).add(row.index(True))
    assert lanes and all(len(shards) == 1 for shards in lanes.values())
    if count > 1:  # lane-less records spread: every shard gets some
        assert all(any(row[i] for row in owners) for i in range(count))


def test_lanes_from_a_header_or_the_path_keep_together() -> None:
    items = [item for item in mixed_items(300) if isinstance(item, Record)]
    for rule, key in (
        (LaneRule("header", header="X-User"), lambda r: r.header("X-User")),
        (LaneRule("path", pattern=r"^/(items|lane)/"), lambda r: r.path.split("/")[1]),
    ):
        partitions = [Partition(Shard(i, 4), rule) for i in range(4)]
        seen: dict[str, set[int]] = {}
        for pos, record in enumerate(items):
            owner = [p.owns(record, pos) for p in partitions].index(True)
            seen.setdefault(key(record), set()).add(owner)
        spread = seen.pop(None, set())  # records without that header: by position
        assert len(seen) >= 2 and all(len(shards) == 1 for shards in seen.values()), seen
        assert spread in (set(), {0, 1, 2, 3})


def test_the_hash_is_stable_across_processes_and_versions() -> None:
    # Fixed values: a shard assignment must never change between releases or machines
    # (machines running shards of one capture may run different versions).
    assert shard_of(b"lane\0user-1", 1000) == 346
    assert shard_of(b"position\x0042", 1000) == 730
    partition = Partition(Shard(0, 1000), LaneRule())
    assert partition.key(Record("GET", "/", lane="user-1"), 5) == b"lane\0user-1"
    assert partition.key(Record("GET", "/"), 42) == b"position\x0042"


def test_shards_compose_with_workers() -> None:
    items = mixed_items(300)
    outer = Partition(Shard(1, 3), LaneRule())
    inner = [Partition(Shard(1, 3).split(w, 2), LaneRule()) for w in range(2)]
    for pos, item in enumerate(items):
        assert outer.owns(item, pos) == any(p.owns(item, pos) for p in inner)
        assert sum(p.owns(item, pos) for p in inner) <= 1
    assert WHOLE.split(1, 2) == Shard(1, 2)


def test_parse_shard_names_what_is_wrong() -> None:
    assert parse_shard("2/5") == Shard(2, 5)
    for text, message in (
        ("5/5", "from 0 to 4"),
        ("0/0", "at least 1"),
        ("1", "INDEX/COUNT"),
        ("a/3", "INDEX/COUNT"),
        ("-1/3", "INDEX/COUNT"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_shard(text)


@pytest.mark.e2e
def test_a_bad_shard_option_is_a_usage_error(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": "/"}])
    url = "http://127.0.0.1:9"
    result = run_shadow("run", "--primary", url, "--candidate", url, str(log), "--shard", "3/3")
    assert result.returncode == 2
    assert "--shard" in result.stderr and "from 0 to 2" in result.stderr


# --- through the command line -------------------------------------------------------------------


def sharding_log(path: Path) -> Path:
    """Items (every fifth one differs on the fake candidate), laned records, one bad line."""
    records: list[dict[str, Any]] = []
    for n in range(90):
        record: dict[str, Any] = {"method": "GET", "path": f"/items/{n}", "id": f"r{n}"}
        if n % 4 == 0:
            record["lane"] = f"L{n % 7}"
        records.append(record)
    write_jsonl(path, records)
    with path.open("ab") as log:
        log.write(b'{"method": "GET"}\n')  # no path: an input error, reported by one shard
    return path


def outcomes(events: list[dict[str, Any]]) -> set[tuple[int, str, str]]:
    return {(e["seq"], e["id"], e["event"]) for e in events if "seq" in e}


COUNTS = ("requests", "matched", "mismatched", "errors", "input_errors")


@pytest.mark.e2e
def test_n_shard_runs_add_up_to_one_full_run(tmp_path: Path, fake_pair: tuple[str, str]) -> None:
    primary, candidate = fake_pair
    log = str(sharding_log(tmp_path / "log.jsonl"))
    attach = ("--primary", primary, "--candidate", candidate, "--emit", "all", "-q")
    full = run_shadow("run", log, *attach)
    assert full.returncode == 1, full.stderr
    shards = [run_shadow("run", log, *attach, "--shard", f"{i}/3") for i in range(3)]
    union: set[tuple[int, str, str]] = set()
    for i, shard in enumerate(shards):
        assert shard.events[0]["settings"]["shard"] == f"{i}/3"
        assert shard.summary["shard"]["index"] == i and shard.summary["shard"]["count"] == 3
        assert_accounted(shard.summary)
        mine = outcomes(shard.events)
        assert not mine & union, "a record replayed by two shards"
        union |= mine
    assert union == outcomes(full.events)
    assert len(union) == 90
    for key in COUNTS:
        assert sum(s.summary[key] for s in shards) == full.summary[key], key
    lanes: dict[str, set[int]] = {}
    for i, shard in enumerate(shards):
        for event in shard.events:
            if "lane" in event.get("request", {}):
                lanes.setdefault(event["request"]["lane"], set()).add(i)
    assert len(lanes) == 7 and all(len(owners) == 1 for owners in lanes.values())

    files = []
    for i, shard in enumerate(shards):
        files.append(tmp_path / f"shard-{i}.jsonl")
        files[-1].write_bytes(shard.stdout)
    merged = run_shadow("report", "--json", *map(str, files))
    assert merged.returncode == 0, merged.stderr
    totals = orjson.loads(merged.stdout)["totals"]  # a report, not events
    for key in ("requests", "matched", "mismatched", "errors"):
        assert totals[key] == full.summary[key], key


@pytest.mark.e2e
def test_shards_keep_the_full_runs_numbering_under_a_limit(
    tmp_path: Path, fake_pair: tuple[str, str]
) -> None:
    primary, candidate = fake_pair
    log = str(sharding_log(tmp_path / "log.jsonl"))
    attach = ("--primary", primary, "--candidate", candidate, "--emit", "all", "-q")
    full = run_shadow("run", log, *attach, "--limit", "25")
    halves = [run_shadow("run", log, *attach, "--limit", "25", "--shard", f"{i}/2") for i in (0, 1)]
    assert outcomes(halves[0].events) | outcomes(halves[1].events) == outcomes(full.events)
    assert {seq for seq, _, _ in outcomes(full.events)} == set(range(25))
    assert sum(h.summary["requests"] for h in halves) == full.summary["requests"] == 25
