"""Bodies that are not JSON on both sides, compared by what they are.

The primary's `Content-Type` decides how (README "Bodies that are not JSON"):

* XML (`*/xml`, `*+xml`) and HTML (`text/html`) as trees (`shadow.compare.markup`);
* `application/x-www-form-urlencoded` by field, through the JSON walk: a field is a member
  (`/status`), a repeated field an array of its values (`/tag/1`);
* other text (`text/*`, script and data types, or no type at all and bytes that decode) line
  by line (`shadow.compare.text`);
* anything else, JSON types included (a body that claims JSON and does not parse is broken,
  not text), is binary: one `/` `body` difference giving each side's size, SHA-256 prefix
  and a short excerpt. Markup that does not parse on either side is compared as text, and
  text that does not decode in its charset as binary.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable
from typing import Any

from shadow.compare.bodypaths import PathRules
from shadow.compare.markup import MarkupError, diff_markup, parse_markup
from shadow.compare.text import diff_lines
from shadow.model import CompareRules, Difference

__all__ = ["body_kind", "diff_other_bodies", "form_fields", "summarize"]

_EXCERPT_CHARS = 120
_FORM = "application/x-www-form-urlencoded"
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_TEXT_TYPES = (
    "application/javascript",
    "application/ecmascript",
    "application/graphql",
    "application/x-ndjson",
    "application/csv",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "application/sql",
)

JsonDiff = Callable[[Any, Any, CompareRules], list[Difference]]


def body_kind(content_type: str | None) -> str:
    """How a body of this media type is compared: xml, html, form, text, binary or sniff."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if not media:
        return "sniff"
    if media == "text/html":
        return "html"
    if media.endswith(("/xml", "+xml")):
        return "xml"
    if media == _FORM:
        return "form"
    if media.endswith(("/json", "+json")):
        return "binary"  # JSON that does not parse is broken, not text: summarized
    if media.startswith("text/") or media in _TEXT_TYPES:
        return "text"
    return "binary"


def diff_other_bodies(
    primary: bytes,
    candidate: bytes,
    content_type: str | None,
    rules: CompareRules,
    diff_json: JsonDiff,
) -> list[Difference]:
    """Every difference between two bodies that are not both JSON."""
    kind = body_kind(content_type)
    if kind == "form":
        fields_p, fields_c = form_fields(primary), form_fields(candidate)
        if fields_p is not None and fields_c is not None:
            return diff_json(fields_p, fields_c, rules)
        kind = "text"
    paths = PathRules.of(rules)
    if kind in ("xml", "html"):
        try:
            root_p = parse_markup(primary, html=kind == "html")
            root_c = parse_markup(candidate, html=kind == "html")
        except MarkupError:
            kind = "text"
        else:
            return diff_markup(root_p, root_c, paths, rules.ignore_whitespace)
    if kind in ("text", "sniff"):
        charset = _charset(content_type)
        text_p, text_c = _decode(primary, charset), _decode(candidate, charset)
        if text_p is not None and text_c is not None:
            return diff_lines(text_p, text_c, paths)
    return [Difference("/", "body", summarize(primary), summarize(candidate))]


def form_fields(body: bytes) -> dict[str, Any] | None:
    """An url-encoded body as {field: value, or [values] when repeated}; None if not text."""
    if not body.isascii():
        return None
    out: dict[str, Any] = {}
    for field in body.split(b"&"):
        if not field:
            continue
        raw_key, _, raw_value = field.partition(b"=")
        key, value = _unquote(raw_key), _unquote(raw_value)
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def _unquote(raw: bytes) -> str:
    """A form field's name or value: `+` is a space, `%XX` a byte, the bytes UTF-8; bytes that
    are not UTF-8 keep their escaped text, so two different ones never read the same."""
    # urllib.parse does this too, but compare stays clear of the network modules.
    pieces = raw.replace(b"+", b" ").split(b"%")
    out = bytearray(pieces[0])
    for piece in pieces[1:]:
        if len(piece) >= 2 and all(b in _HEX_DIGITS for b in piece[:2]):
            out += bytes([int(piece[:2], 16)]) + piece[2:]
        else:
            out += b"%" + piece
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("ascii")


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"')
            try:
                return codecs.lookup(charset).name
            except LookupError:
                break
    return "utf-8"


def _decode(body: bytes, charset: str) -> str | None:
    """The body as text, or None when it is not text in `charset` (or holds a NUL)."""
    if b"\x00" in body:
        return None
    try:
        return body.decode(charset)
    except UnicodeDecodeError:
        return None


def summarize(body: bytes) -> dict[str, Any]:
    """A binary body as a difference shows it: size, SHA-256 prefix, a short excerpt."""
    # A character takes at most 4 bytes, so 4x the excerpt's bytes always yield enough text.
    text = body[: 4 * _EXCERPT_CHARS].decode("utf-8", "replace")
    return {
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest()[:16],
        "excerpt": text[:_EXCERPT_CHARS],
    }
