"""An exchange event cut to `max_event_bytes`: the steps in order, each only when needed."""

from __future__ import annotations

from typing import Any

import orjson

from shadow.events.fit import fit_event, json_size


def event(diffs: list[dict[str, Any]], path: str = "/a") -> dict[str, Any]:
    return {
        "seq": 0,
        "endpoint": "GET /a",
        "request": {"method": "GET", "path": path, "headers": [["X", "y"]]},
        "diffs": diffs,
        "curl": "curl ...",
    }


def diff(n: int, size: int = 1) -> dict[str, Any]:
    return {"path": f"/{n}", "kind": "value", "primary": "p" * size, "candidate": "c" * size}


def test_an_event_within_the_limit_is_the_same_object() -> None:
    fields = event([diff(0)])
    assert fit_event(fields, 10_000) is fields


def test_large_values_go_first_and_the_small_ones_stay() -> None:
    fields = event([diff(0, 50_000), diff(1)])
    cut = fit_event(fields, 8192)
    assert cut["truncated"] == ["values"]
    assert cut["diffs"][0]["primary"] == {"omitted_bytes": 50_002}
    assert cut["diffs"][1] == diff(1)
    assert fields["diffs"][0]["primary"] == "p" * 50_000  # the original is left alone
    assert json_size(cut) <= 8192


def test_then_the_differences_that_do_not_fit() -> None:
    fields = event([diff(n, 100) for n in range(1000)])
    cut = fit_event(fields, 8192)
    assert cut["truncated"] == ["diffs"] and cut["diffs_total"] == 1000
    kept = cut["diffs"]
    assert 0 < len(kept) < 1000 and kept == [diff(n, 100) for n in range(len(kept))]
    assert json_size(cut) <= 8192


def test_a_count_given_before_is_kept() -> None:
    fields = {**event([diff(n, 100) for n in range(1000)]), "diffs_total": 5000}
    assert fit_event(fields, 8192)["diffs_total"] == 5000


def test_last_the_request() -> None:
    fields = event([], path="/" + "x" * 20_000)
    cut = fit_event(fields, 4096)
    assert cut["truncated"] == ["request"] and cut["curl"] is None
    assert cut["request"]["path"] == "/" + "x" * 199
    assert cut["request"]["omitted_bytes"] == json_size(fields["request"])
    assert json_size(cut) <= 4096


def test_a_value_orjson_refuses_is_measured_by_its_text() -> None:
    assert json_size({"n": 2**100}) > 0
    assert json_size({"n": 1}) == len(orjson.dumps({"n": 1}))
