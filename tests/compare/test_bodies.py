"""Bodies that are not JSON: markup trees, text lines, forms by field, binary summaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.compare.align import align
from shadow.compare.bodies import body_kind, form_fields
from shadow.compare.bodypaths import PathRules
from shadow.compare.diff import Differences, diff_responses
from shadow.compare.markup import MarkupError, diff_markup, parse_markup
from shadow.compare.text import diff_lines
from shadow.model import CompareRules, Difference, Response

RULES = CompareRules()
PLAIN = PathRules.of(RULES)


def response(body: bytes, content_type: str | None) -> Response:
    headers = (("Content-Type", content_type),) if content_type else ()
    return Response(status=200, headers=headers, body=body, latency_ms=1.0)


def diff(a: bytes, b: bytes, content_type: str | None, rules: CompareRules = RULES) -> list:
    return diff_responses(response(a, content_type), response(b, content_type), rules)


def pairs(diffs: list[Difference]) -> set[tuple[str, str]]:
    return {(d.path, d.kind) for d in diffs}


# --- which comparison ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/xml", "xml"),
        ("text/xml; charset=utf-8", "xml"),
        ("application/soap+xml", "xml"),
        ("text/html; charset=UTF-8", "html"),
        ("application/x-www-form-urlencoded", "form"),
        ("text/plain", "text"),
        ("text/csv", "text"),
        ("application/json", "binary"),  # JSON that did not parse: broken, not text
        ("application/problem+json", "binary"),
        ("application/octet-stream", "binary"),
        ("image/png", "binary"),
        (None, "sniff"),
    ],
)
def test_the_content_type_chooses_the_comparison(content_type: str | None, kind: str) -> None:
    assert body_kind(content_type) == kind


# --- XML and HTML ----------------------------------------------------------------------------


def test_xml_text_attributes_and_children() -> None:
    a = b'<o id="1"><i sku="A">x</i><i sku="B">y</i><total>2</total><note>n</note></o>'
    b = b'<o id="1" new="z"><i sku="A">x</i><i sku="C">y</i><total>3</total></o>'
    found = diff(a, b, "application/xml")
    assert found == [
        Difference("/o/@new", "extra", None, "z"),
        Difference("/o/note", "missing", "<note>n</note>", None),
        Difference("/o/i[2]/@sku", "value", "B", "C"),
        Difference("/o/total", "value", "2", "3"),
    ]


def test_an_inserted_element_is_one_extra() -> None:
    a = b"<l><a>1</a><b>2</b><c>3</c></l>"
    b = b"<l><a>1</a><new/><b>2</b><c>3</c></l>"
    assert diff(a, b, "text/xml") == [Difference("/l/new", "extra", None, "<new/>")]


def test_indentation_is_not_a_difference_unless_asked() -> None:
    a = b"<o><a>1</a><b>2</b></o>"
    b = b"<o>\n  <a>1</a>\n  <b>2</b>\n</o>\n"
    assert diff(a, b, "application/xml") == []
    strict = CompareRules(ignore_whitespace=False)
    assert pairs(diff(a, b, "application/xml", strict)) == {("/o", "value")}


def test_rules_apply_to_markup_paths() -> None:
    a = b'<o at="2026-01-01T00:00:00Z"><i n="1">x</i><i n="2">y</i><t>1.0</t></o>'
    b = b'<o at="2026-01-01T00:00:00.000+00:00"><i n="9">x</i><i n="8">y</i><t>1</t></o>'
    rules = CompareRules(
        ignore=("/o/i/@n",), normalize=(("/o/@at", "datetime"), ("/o/t", "number"))
    )
    assert diff(a, b, "application/xml", rules) == []
    only_first = CompareRules(ignore=("/o/i[1]/@n",))
    assert pairs(diff(a, b, "application/xml", only_first)) >= {("/o/i[2]/@n", "value")}
    assert diff(a, b, "application/xml", CompareRules(ignore=("/**/@*", "/o/t"))) == []


def test_namespaces_are_named_by_their_prefix() -> None:
    a = b'<s:Env xmlns:s="urn:s"><s:Body><r>1</r></s:Body></s:Env>'
    b = b'<s:Env xmlns:s="urn:s"><s:Body><r>2</r></s:Body></s:Env>'
    assert diff(a, b, "application/soap+xml") == [Difference("/s:Env/s:Body/r", "value", "1", "2")]


def test_a_changed_namespace_is_a_difference() -> None:
    a, b = b'<r xmlns="urn:v1"><x>1</x></r>', b'<r xmlns="urn:v2"><x>1</x></r>'
    assert diff(a, b, "application/xml") == [
        Difference("/r/@xmlns", "value", "urn:v1", "urn:v2"),
        Difference("/r/x/@xmlns", "value", "urn:v1", "urn:v2"),
    ]


def test_html_is_repaired_and_compared_as_a_tree() -> None:
    a = b"<html><body><h1>Hi</h1><p class=a>one<p>two</body></html>"
    b = b"<!DOCTYPE html><html><body><h1>Hi!</h1><p class=b>one</p><p>two</p></body></html>"
    assert diff(a, b, "text/html") == [
        Difference("/html/body/h1", "value", "Hi", "Hi!"),
        Difference("/html/body/p[1]/@class", "value", "a", "b"),
    ]


def test_entities_are_not_expanded_and_nothing_is_fetched() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>'
    root = parse_markup(xxe, html=False)
    assert "root:" not in (root.text or "")


def test_an_unresolved_entity_is_compared_by_its_name() -> None:
    dtd = b'<!DOCTYPE d [<!ENTITY a "one"><!ENTITY b "two">]>'
    [found] = diff(dtd + b"<d>x &a; y</d>", dtd + b"<d>x &b; y</d>", "application/xml")
    assert found == Difference("/d", "value", "x &a; y", "x &b; y")


def test_markup_that_does_not_parse_is_compared_as_text() -> None:
    with pytest.raises(MarkupError):
        parse_markup(b"<a><b></a>", html=False)
    assert diff(b"<a><b></a>", b"<a><c></a>", "application/xml") == [
        Difference("line:1", "value", "<a><b></a>", "<a><c></a>")
    ]


def test_deep_markup_never_raises() -> None:
    deep = b"<a>" * 200 + b"x" + b"</a>" * 200
    other = b"<a>" * 200 + b"y" + b"</a>" * 200
    [found] = diff(deep, other, "application/xml")
    assert found.path == "/a" * 200 and found.kind == "value"


# --- text --------------------------------------------------------------------------------------


def test_text_lines_changed_missing_and_extra() -> None:
    a = "one\ntwo\nthree\nfour\n"
    b = "one\nTWO\nthree\nfour\nfive\n"
    assert diff_lines(a, b, PLAIN) == [
        Difference("line:2", "value", "two", "TWO"),
        Difference("line:5", "extra", None, "five"),
    ]


def test_an_inserted_line_is_one_extra_and_numbered_as_in_the_candidate() -> None:
    a, b = "a\nb\nc", "a\nnew\nb\nc"
    assert diff_lines(a, b, PLAIN) == [Difference("line:2", "extra", None, "new")]
    assert diff_lines(b, a, PLAIN) == [Difference("line:2", "missing", "new", None)]


def test_line_patterns_ignore_and_normalize() -> None:
    a, b = "stamp 1\nx\n2026-01-01T00:00:00Z\nkeep", "stamp 2\ny\n2026-01-01T00:00:00+00:00\nKEEP"
    rules = CompareRules(
        ignore=("line:1-2",), normalize=(("line:3", "datetime"), ("line:*", "case"))
    )
    assert diff(a.encode(), b.encode(), "text/plain", rules) == []
    assert pairs(diff(a.encode(), b.encode(), "text/plain")) == {
        ("line:1", "value"),
        ("line:2", "value"),
        ("line:3", "value"),
        ("line:4", "value"),
    }


def test_line_patterns_are_checked() -> None:
    with pytest.raises(ValueError, match="line:12"):
        CompareRules(ignore=("line:0",))
    CompareRules(ignore=("line:12", "line:3-5", "line:*"))


def test_a_body_without_a_type_is_text_when_it_decodes() -> None:
    assert pairs(diff(b"a\nb", b"a\nc", None)) == {("line:2", "value")}
    [binary] = diff(b"\x00\x01", b"\x00\x02", None)
    assert binary.kind == "body" and binary.primary["bytes"] == 2


def test_a_charset_is_honoured_and_bytes_that_do_not_decode_are_binary() -> None:
    latin = "caf\u00e9".encode("latin-1")
    [found] = diff(latin, b"cafe", "text/plain; charset=iso-8859-1")
    assert found == Difference("line:1", "value", "caf\u00e9", "cafe")
    [binary] = diff(latin, b"cafe", "text/plain")
    assert binary.kind == "body"


# --- forms and binary ------------------------------------------------------------------------


def test_forms_are_compared_by_field_with_the_json_rules() -> None:
    a, b = b"a=1&b=x+y&t=one&t=two&token=r1", b"b=x%20y&a=2&t=one&t=three&token=r2"
    rules = CompareRules(ignore=("/token",))
    assert diff(a, b, "application/x-www-form-urlencoded", rules) == [
        Difference("/a", "value", "1", "2"),
        Difference("/t/1", "value", "two", "three"),
    ]
    assert form_fields(b"k=%E2%82%AC&bad=%zz&=v") == {"k": "\u20ac", "bad": "%zz", "": "v"}
    assert form_fields(b"a=%FE&b=%FF") == {"a": "%FE", "b": "%FF"}  # not UTF-8: kept escaped


def test_binary_stays_a_summary() -> None:
    [found] = diff(b"\x89PNG\x00a", b"\x89PNG\x00b", "image/png")
    assert found.path == "/" and found.kind == "body"
    assert set(found.primary) == {"bytes", "sha256", "excerpt"}


# --- properties ------------------------------------------------------------------------------

lines = st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=8), max_size=8)
names = st.sampled_from(["a", "b", "item", "x:y"])


@given(lines)
def test_text_equals_itself(text: list[str]) -> None:
    body = "\n".join(text)
    assert diff_lines(body, body, PLAIN) == []


@given(lines, lines)
def test_every_line_difference_names_a_line_on_its_side(a: list[str], b: list[str]) -> None:
    for found in diff_lines("\n".join(a), "\n".join(b), PLAIN):
        n = int(found.path.removeprefix("line:"))
        side = b if found.kind == "extra" else a
        assert 1 <= n <= max(len(side), 1)


@st.composite
def trees(draw: st.DrawFn, depth: int = 2) -> str:
    tag = draw(st.sampled_from(["a", "b", "item"]))
    attrs = draw(st.dictionaries(st.sampled_from(["id", "k"]), st.text('xyz<&"', max_size=3)))
    text = draw(st.text("ab &<", max_size=4))
    kids = draw(st.lists(trees(depth - 1), max_size=3)) if depth > 0 else []
    quoted = "".join(f' {k}="{_escape(v)}"' for k, v in attrs.items())
    return f"<{tag}{quoted}>{_escape(text)}{''.join(kids)}</{tag}>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@settings(max_examples=40)
@given(trees())
def test_markup_equals_itself(doc: str) -> None:
    root = parse_markup(doc.encode(), html=False)
    assert diff_markup(root, parse_markup(doc.encode(), html=False), PLAIN, True) == []


@settings(max_examples=40)
@given(trees(), trees())
def test_markup_differences_only_where_the_trees_differ(a: str, b: str) -> None:
    found = diff_markup(
        parse_markup(a.encode(), False), parse_markup(b.encode(), False), PLAIN, True
    )
    assert (found == []) == (_canonical(a) == _canonical(b))


def _canonical(doc: str) -> bytes:
    from lxml import etree

    root = parse_markup(doc.encode(), html=False)
    for element in root.iter():
        for piece in ("text", "tail"):
            if not (getattr(element, piece) or "").strip():
                setattr(element, piece, None)
    return bytes(etree.tostring(root, method="c14n"))


# --- alignment -------------------------------------------------------------------------------


def test_alignment_takes_off_the_common_ends_and_stays_bounded() -> None:
    assert align(["a", "b", "c"], ["a", "x", "b", "c"]) == [
        ("equal", 0, 1, 0, 1),
        ("insert", 1, 1, 1, 2),
        ("equal", 1, 3, 2, 4),
    ]
    big_a, big_b = ["r"] * 1000 + ["s"] * 1000, ["s"] * 1000 + ["r"] * 1000
    ops = align(big_a, big_b)  # 1000 x 1000 equal items in the middle: paired by position
    assert ops == [("replace", 0, 2000, 0, 2000)]


def test_many_siblings_of_one_name_are_compared_quickly_and_in_order() -> None:
    items = "".join(f"<i>{n}</i>" for n in range(3000))
    moved = "".join(f"<i>{n}</i>" for n in range(1, 3000)) + "<i>0</i>"
    found = diff(f"<l>{items}</l>".encode(), f"<l>{moved}</l>".encode(), "application/xml")
    # Every sibling differs; the first max_differences are kept and all of them counted.
    assert isinstance(found, Differences) and found.total == 3000 and len(found) == 100
    assert found[0] == Difference("/l/i[1]", "value", "0", "1")
    lines = "\n".join(["row"] * 2000 + ["a"] * 2000)
    other = "\n".join(["a"] * 2000 + ["row"] * 2000)
    assert len(diff_lines(lines, other, PLAIN)) == 4000


@given(st.lists(st.sampled_from("abc"), max_size=12), st.lists(st.sampled_from("abc"), max_size=12))
def test_alignment_rebuilds_both_sides(a: list[str], b: list[str]) -> None:
    rebuilt_a, rebuilt_b = [], []
    for tag, a0, a1, b0, b1 in align(a, b):
        rebuilt_a += a[a0:a1]
        rebuilt_b += b[b0:b1]
        if tag == "equal":
            assert a[a0:a1] == b[b0:b1]
    assert (rebuilt_a, rebuilt_b) == (a, b)
