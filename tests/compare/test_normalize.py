"""Normalizers one by one, keyed unordered arrays, header selection and numeric tolerance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shadow.compare.diff import VOLATILE_HEADERS, diff_json, diff_responses
from shadow.compare.normalize import equal_under, parse_instant, parse_norm
from shadow.model import NORMALIZERS, CompareRules, Difference, Response


def norm(pattern: str, spec: str) -> CompareRules:
    return CompareRules(normalize=((pattern, spec),))


def response(body: bytes = b"{}", headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status=200, headers=headers, body=body, latency_ms=1.0)


# --- datetime --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-11-21T10:02:39Z",
        "2024-11-21T10:02:39+00:00",
        "2024-11-21T12:02:39+02:00",
        "2024-11-21T10:02:39.000Z",
        "20241121T100239Z",
        "2024-11-21 10:02:39",  # no offset: UTC
        "Thu, 21 Nov 2024 10:02:39 GMT",
        "Thu, 21 Nov 2024 11:02:39 +0100",
    ],
)
def test_datetime_accepts_iso_8601_and_rfc_1123(text: str) -> None:
    assert parse_instant(text) == datetime(2024, 11, 21, 10, 2, 39, tzinfo=UTC)
    assert diff_json({"at": text}, {"at": "2024-11-21T10:02:39Z"}, norm("/at", "datetime")) == []


def test_datetime_precision_is_the_issue_example() -> None:
    ms, us = "2025-06-01T10:02:39.584Z", "2025-06-01T10:02:39.584855Z"
    assert diff_json([ms], [us], norm("/*", "datetime:ms")) == []
    assert diff_json([ms], [us], norm("/*", "datetime:us")) == [Difference("/0", "value", ms, us)]
    assert diff_json([ms], [us], norm("/*", "datetime")) != []
    assert diff_json([ms], ["2025-06-01T10:02:40Z"], norm("/*", "datetime:s")) != []
    assert diff_json(["2025-06-01T10:02:39.9Z"], [ms], norm("/*", "datetime:s")) == []
    # Digits past the microsecond (Go, .NET) are dropped rather than refused.
    assert parse_instant("2025-06-01T10:02:39.5848551Z") == parse_instant(us)


@pytest.mark.parametrize("text", ["soon", "2024-13-45", "Thu, 99 Nov", 20241121, None, "12345678"])
def test_datetime_leaves_what_it_cannot_parse_to_the_raw_comparison(text: Any) -> None:
    assert parse_instant(text) is None
    assert diff_json({"at": text}, {"at": text}, norm("/at", "datetime")) == []


# --- number, case, trim ----------------------------------------------------------------------


def test_number() -> None:
    rules = norm("/n", "number")
    for a, b in [(1, 1.0), ("12345678", 12345678), ("0.10", 0.1), ("1e2", 100)]:
        assert diff_json({"n": a}, {"n": b}, rules) == [], (a, b)
    assert diff_json({"n": "1"}, {"n": 2}, rules) == [Difference("/n", "value", "1", 2)]
    assert diff_json({"n": True}, {"n": 1}, rules)[0].kind == "type"


def test_case() -> None:
    rules = norm("/s", "case")
    assert diff_json({"s": "Straße"}, {"s": "STRASSE"}, rules) == []
    assert diff_json({"s": "a"}, {"s": "b"}, rules) == [Difference("/s", "value", "a", "b")]
    assert diff_json({"s": "1"}, {"s": 1}, rules)[0].kind == "type"


def test_trim() -> None:
    rules = norm("/**/name", "trim")
    assert diff_json({"u": {"name": " Ada\n"}}, {"u": {"name": "Ada"}}, rules) == []
    assert diff_json({"u": {"name": "A da"}}, {"u": {"name": "Ada"}}, rules) != []
    assert diff_json({"u": {"name": " Ada"}}, {"u": {"name": "Ada"}}, CompareRules()) != []


def test_sorted_compares_arrays_of_scalars_as_sorted_sequences() -> None:
    rules = norm("/tags", "sorted")
    assert diff_json({"tags": ["b", "a", "c"]}, {"tags": ["c", "b", "a"]}, rules) == []
    # A changed element is one difference on the array, with both arrays as they came.
    assert diff_json({"tags": ["b", "a"]}, {"tags": ["a", "x"]}, rules) == [
        Difference("/tags", "value", ["b", "a"], ["a", "x"])
    ]
    # Duplicates and JSON types count; normalizers apply to the elements.
    assert diff_json({"tags": [1, 1, 2]}, {"tags": [1, 2, 2]}, rules) != []
    assert diff_json({"tags": [1, 2]}, {"tags": [2, 1.0]}, rules) != []
    both = CompareRules(normalize=(("/tags", "sorted"), ("/tags", "case")))
    assert diff_json({"tags": ["B", "a"]}, {"tags": ["A", "b"]}, both) == []


def test_sorted_does_not_apply_to_arrays_of_objects() -> None:
    rules = norm("/tags", "sorted")
    primary, candidate = {"tags": [{"a": 1}, {"b": 2}]}, {"tags": [{"b": 2}, {"a": 1}]}
    assert [d.kind for d in diff_json(primary, candidate, rules)] == ["missing", "extra"] * 2


def test_null_is_missing() -> None:
    rules = norm("/**/middle_name", "null_is_missing")
    assert diff_json({"u": {"middle_name": None}}, {"u": {}}, rules) == []
    assert diff_json({"u": {}}, {"u": {"middle_name": None}}, rules) == []
    assert diff_json({"u": {"middle_name": "Q"}}, {"u": {}}, rules) == [
        Difference("/u/middle_name", "missing", "Q", None)
    ]
    assert diff_json({"u": {"other": None}}, {"u": {}}, rules) != []
    # Inside an unordered array the same holds for its fingerprints.
    bag = CompareRules(unordered=("/l",), normalize=(("/l/*/x", "null_is_missing"),))
    assert diff_json({"l": [{"x": None, "v": 1}]}, {"l": [{"v": 1}]}, bag) == []


@pytest.mark.parametrize("spec", ["datetime:ns", "sorted:ms", "fuzzy", ""])
def test_unknown_normalizers_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        parse_norm("/x", spec)
    with pytest.raises(ValueError, match="/x"):
        diff_json(1, 2, norm("/x", spec))


def test_every_documented_normalizer_parses() -> None:
    for spec in NORMALIZERS:
        parse_norm("/x", spec)
    assert equal_under("datetime", "2024-11-21T10:02:39Z", "2024-11-21T10:02:39+00:00")
    assert not equal_under("number", "x", "x")  # both must parse


# --- keyed unordered arrays ------------------------------------------------------------------


KEYED = CompareRules(unordered_keys=(("/items", "id"),))


def test_keyed_arrays_report_one_changed_element_as_one_value_difference() -> None:
    primary = {"items": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]}
    candidate = {"items": [{"id": 3, "v": "c"}, {"id": 1, "v": "a"}, {"id": 2, "v": "B"}]}
    assert diff_json(primary, candidate, KEYED) == [Difference("/items/1/v", "value", "b", "B")]
    plain = CompareRules(unordered=("/items",))
    assert len(diff_json(primary, candidate, plain)) == 2  # a missing and an extra element


def test_keyed_arrays_unmatched_elements_are_missing_or_extra() -> None:
    primary = {"items": [{"id": 1}, {"id": 2}, "loose"]}
    candidate = {"items": [{"id": 9}, "loose", {"id": 1}]}
    assert diff_json(primary, candidate, KEYED) == [
        Difference("/items/1", "missing", {"id": 2}, None),
        Difference("/items/0", "extra", None, {"id": 9}),
    ]


def test_keyed_arrays_pair_duplicate_keys_in_order_and_keep_key_types_apart() -> None:
    primary = {"items": [{"id": 1, "n": 1}, {"id": 1, "n": 2}]}
    candidate = {"items": [{"id": 1, "n": 1}, {"id": 1, "n": 3}]}
    assert diff_json(primary, candidate, KEYED) == [Difference("/items/1/n", "value", 2, 3)]
    assert [d.kind for d in diff_json({"items": [{"id": 1}]}, {"items": [{"id": "1"}]}, KEYED)] == [
        "missing",
        "extra",
    ]


def test_keyed_arrays_nest_and_honour_other_rules() -> None:
    rules = CompareRules(
        unordered_keys=(("/orders", "ref"), ("/orders/*/lines", "sku")),
        ignore=("/orders/*/lines/*/at",),
    )
    primary = {"orders": [{"ref": "A", "lines": [{"sku": "x", "q": 1, "at": 1}, {"sku": "y"}]}]}
    candidate = {"orders": [{"ref": "A", "lines": [{"sku": "y"}, {"sku": "x", "q": 2, "at": 9}]}]}
    assert diff_json(primary, candidate, rules) == [
        Difference("/orders/0/lines/0/q", "value", 1, 2)
    ]
    # Inside a plain unordered array, a keyed one is compared as a multiset.
    outer = CompareRules(unordered=("/",), unordered_keys=(("/*/l", "k"),))
    assert diff_json([{"l": [{"k": 1}, {"k": 2}]}], [{"l": [{"k": 2}, {"k": 1}]}], outer) == []


# --- headers ---------------------------------------------------------------------------------


def test_star_compares_every_header_but_the_volatile_ones() -> None:
    rules = CompareRules(headers=("*",))
    primary = response(
        headers=(
            ("Date", "Mon"),
            ("Server", "gunicorn"),
            ("X-Request-Id", "a"),
            ("Content-Length", "10"),
            ("Content-Type", "application/json"),
            ("Set-Cookie", "session=abc; Path=/"),
            ("ETag", '"1"'),
        )
    )
    candidate = response(
        headers=(
            ("date", "Tue"),
            ("server", "axum"),
            ("x-request-id", "b"),
            ("content-length", "11"),
            ("content-type", "application/json"),
            ("set-cookie", "session=xyz; Path=/"),
            ("x-powered-by", "rust"),
        )
    )
    assert diff_responses(primary, candidate, rules) == [
        Difference("header:etag", "header", '"1"', None),
        Difference("header:x-powered-by", "header", None, "rust"),
    ]
    assert set(VOLATILE_HEADERS) >= {"date", "server", "x-request-id", "set-cookie"}


def test_star_compares_cookie_names_and_listed_headers_in_full() -> None:
    primary = response(headers=(("Set-Cookie", "session=abc"), ("Date", "Mon")))
    candidate = response(headers=(("Set-Cookie", "csrftoken=abc"), ("Date", "Tue")))
    assert diff_responses(primary, candidate, CompareRules(headers=("*",))) == [
        Difference("header:set-cookie", "header", "session", "csrftoken")
    ]
    listed = CompareRules(headers=("*", "Date"))
    assert [d.path for d in diff_responses(primary, candidate, listed)] == [
        "header:date",
        "header:set-cookie",
    ]
    ignored = CompareRules(headers=("*",), ignore_headers=("Set-Cookie",))
    assert diff_responses(primary, candidate, ignored) == []


def test_content_length_counts_only_when_the_body_is_not_compared() -> None:
    primary = response(b'{"a": 1}', headers=(("Content-Length", "8"),))
    candidate = response(b'{"a":1}', headers=(("Content-Length", "7"),))
    assert diff_responses(primary, candidate, CompareRules(headers=("*",))) == []
    no_body = CompareRules(headers=("*",), ignore=("/**",))
    assert diff_responses(primary, candidate, no_body) == [
        Difference("header:content-length", "header", "8", "7")
    ]


# --- tolerance -------------------------------------------------------------------------------


def test_absolute_and_relative_tolerance() -> None:
    absolute = CompareRules(tolerance=0.5)
    relative = CompareRules(relative_tolerance=0.01)
    assert diff_json([1000.0], [1000.4], absolute) == []
    assert diff_json([1000.0], [1000.6], absolute) != []
    assert diff_json([1000.0], [1009.0], relative) == []  # within 1% of 1009
    assert diff_json([1000.0], [1011.0], relative) != []
    assert diff_json([0.001], [0.0011], relative) != []  # relative to the values, not to 1
    both = CompareRules(tolerance=0.5, relative_tolerance=0.01)
    assert diff_json([0.0, 1000.0], [0.4, 1009.0], both) == []
    assert diff_json([10], [10.0], both)[0].kind == "type"  # tolerance never blurs types
    numbers = CompareRules(relative_tolerance=0.01, normalize=(("/*", "number"),))
    assert diff_json(["1000"], [1005], numbers) == []
