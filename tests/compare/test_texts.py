"""Tests for large JSON bodies compared as texts first (`shadow.compare.diff._diff_texts`).

The text walk must find exactly what parsing both bodies finds: the same differences, in the
same order, the same count past the cap, under any rules, for any pair of bodies, including
bodies that are not JSON or that only the exact parser reads. The properties run it with its
size limits lowered, so that small generated values take every branch.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadow.compare import diff as compare
from shadow.compare.diff import Differences, diff_responses
from shadow.compare.jsontext import is_utf8, shallow
from shadow.model import CompareRules, Difference, Response
from tests.compare.test_diff import PROPERTY, close_values, json_values

RULES = CompareRules()
RULE_SETS = (
    RULES,
    CompareRules(ignore=("/a", "/*/b")),
    CompareRules(ignore=("/**/no member is called this",)),  # the general walk everywhere
    CompareRules(unordered=("/a", "/*")),
    CompareRules(unordered_keys=(("/*", "a"),)),
    CompareRules(normalize=(("/**", "sorted"),)),
    CompareRules(normalize=(("/**", "null_is_missing"),)),
    CompareRules(normalize=(("/a", "volatile"), ("/b/*", "number"))),
    CompareRules(tolerance=0.5),
)


def response(body: bytes) -> Response:
    return Response(200, (("Content-Type", "application/json"),), body, 1.0)


@contextmanager
def text_walk(
    enabled: bool = True, *, small: bool = False, few: int = 8, room: int = 3
) -> Iterator[None]:
    """The text walk on or off; `small` takes it down to bodies and members of any size."""
    saved = (compare._diff_texts, compare._TEXT_WALK_MIN, compare._APART, compare._OPEN_MIN,
             compare._FEW, compare._ROOM)  # fmt: skip
    if not enabled:
        compare._diff_texts = lambda *_: False  # type: ignore[assignment]
    if small:
        compare._TEXT_WALK_MIN = compare._APART = compare._OPEN_MIN = 0
    compare._FEW, compare._ROOM = few, room
    try:
        yield
    finally:
        (compare._diff_texts, compare._TEXT_WALK_MIN, compare._APART, compare._OPEN_MIN,
         compare._FEW, compare._ROOM) = saved  # fmt: skip


class _Token(str):
    """Punctuation in `spelled`, told apart from a string value by its type."""


def spelled(value: Any) -> str:
    """`repr` without recursion (values may be nested a thousand deep): JSON types kept
    apart (1, 1.0 and True), which == on the values would not."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Token:
            out.append(item)
        elif type(item) in (dict, list):
            pairs = item.items() if type(item) is dict else enumerate(item)
            stack.append(_Token(")"))
            for key, member in reversed(list(pairs)):
                stack += [_Token(","), member, _Token(f"{key!r}:")]
            out.append(f"{type(item).__name__}(")
        else:
            out.append(repr(item))
    return "".join(out)


def outcome(diffs: Differences) -> tuple[str, int]:
    return repr([(d.path, d.kind, spelled(d.primary), spelled(d.candidate)) for d in diffs]), (
        diffs.total
    )


def both_ways(
    primary: bytes, candidate: bytes, rules: CompareRules = RULES, cap: int = 100, **walk: Any
) -> tuple[str, int]:
    """The text walk's outcome, checked against parsing both bodies."""
    with text_walk(**walk):
        found = diff_responses(response(primary), response(candidate), rules, cap)
    with text_walk(enabled=False):
        parsed = diff_responses(response(primary), response(candidate), rules, cap)
    assert outcome(found) == outcome(parsed)
    return outcome(found)


def parsed_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the texts parse_json_body is given from now on."""
    sizes: list[int] = []
    parse = compare.parse_json_body

    def counting(body: bytes) -> tuple[bool, Any]:
        sizes.append(len(body))
        return parse(body)

    monkeypatch.setattr(compare, "parse_json_body", counting)
    return sizes


def large(changes: dict[str, Any] | None = None, stamps: int = 2000) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "score": "23.456789",
        "evidence": {"type": "ThresholdScoreCheck", "rawScore": 23.456789},
        "stamps": {f"Provider{i}": {"score": i / 8, "dedup": i % 7 == 0} for i in range(stamps)},
        "events": [{"id": i, "at": f"2026-11-27T10:{i % 60:02}:00Z"} for i in range(stamps)],
    }
    doc.update(changes or {})
    return doc


# --- the cost it is for ----------------------------------------------------------------------


def test_a_changed_leaf_in_a_large_body_parses_only_that_leaf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary = orjson.dumps(large())
    doc = large()
    doc["stamps"]["Provider1500"]["score"] = 0.5
    candidate = orjson.dumps(doc)
    sizes = parsed_bytes(monkeypatch)
    diffs = diff_responses(response(primary), response(candidate), RULES)
    assert list(diffs) == [Difference("/stamps/Provider1500/score", "value", 187.5, 0.5)]
    assert len(primary) > 100_000
    assert sum(sizes) < 200  # the two leaves' texts, not the bodies


def test_a_body_formatted_apart_is_parsed_whole_and_equal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary = orjson.dumps(large())
    candidate = json.dumps(large(), indent=2).encode()
    sizes = parsed_bytes(monkeypatch)
    assert diff_responses(response(primary), response(candidate), RULES) == []
    assert max(sizes) > 10_000  # most members differ as texts: the level was parsed whole


def test_members_in_another_order_are_equal() -> None:
    doc = large()
    primary = orjson.dumps(doc)
    candidate = orjson.dumps(dict(reversed(doc.items())))
    assert both_ways(primary, candidate) == ("[]", 0)


def test_missing_extra_and_changed_members_are_reported_in_the_walks_order() -> None:
    primary = orjson.dumps(large({"gone": [1, 2], "status": "DONE"}))
    doc = large({"status": "FAILED", "new": None})
    doc["events"].append({"id": -1})
    doc["events"][3]["at"] = None
    candidate = orjson.dumps(doc)
    both_ways(primary, candidate)
    with text_walk():
        diffs = diff_responses(response(primary), response(candidate), RULES)
    assert list(diffs) == [
        Difference("/gone", "missing", [1, 2], None),
        Difference("/new", "extra", None, None),
        Difference("/events/2000", "extra", None, {"id": -1}),
        Difference("/events/3/at", "type", "2026-11-27T10:03:00Z", None),
        Difference("/status", "value", "DONE", "FAILED"),
    ]


def test_rules_apply_beneath_a_text_walk() -> None:
    doc = large()
    doc["events"][7]["at"] = "2026-11-27T10:07:00.000Z"
    doc["stamps"]["Provider3"] = {"dedup": False, "score": "0.375"}
    primary, candidate = orjson.dumps(large()), orjson.dumps(doc)
    rules = CompareRules(normalize=(("/events/*/at", "datetime"), ("/stamps/*/score", "number")))
    assert both_ways(primary, candidate, rules) == ("[]", 0)
    ignored = CompareRules(ignore=("/events", "/stamps/Provider3"))
    assert both_ways(primary, candidate, ignored) == ("[]", 0)


def test_rules_on_whole_arrays_and_absent_members_hold_beneath_a_text_walk() -> None:
    doc = large({"note": None})
    events = doc["events"]
    events[0], events[1], events[7], events[9] = events[9], events[7], events[1], events[0]
    events.append({"id": 2000})
    primary, candidate = orjson.dumps(large()), orjson.dumps(doc)
    absent = CompareRules(normalize=(("/note", "null_is_missing"),), unordered=("/events",))
    assert both_ways(primary, candidate, absent) == (
        repr([("/events/2000", "extra", "None", "dict('id':2000,)")]),
        1,
    )
    assert both_ways(candidate, primary, absent)[1] == 1
    tail = CompareRules(ignore=("/note", "/events/2000"))
    longer = large({"note": None, "events": [*large()["events"], {"id": 2000}]})
    assert both_ways(primary, orjson.dumps(longer), tail) == ("[]", 0)
    assert both_ways(orjson.dumps(longer), primary, tail) == ("[]", 0)


def test_the_cap_counts_past_it_as_the_parsing_walk_does() -> None:
    doc = large()
    for i in range(0, 2000, 100):
        doc["events"][i]["id"] = -i - 1
    assert both_ways(orjson.dumps(large()), orjson.dumps(doc), cap=3)[1] == 20


# --- texts only the exact parser reads, and texts that are not JSON ---------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'"\\ud800"',  # a lone surrogate escape: msgspec refuses it, json reads it
        b"1e400",  # past a float's range: kept as its text
        str(2**100).encode(),  # past 64 bits: every digit kept
        b"[" * 1000 + b"]" * 1000,  # deeper than msgspec goes
    ],
)
def test_members_only_the_exact_parser_reads_are_compared_as_parsed(text: bytes) -> None:
    primary = orjson.dumps(large()).replace(b'"score":"23.456789"', b'"score":' + text)
    assert primary.count(text) == 1
    assert both_ways(primary, orjson.dumps(large()))[1] == 1
    assert both_ways(primary, primary.replace(b'"stamps"', b'"stamps2"'))[1] == 2


@pytest.mark.parametrize(
    "broken",
    [
        b'"\xff\xfe"',  # not UTF-8, in a member both sides share
        b"[1, 2,]",
        b"NaN",
        b'"tab\there"',
    ],
)
def test_a_body_that_is_not_json_is_compared_as_the_parsing_path_does(broken: bytes) -> None:
    base = orjson.dumps(large())
    primary = base.replace(b'"Threshold', broken + b',"x":"Threshold', 1)
    candidate = primary.replace(b'"score":"23.456789"', b'"score":"0"')
    assert primary != base
    both_ways(primary, candidate)
    both_ways(base, candidate)


def test_shallow_reads_one_level_and_refuses_what_is_not_a_container() -> None:
    opened = shallow(b' {"a" : [1, 2] , "b":{"c": 3}, "a": 4} ')
    assert isinstance(opened, dict)
    assert {k: bytes(v) for k, v in opened.items()} == {"a": b"4", "b": b'{"c": 3}'}
    assert [bytes(v) for v in shallow(b'[1, {"x": 2} ,"s"]') or ()] == [b"1", b'{"x": 2}', b'"s"']
    for text in (b'"s"', b"1", b"", b"[1,]", b'{"a": nul}', b"[1] 2"):
        assert shallow(text) is None
    assert is_utf8("é".encode()) and not is_utf8(b"\xc3")


# --- properties ------------------------------------------------------------------------------

formats = st.sampled_from(
    [
        orjson.dumps,
        lambda v: json.dumps(v, indent=1).encode(),
        lambda v: json.dumps(v, sort_keys=True).encode(),
        lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode(),
    ]
)


@st.composite
def edited(draw: st.DrawFn) -> tuple[Any, Any]:
    """A value and a copy with a few edits (a member dropped, added or replaced, an element
    appended, dropped or replaced), or another value altogether."""
    p = draw(st.one_of(json_values, close_values))
    c = draw(st.one_of(st.just(copy.deepcopy(p)), close_values))
    for _ in range(
        draw(st.integers(min_value=0, max_value=3)) if isinstance(c, dict | list) else 0
    ):
        nodes = [c]
        for node in nodes:
            nodes.extend(v for v in (node.values() if isinstance(node, dict) else node)
                         if isinstance(v, dict | list))  # fmt: skip
        node = nodes[draw(st.integers(min_value=0, max_value=len(nodes) - 1))]
        value = draw(st.one_of(st.none(), close_values))
        if isinstance(node, dict):
            key = draw(st.sampled_from(["a", "b", "~/", "c"]))
            if key in node and draw(st.booleans()):
                del node[key]
            else:
                node[key] = value
        elif node and draw(st.booleans()):
            node[draw(st.integers(min_value=0, max_value=len(node) - 1))] = value
        elif node and draw(st.booleans()):
            node.pop()
        else:
            node.append(value)
    return (p, c) if draw(st.booleans()) else (c, p)


walks = st.fixed_dictionaries(
    {
        "small": st.just(True),
        "few": st.sampled_from([0, 1, 8]),
        "room": st.sampled_from([1, 3]),
    }
)


@PROPERTY
@given(edited(), formats, formats, st.sampled_from(RULE_SETS), st.sampled_from([2, 100]), walks)
def test_the_text_walk_finds_what_parsing_finds(
    pair: tuple[Any, Any],
    format_p: Any,
    format_c: Any,
    rules: CompareRules,
    cap: int,
    walk: Any,
) -> None:
    both_ways(format_p(pair[0]), format_c(pair[1]), rules, cap, **walk)


@PROPERTY
@given(
    close_values,
    st.lists(
        st.tuples(
            st.booleans(),
            st.integers(min_value=0, max_value=400),
            st.sampled_from([b"", b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b" ", b"1",
                             b"e", b".", b"-", b"null", b"\xff", b"\xc3\xa9", b"\\u00e9"]),
            st.integers(min_value=0, max_value=2),
        ),
        max_size=3,
    ),
    walks,
)  # fmt: skip
def test_the_text_walk_agrees_on_damaged_texts(
    value: Any, edits: list[tuple[bool, int, bytes, int]], walk: Any
) -> None:
    texts = [orjson.dumps(value), orjson.dumps(value)]
    for side, at, insert, remove in edits:
        text = texts[side]
        at %= len(text) + 1
        texts[side] = text[:at] + insert + text[at + remove :]
    both_ways(texts[0], texts[1], RULES, 100, **walk)


def test_texts_are_walked_when_large_and_alike_in_length(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    walk = compare._walk

    def counting(p: Any, c: Any, rules: CompareRules, out: list[Difference]) -> bool:
        calls.append(type(p) is compare.Raw)
        return walk(p, c, rules, out)

    monkeypatch.setattr(compare, "_walk", counting)
    big, changed = orjson.dumps(large()), orjson.dumps(large({"score": 1}))
    diff_responses(response(b'{"a": 1}'), response(b'{"a": 2}'), RULES)
    diff_responses(response(big), response(changed), RULES)
    diff_responses(response(big), response(orjson.dumps(large(stamps=500))), RULES)
    diff_responses(response(big), response(json.dumps(large(), indent=2).encode()), RULES)
    assert calls == [False, True, False, False]
