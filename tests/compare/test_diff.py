"""Tests for shadow.compare.diff: one case per difference kind, the rule knobs, and properties."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.compare import diff as compare
from shadow.compare.diff import diff_json, diff_responses, match_pointer, parse_json_body
from shadow.model import CompareRules, Difference, Response

RULES = CompareRules()


def response(
    body: bytes = b"", status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status=status, headers=headers, body=body, latency_ms=1.0)


def nested(depth: int, leaf: Any) -> Any:
    """`leaf` wrapped in `depth` one-element lists, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- status, headers, body -------------------------------------------------------------------


def test_status_difference() -> None:
    diffs = diff_responses(response(status=200), response(status=500), RULES)
    assert diffs == [Difference("status", "status", 200, 500)]


def test_status_ignored_when_not_compared() -> None:
    rules = CompareRules(compare_status=False)
    assert diff_responses(response(status=200), response(status=500), rules) == []


def test_header_differences_use_lowercased_names() -> None:
    rules = CompareRules(headers=("Content-Type", "ETag", "X-Only-Primary"))
    primary = response(headers=(("content-type", "application/json"), ("x-only-primary", "1")))
    candidate = response(headers=(("Content-Type", "text/html"), ("etag", '"v2"')))
    assert diff_responses(primary, candidate, rules) == [
        Difference("header:content-type", "header", "application/json", "text/html"),
        Difference("header:etag", "header", None, '"v2"'),
        Difference("header:x-only-primary", "header", "1", None),
    ]


def test_headers_not_listed_are_not_compared_and_names_match_case_insensitively() -> None:
    rules = CompareRules(headers=("X-Request-Id",))
    primary = response(headers=(("x-request-id", "a"), ("date", "Mon")))
    candidate = response(headers=(("X-REQUEST-ID", "a"), ("date", "Tue")))
    assert diff_responses(primary, candidate, rules) == []


def test_repeated_headers_are_compared_joined() -> None:
    rules = CompareRules(headers=("Set-Cookie",))
    primary = response(headers=(("set-cookie", "a=1"), ("set-cookie", "b=2")))
    candidate = response(headers=(("set-cookie", "a=1"), ("set-cookie", "b=3")))
    assert diff_responses(primary, candidate, rules) == [
        Difference("header:set-cookie", "header", "a=1, b=2", "a=1, b=3")
    ]


def test_a_binary_body_is_one_summarized_difference() -> None:
    primary, candidate = b"<html>" + b"x" * 200, "plain \u00e9".encode()
    binary = (("Content-Type", "application/octet-stream"),)
    [diff] = diff_responses(response(primary, headers=binary), response(candidate), RULES)
    assert (diff.path, diff.kind) == ("/", "body")
    assert diff.primary == {
        "bytes": 206,
        "sha256": hashlib.sha256(primary).hexdigest()[:16],
        "excerpt": ("<html>" + "x" * 200)[:120],
    }
    assert diff.candidate["bytes"] == 8
    assert diff.candidate["excerpt"] == "plain \u00e9"


def test_json_against_non_json_is_a_body_difference() -> None:
    [diff] = diff_responses(response(b'{"a": 1}'), response(b"\xff\xfe oops"), RULES)
    assert diff.kind == "body"
    assert diff.candidate["excerpt"] == "\ufffd\ufffd oops"


def test_identical_bytes_are_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(body: bytes) -> tuple[bool, Any]:
        raise AssertionError("parsed despite identical bytes")

    monkeypatch.setattr(compare, "parse_json_body", explode)
    body = b"\x00 not json at all \xff"
    assert diff_responses(response(body), response(body), RULES) == []
    assert diff_responses(response(b""), response(b""), RULES) == []


def test_json_bodies_differing_only_in_formatting_are_equal() -> None:
    assert diff_responses(response(b'{"a":[1,2]}'), response(b'{ "a" : [1, 2] }\n'), RULES) == []


def test_json_body_differences_are_located() -> None:
    diffs = diff_responses(response(b'{"a": {"b": 1}}'), response(b'{"a": {"b": 2}}'), RULES)
    assert diffs == [Difference("/a/b", "value", 1, 2)]


def test_ignoring_the_root_silences_a_non_json_body() -> None:
    rules = CompareRules(ignore=("/**",))
    assert diff_responses(response(b"a"), response(b"b"), rules) == []


# --- kinds of JSON difference ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("primary", "candidate"),
    [(2, 2.0), ("1", 1), (True, 1), (None, 0), (False, 0.0), ([], {}), ("", None)],
)
def test_json_types_are_kept_apart(primary: Any, candidate: Any) -> None:
    diffs = diff_json({"a": primary}, {"a": candidate}, RULES)
    assert diffs == [Difference("/a", "type", primary, candidate)]


@pytest.mark.parametrize(("primary", "candidate"), [(1, 2), (1.5, 2.5), ("a", "b"), (True, False)])
def test_value_difference(primary: Any, candidate: Any) -> None:
    assert diff_json([primary], [candidate], RULES) == [
        Difference("/0", "value", primary, candidate)
    ]


def test_missing_and_extra_keys() -> None:
    diffs = diff_json({"keep": 1, "gone": [1]}, {"keep": 1, "new": {"x": 1}}, RULES)
    assert diffs == [
        Difference("/gone", "missing", [1], None),
        Difference("/new", "extra", None, {"x": 1}),
    ]


def test_list_tails_are_missing_or_extra_at_their_index() -> None:
    assert diff_json([1, 2, 3], [1], RULES) == [
        Difference("/1", "missing", 2, None),
        Difference("/2", "missing", 3, None),
    ]
    assert diff_json([1], [1, 2], RULES) == [Difference("/1", "extra", None, 2)]


def test_root_pointer_is_a_slash() -> None:
    assert diff_json(1, "1", RULES) == [Difference("/", "type", 1, "1")]


def test_pointer_segments_are_escaped() -> None:
    diffs = diff_json({"a/b": {"m~n": 1}}, {"a/b": {"m~n": 2}}, RULES)
    assert diffs == [Difference("/a~1b/m~0n", "value", 1, 2)]
    rules = CompareRules(ignore=("/a~1b/m~0n",))
    assert diff_json({"a/b": {"m~n": 1}}, {"a/b": {"m~n": 2}}, rules) == []


# --- ignore ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "pointer", "expected"),
    [
        ("/**/id", "/id", True),
        ("/**/id", "/a/id", True),
        ("/**/id", "/0/b/id", True),
        ("/**/id", "/a/idx", False),
        ("/*/id", "/a/id", True),
        ("/*/id", "/id", False),
        ("/*/id", "/a/b/id", False),
        ("/a/**", "/a", True),
        ("/a/**", "/a/b/c", True),
        ("/a", "/a/b", False),
        ("/**", "/", True),
        ("/", "/", True),
        ("/a/**/z", "/a/x/y/z", True),
        ("/a~1b", "/a~1b", True),
    ],
)
def test_match_pointer(pattern: str, pointer: str, expected: bool) -> None:
    assert match_pointer(pattern, pointer) is expected


def test_ignore_single_segment_wildcard() -> None:
    rules = CompareRules(ignore=("/items/*/ts",))
    primary = {"items": [{"ts": 1, "v": 1}, {"ts": 2, "v": 2}], "ts": 1}
    candidate = {"items": [{"ts": 9, "v": 1}, {"v": 3}], "ts": 2}
    assert diff_json(primary, candidate, rules) == [
        Difference("/items/1/v", "value", 2, 3),
        Difference("/ts", "value", 1, 2),
    ]


def test_ignore_any_depth_wildcard() -> None:
    rules = CompareRules(ignore=("/**/id",))
    primary = {"id": 1, "a": {"id": 1}, "l": [{"b": {"id": 1}}], "x": 1}
    candidate = {"id": 2, "a": {"id": 2}, "l": [{"b": {"id": "2"}}], "x": 2}
    assert diff_json(primary, candidate, rules) == [Difference("/x", "value", 1, 2)]


def test_ignore_covers_a_whole_subtree() -> None:
    rules = CompareRules(ignore=("/meta",))
    primary = {"meta": {"a": [1, 2], "b": 1}, "v": 1}
    candidate = {"meta": {"a": [3], "c": 1}, "v": 1}
    assert diff_json(primary, candidate, rules) == []
    assert diff_json({"v": 1}, {"v": 1, "meta": {}}, rules) == []


# --- unordered arrays ------------------------------------------------------------------------


def test_unordered_permutation_is_equal() -> None:
    rules = CompareRules(unordered=("/tags",))
    primary = {"tags": ["a", {"k": [1, 2]}, 3, 3.0]}
    candidate = {"tags": [3.0, {"k": [1, 2]}, 3, "a"]}
    assert diff_json(primary, candidate, rules) == []
    assert diff_json(primary, candidate, RULES) != []


def test_unordered_reports_one_changed_element() -> None:
    rules = CompareRules(unordered=("/tags",))
    diffs = diff_json({"tags": ["a", "b", "c"]}, {"tags": ["c", "x", "a"]}, rules)
    assert diffs == [
        Difference("/tags/1", "missing", "b", None),
        Difference("/tags/1", "extra", None, "x"),
    ]


def test_unordered_counts_duplicates_and_keeps_types_apart() -> None:
    rules = CompareRules(unordered=("/**",))
    assert diff_json([1, 1, 2], [2, 1, 1, 1], rules) == [Difference("/3", "extra", None, 1)]
    assert diff_json([1, True], [True, 1.0], rules) == [
        Difference("/0", "missing", 1, None),
        Difference("/1", "extra", None, 1.0),
    ]


def test_unordered_elements_honour_ignore_and_normalize() -> None:
    rules = CompareRules(
        unordered=("/items",), ignore=("/items/*/id",), normalize=(("/**/name", "case"),)
    )
    primary = {"items": [{"id": 1, "name": "A"}, {"id": 2, "name": "b"}]}
    candidate = {"items": [{"id": 7, "name": "B"}, {"id": 8, "name": "a"}]}
    assert diff_json(primary, candidate, rules) == []


def test_unordered_fingerprints_normalize_numbers_and_nested_arrays() -> None:
    rules = CompareRules(unordered=("/**",), normalize=(("/**", "number"),))
    assert diff_json([1, "2", [0.5, "1e2"]], [["100", 0.50], 2.0, "1.0"], rules) == []
    assert diff_json([[1, 2]], [[2, 3]], rules) == [
        Difference("/0", "missing", [1, 2], None),
        Difference("/0", "extra", None, [2, 3]),
    ]


def test_unordered_big_ints_and_deep_elements_fall_back_to_fingerprints() -> None:
    rules = CompareRules(unordered=("/",))
    assert diff_json([2**100, nested(400, 1)], [nested(400, 1), 2**100], rules) == []
    assert diff_json([2**100], [2**100 + 1], rules) == [
        Difference("/0", "missing", 2**100, None),
        Difference("/0", "extra", None, 2**100 + 1),
    ]


# --- normalize and tolerance -----------------------------------------------------------------


def dt_rules(kind: str) -> CompareRules:
    return CompareRules(normalize=(("/**/at", kind),))


def test_datetime_full_precision_by_default() -> None:
    primary, candidate = {"at": "2024-11-21T10:02:39.584Z"}, {"at": "2024-11-21T10:02:39.584855Z"}
    assert diff_json(primary, candidate, dt_rules("datetime")) == [
        Difference("/at", "value", primary["at"], candidate["at"])
    ]
    assert diff_json(primary, candidate, dt_rules("datetime:ms")) == []
    assert diff_json(primary, candidate, dt_rules("datetime:us")) != []


def test_datetime_offsets_compare_as_instants() -> None:
    rules = dt_rules("datetime")
    assert (
        diff_json({"at": "2024-11-21T10:02:39+00:00"}, {"at": "2024-11-21T10:02:39Z"}, rules) == []
    )
    assert (
        diff_json({"at": "2024-11-21T12:02:39+02:00"}, {"at": "2024-11-21T10:02:39Z"}, rules) == []
    )
    assert diff_json({"at": "2024-11-21T10:02:39.9Z"}, {"at": "2024-11-21T10:02:39Z"}, rules) != []
    seconds = dt_rules("datetime:s")
    assert (
        diff_json({"at": "2024-11-21T10:02:39.9Z"}, {"at": "2024-11-21T10:02:39Z"}, seconds) == []
    )


def test_unparseable_datetimes_compare_raw() -> None:
    rules = dt_rules("datetime")
    assert diff_json({"at": "soon"}, {"at": "soon"}, rules) == []
    assert diff_json({"at": "soon"}, {"at": "2024-11-21T10:02:39Z"}, rules) == [
        Difference("/at", "value", "soon", "2024-11-21T10:02:39Z")
    ]
    assert diff_json({"at": 1}, {"at": "2024-11-21T10:02:39Z"}, rules)[0].kind == "type"


def test_number_normalization() -> None:
    rules = CompareRules(normalize=(("/n", "number"),))
    assert diff_json({"n": "12345678"}, {"n": 12345678}, rules) == []
    assert diff_json({"n": "12345678"}, {"n": 12345678}, RULES) == [
        Difference("/n", "type", "12345678", 12345678)
    ]
    assert diff_json({"n": 1}, {"n": 1.0}, rules) == []
    assert diff_json({"n": 0.1}, {"n": "0.1"}, rules) == []
    assert diff_json({"n": "1"}, {"n": 2}, rules) == [Difference("/n", "value", "1", 2)]
    assert diff_json({"n": "one"}, {"n": 1}, rules) == [Difference("/n", "type", "one", 1)]
    assert diff_json({"n": True}, {"n": 1}, rules)[0].kind == "type"


def test_case_normalization_applies_beneath_a_container() -> None:
    rules = CompareRules(normalize=(("/names", "case"),))
    assert diff_json({"names": ["Straße", "ABC"]}, {"names": ["STRASSE", "abc"]}, rules) == []
    assert diff_json({"names": ["a"]}, {"names": ["b"]}, rules) == [
        Difference("/names/0", "value", "a", "b")
    ]


def test_unknown_normalization_is_refused() -> None:
    with pytest.raises(ValueError, match="datetime:ns"):
        diff_json(1, 2, CompareRules(normalize=(("/", "datetime:ns"),)))


def test_tolerance() -> None:
    loose, tight = CompareRules(tolerance=0.1), CompareRules(tolerance=0.01)
    assert diff_json({"x": 1.0}, {"x": 1.05}, loose) == []
    assert diff_json({"x": 1.0}, {"x": 1.05}, tight) == [Difference("/x", "value", 1.0, 1.05)]
    assert diff_json({"x": 10}, {"x": 11}, CompareRules(tolerance=1)) == []
    assert diff_json({"x": 10}, {"x": 10.0}, loose)[0].kind == "type"
    number = CompareRules(tolerance=0.1, normalize=(("/x", "number"),))
    assert diff_json({"x": "10.0"}, {"x": 10.05}, number) == []
    assert diff_json({"x": 1.0}, {"x": 1.05}, CompareRules()) != []


# --- awkward bodies --------------------------------------------------------------------------


def test_integers_beyond_64_bits_keep_every_digit() -> None:
    assert parse_json_body(str(2**100).encode()) == (True, 2**100)
    assert parse_json_body(str(-(2**63) - 1).encode()) == (True, -(2**63) - 1)
    primary = response(f'{{"n": {2**100}}}'.encode())
    candidate = response(f'{{"n": {2**100 + 1}}}'.encode())
    assert diff_responses(primary, candidate, RULES) == [
        Difference("/n", "value", 2**100, 2**100 + 1)
    ]


@pytest.mark.parametrize("text", [b"NaN", b"[Infinity]", b'{"a": -Infinity}'])
def test_nan_and_infinity_are_not_json(text: bytes) -> None:
    assert parse_json_body(text) == (False, None)
    [diff] = diff_responses(response(text), response(b"[1]"), RULES)
    assert (diff.path, diff.kind) == ("line:1", "value")  # compared as text, line by line


def test_deeply_nested_bodies_never_raise() -> None:
    primary = b"[" * 10_000 + b"1" + b"]" * 10_000
    candidate = b"[" * 10_000 + b"2" + b"]" * 10_000
    assert diff_responses(response(primary), response(primary), RULES) == []
    [diff] = diff_responses(response(primary), response(candidate), RULES)
    assert (diff.path, diff.kind) == ("line:1", "value")  # not JSON to the parser: text
    assert len(diff.primary) == 20_001


def test_deep_values_are_walked_without_recursion() -> None:
    diffs = diff_json(nested(10_000, 1), nested(10_000, 2), RULES)
    assert diffs == [Difference("/0" * 10_000, "value", 1, 2)]
    rules = CompareRules(unordered=("/**",), ignore=("/**/skip",))
    assert diff_json(nested(3_000, {"skip": 1}), nested(3_000, {"skip": 2}), rules) == []


# --- properties ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=12,
)
# Small alphabets make equal and nearly equal pairs common enough to matter.
close_values = st.recursive(
    st.sampled_from([None, True, False, 0, 1, 0.0, 1.0, "", "a"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "~/"]), children, max_size=3)
    ),
    max_leaves=8,
)
PROPERTY = settings(max_examples=200, deadline=None)


def json_equal(a: Any, b: Any) -> bool:
    """Equality with JSON types kept apart: 1, 1.0 and True are three different values."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def resolves(value: Any, pointer: str) -> bool:
    """Whether RFC 6901 `pointer` ("/" meaning the root) names a node inside `value`."""
    if pointer == "/":
        return True
    for raw in pointer[1:].split("/"):
        segment = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return False
    return True


def sort_key(diff: Difference) -> tuple[str, str, str, str]:
    return (diff.path, diff.kind, repr(diff.primary), repr(diff.candidate))


def swapped(diff: Difference) -> Difference:
    kind = {"missing": "extra", "extra": "missing"}.get(diff.kind, diff.kind)
    return Difference(diff.path, kind, diff.candidate, diff.primary)


def reverse_lists(value: Any) -> Any:
    if isinstance(value, list):
        return [reverse_lists(v) for v in reversed(value)]
    if isinstance(value, dict):
        return {k: reverse_lists(v) for k, v in value.items()}
    return value


@PROPERTY
@given(json_values)
def test_a_value_equals_itself_and_its_copy(value: Any) -> None:
    assert diff_json(value, value, RULES) == []
    assert diff_json(value, copy.deepcopy(value), RULES) == []


@PROPERTY
@given(json_values | close_values, json_values | close_values)
def test_no_differences_exactly_when_json_equal(a: Any, b: Any) -> None:
    assert (diff_json(a, b, RULES) == []) == json_equal(a, b)


@PROPERTY
@given(json_values | close_values, json_values | close_values)
def test_swapping_sides_swaps_missing_and_extra(a: Any, b: Any) -> None:
    forward = sorted((swapped(d) for d in diff_json(a, b, RULES)), key=sort_key)
    backward = sorted(diff_json(b, a, RULES), key=sort_key)
    assert [sort_key(d) for d in forward] == [sort_key(d) for d in backward]


@PROPERTY
@given(json_values | close_values, json_values | close_values)
def test_every_pointer_resolves_on_some_side(a: Any, b: Any) -> None:
    for diff in diff_json(a, b, RULES):
        assert resolves(a, diff.path) or resolves(b, diff.path), diff
        if diff.kind == "missing":
            assert resolves(a, diff.path)
        if diff.kind == "extra":
            assert resolves(b, diff.path)


@PROPERTY
@given(json_values)
def test_orjson_round_trip_changes_nothing(value: Any) -> None:
    assert diff_json(value, orjson.loads(orjson.dumps(value)), RULES) == []
    pretty = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    assert diff_responses(response(orjson.dumps(value)), response(pretty), RULES) == []


@PROPERTY
@given(json_values)
def test_reordered_arrays_are_equal_when_unordered(value: Any) -> None:
    assert diff_json(value, reverse_lists(value), CompareRules(unordered=("/**",))) == []


@PROPERTY
@given(st.lists(st.text(max_size=4).filter(lambda s: s not in ("*", "**")), max_size=5))
def test_an_escaped_pointer_matches_itself(segments: list[str]) -> None:
    pointer = "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)
    assert match_pointer(pointer or "/", pointer or "/")
    assert match_pointer("/**", pointer or "/")


@pytest.mark.parametrize("cap", [1, 3, 100])
def test_differences_past_the_cap_are_counted_not_kept(cap: int) -> None:
    primary = Response(500, (), orjson.dumps(list(range(50))), 1.0)
    candidate = Response(200, (), orjson.dumps(list(range(1, 51))), 1.0)
    found = diff_responses(primary, candidate, CompareRules(), cap)
    assert found.total == 51  # the status and the 50 elements
    assert len(found) == min(cap, 51) and found.left_out == 51 - len(found)
    everything = diff_responses(primary, candidate, CompareRules(), 1000)
    assert list(found) == list(everything)[: len(found)]  # the first ones, in order
