"""Two XML or HTML bodies compared as trees: element text, attributes, children.

Parsed with lxml (libxml2): XML without loading DTDs, resolving entities or touching the
network; HTML the way a browser would repair it. Comments and processing instructions are left
out. Paths follow `shadow.compare.bodypaths`: `/order/item[2]` an element, `/order/@id` an
attribute, `/order/@xmlns` its namespace when the two sides' differ; `[k]` counts from 1 among children of the same name, on the side the node is on.

An element's text is its own text and the text after each of its children, joined; with
`ignore_whitespace` (the default) a piece that is only whitespace (indentation) is left out, so
an indented body equals a compact one. Children are aligned by name as `diff` aligns lines, so
one inserted element is one `extra`, not a change on every sibling after it
(`shadow.compare.align`). The walk uses an
explicit stack: no depth of nesting raises RecursionError.
"""

from __future__ import annotations

from collections import Counter

from lxml import etree

from shadow.compare.align import align
from shadow.compare.bodypaths import PathRules
from shadow.model import Difference

__all__ = ["MarkupError", "diff_markup", "parse_markup"]

_EXCERPT_CHARS = 120
_Element = etree._Element


class MarkupError(ValueError):
    """The body is not well-formed XML (or holds no HTML element at all)."""


def _parser(html: bool) -> etree.XMLParser | etree.HTMLParser:
    if html:
        return etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
    return etree.XMLParser(
        remove_comments=True,
        remove_pis=True,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
    )


def parse_markup(body: bytes, html: bool) -> _Element:
    """The root element of an XML or HTML body; MarkupError when there is none."""
    try:
        root = etree.fromstring(body, _parser(html))
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise MarkupError(str(exc)) from None
    if root is None:
        raise MarkupError("no element")
    return root


def diff_markup(
    primary: _Element, candidate: _Element, rules: PathRules, ignore_whitespace: bool
) -> list[Difference]:
    """Every difference between two element trees, located by markup paths."""
    out: list[Difference] = []
    name_p, name_c = _name(primary), _name(candidate)
    if name_p != name_c:
        _unmatched(f"/{name_p}", primary, "missing", rules, out)
        _unmatched(f"/{name_c}", candidate, "extra", rules, out)
        return out
    stack = [(f"/{name_p}", primary, candidate)]
    while stack:
        path, p, c = stack.pop()
        if rules.ignored(path):
            continue
        space_p, space_c = etree.QName(p).namespace, etree.QName(c).namespace
        if space_p != space_c and not rules.ignored(f"{path}/@xmlns"):
            # One name in two namespaces is two different elements.
            out.append(Difference(f"{path}/@xmlns", "value", space_p, space_c))
        text_p, text_c = _text(p, ignore_whitespace), _text(c, ignore_whitespace)
        if not rules.equal(path, text_p, text_c):
            out.append(Difference(path, "value", text_p, text_c))
        _diff_attributes(path, p, c, rules, out)
        stack.extend(reversed(_children(path, p, c, rules, out)))
    return out


def _name(element: _Element) -> str:
    qname = etree.QName(element)
    return f"{element.prefix}:{qname.localname}" if element.prefix else qname.localname


def _attribute_name(key: str, element: _Element) -> str:
    if not key.startswith("{"):
        return key
    qname = etree.QName(key)
    prefix = next((p for p, ns in element.nsmap.items() if ns == qname.namespace and p), None)
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _text(element: _Element, ignore_whitespace: bool) -> str:
    pieces = [element.text or ""]
    for child in element:
        if child.tag is etree.Entity:  # an entity left unresolved counts as its `&name;`
            pieces.append(child.text or "")
        pieces.append(child.tail or "")
    if ignore_whitespace:
        pieces = [piece for piece in pieces if piece.strip()]
    return "".join(pieces)


def _diff_attributes(
    path: str, p: _Element, c: _Element, rules: PathRules, out: list[Difference]
) -> None:
    attrs_p = {_attribute_name(str(k), p): str(v) for k, v in p.attrib.items()}
    attrs_c = {_attribute_name(str(k), c): str(v) for k, v in c.attrib.items()}
    for name, value in attrs_p.items():
        at = f"{path}/@{name}"
        if rules.ignored(at):
            continue
        if name not in attrs_c:
            out.append(Difference(at, "missing", value, None))
        elif not rules.equal(at, value, attrs_c[name]):
            out.append(Difference(at, "value", value, attrs_c[name]))
    for name, value in attrs_c.items():
        at = f"{path}/@{name}"
        if name not in attrs_p and not rules.ignored(at):
            out.append(Difference(at, "extra", None, value))


def _elements(element: _Element) -> list[_Element]:
    # Comments, PIs and unresolved entities have a non-text tag: they are not elements.
    return [child for child in element if isinstance(child.tag, str)]


def _segments(names: list[str]) -> list[str]:
    """Each child's path segment: its name, with `[k]` when its name repeats among them."""
    if len(set(names)) == len(names):
        return names
    counts, seen = Counter(names), Counter[str]()
    out = []
    for name in names:
        seen[name] += 1
        out.append(f"{name}[{seen[name]}]" if counts[name] > 1 else name)
    return out


def _children(
    path: str, p: _Element, c: _Element, rules: PathRules, out: list[Difference]
) -> list[tuple[str, _Element, _Element]]:
    kids_p, kids_c = _elements(p), _elements(c)
    if not kids_p and not kids_c:
        return []
    names_p, names_c = [_name(k) for k in kids_p], [_name(k) for k in kids_c]
    segs_p, segs_c = _segments(names_p), _segments(names_c)
    pairs: list[tuple[str, _Element, _Element]] = []
    for _, p0, p1, c0, c1 in align(names_p, names_c):
        # Within a changed stretch, children of one name at one position are still a pair.
        paired = [k for k in range(min(p1 - p0, c1 - c0)) if names_p[p0 + k] == names_c[c0 + k]]
        pairs += [
            (f"{path}/{segs_p[p0 + k]}", kids_p[p0 + k], kids_c[c0 + k])
            for k in paired
            if not _same(kids_p[p0 + k], kids_c[c0 + k])
        ]
        taken = set(paired)
        for i in range(p0, p1):
            if i - p0 not in taken:
                _unmatched(f"{path}/{segs_p[i]}", kids_p[i], "missing", rules, out)
        for j in range(c0, c1):
            if j - c0 not in taken:
                _unmatched(f"{path}/{segs_c[j]}", kids_c[j], "extra", rules, out)
    return pairs


def _same(p: _Element, c: _Element) -> bool:
    """Whether two subtrees are certainly equal: the same serialization, found in C."""
    # Equal text holds no difference whatever the rules; anything else is walked.
    return bool(etree.tostring(p, with_tail=False) == etree.tostring(c, with_tail=False))


def _unmatched(
    path: str, element: _Element, kind: str, rules: PathRules, out: list[Difference]
) -> None:
    if rules.ignored(path):
        return
    text = etree.tostring(element, encoding="unicode", with_tail=False)
    excerpt = text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."
    sides = (excerpt, None) if kind == "missing" else (None, excerpt)
    out.append(Difference(path, kind, *sides))
