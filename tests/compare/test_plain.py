"""Tests for the rule-free walk (shadow.compare.plain) against the walk with rules.

The rule-free walk is taken beneath any node no rule reaches; a pattern with `**` that
never matches keeps every node on the general walk, so the two can be compared on the same
values: same differences, same order, same count past the cap.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadow.compare import plain
from shadow.compare.diff import Differences, diff_json, diff_responses
from shadow.compare.differences import Differences as MovedDifferences
from shadow.model import CompareRules, Difference, Response
from tests.compare.test_diff import PROPERTY, close_values, json_values, nested

RULES = CompareRules()
# Live at every node (`**`), applying at none: the general walk, rule lookups and all.
GENERAL = CompareRules(ignore=("/**/no member is called this",))


def reordered(value: Any) -> Any:
    """`value` with the members of every object in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(v) for k, v in reversed(value.items())}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def document(events: int) -> dict[str, Any]:
    return {
        "score": "23.456789",
        "flags": {"dedup": True, "weight": 1, "ratio": 1.0},
        "events": [
            {"id": i, "detail": {"tx": {"block": 19_000_000 + i, "logs": [{"data": f"{i}"}]}}}
            for i in range(events)
        ],
    }


def walks(a: Any, b: Any, cap: int) -> tuple[Differences, Differences]:
    fast, general = Differences(cap), Differences(cap)
    diff_json(a, b, RULES, fast)
    diff_json(a, b, GENERAL, general)
    return fast, general


@PROPERTY
@given(json_values | close_values, json_values | close_values, st.sampled_from([1, 3, 100]))
def test_the_rule_free_walk_finds_what_the_general_walk_finds(a: Any, b: Any, cap: int) -> None:
    fast, general = walks(a, b, cap)
    assert list(fast) == list(general)  # the same differences in the same order
    assert fast.total == general.total


@PROPERTY
@given(json_values | close_values)
def test_members_in_another_order_are_equal_and_changes_beneath_them_still_show(
    value: Any,
) -> None:
    assert diff_json(value, reordered(value), RULES) == []
    fast, general = walks([value, 1], [reordered(value), 1.0], 100)
    assert list(fast) == list(general) == [Difference("/1", "type", 1, 1.0)]


def test_the_rule_free_walk_is_taken_and_never_recurses(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = plain.diff_plain
    monkeypatch.setattr(
        "shadow.compare.diff.diff_plain", lambda *args: calls.append(args[0]) or real(*args)
    )
    deep_p, deep_c = nested(20_000, {"a": 1}), nested(20_000, {"a": 2})
    assert diff_json(deep_p, deep_c, RULES) == [Difference("/0" * 20_000 + "/a", "value", 1, 2)]
    assert calls == [None]  # from the root: no rule anywhere
    calls.clear()
    diff_json(deep_p, deep_c, GENERAL)
    assert calls == []


def test_types_stay_apart_among_many_equal_siblings() -> None:
    primary = document(300)
    candidate = copy.deepcopy(primary)
    candidate["events"][150]["detail"]["tx"]["block"] = float(19_000_150)  # == says equal
    candidate["flags"]["dedup"] = 1  # True == 1 too
    found = diff_json(primary, candidate, RULES)
    assert found == [
        Difference("/flags/dedup", "type", True, 1),
        Difference("/events/150/detail/tx/block", "type", 19_000_150, 19_000_150.0),
    ]


def test_every_rule_still_applies_at_exact_pointers_in_a_large_body() -> None:
    """Rules on exact pointers (as correlation writes them) hide what they name, and only
    that: the nodes around them take the rule-free walk and still report."""
    primary = document(400)
    candidate = copy.deepcopy(primary)
    candidate["events"][7]["id"] = "generated-7"
    candidate["events"][200]["detail"]["tx"]["block"] += 1
    candidate["events"][399]["detail"]["tx"]["logs"][0]["data"] = "changed"
    candidate["flags"]["ratio"] = 1.0000001
    rules = CompareRules(
        ignore=("/events/7/id",),
        normalize=(("/events/200/detail/tx/block", "volatile"),),
        tolerance=0.0,
    )
    found = diff_json(primary, candidate, rules)
    assert found == [
        Difference("/flags/ratio", "value", 1.0, 1.0000001),
        Difference("/events/399/detail/tx/logs/0/data", "value", "399", "changed"),
    ]
    tolerant = CompareRules(ignore=rules.ignore, normalize=rules.normalize, tolerance=0.001)
    assert diff_json(primary, candidate, tolerant) == found[1:]


def test_past_the_cap_differences_are_counted_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    primary = document(500)
    candidate = orjson.loads(orjson.dumps(primary).replace(b"19000", b"29000"))
    built: list[str] = []
    real = plain.format_pointer
    monkeypatch.setattr(plain, "format_pointer", lambda path: built.append("") or real(path))
    found = diff_responses(
        Response(200, (), orjson.dumps(primary), 1.0),
        Response(200, (), orjson.dumps(candidate), 1.0),
        RULES,
        10,
    )
    assert found.total == 500 and len(found) == 10 and found.left_out == 490
    assert len(built) == 10
    assert [d.path for d in found] == [f"/events/{i}/detail/tx/block" for i in range(10)]


def test_differences_are_importable_from_diff_as_before() -> None:
    assert Differences is MovedDifferences
