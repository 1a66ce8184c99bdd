"""HAR 1.2 captures (browser devtools, mitmproxy `hardump`, Charles, Fiddler) as records.

A HAR file is one JSON document, but it is read as a stream of `log.entries` with ijson's C
parser, so memory holds one entry at a time whatever the file's size, and a file cut off part
way still yields every entry before the cut. ijson does not report line numbers, so problems
name the entry instead (`entry 12` is `log.entries[11]`) and carry line 0.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import urlencode

import ijson

from shadow.model import InputProblem, Item, Record
from shadow.sources import wire
from shadow.sources.answers import answer_from_har, recorded_answer

_FORM = "application/x-www-form-urlencoded"


def read_records(stream: BinaryIO, source: str, max_record_bytes: int) -> Iterator[Item]:
    """A record per `log.entries[].request`; a bad entry or a broken document is a problem."""
    number = 0
    try:
        for entry in ijson.items(stream, "log.entries.item", use_float=True):
            number += 1
            try:
                yield record_from_entry(entry, source, max_record_bytes)
            except ValueError as exc:
                yield InputProblem(source, 0, f"entry {number}: {exc}")
    except (ijson.JSONError, UnicodeDecodeError, ValueError) as exc:
        where = f"after entry {number}" if number else "before the first entry"
        yield InputProblem(source, 0, f"HAR is not valid JSON {where}: {_short(exc)}")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def record_from_entry(entry: Any, source: str = "", max_body_bytes: int = 1 << 62) -> Record:
    """The request of one HAR entry as a Record; ValueError says what is wrong with it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise ValueError("no 'request' object")
    request = entry["request"]
    method = wire.check_method(request.get("method"))
    url = request.get("url")
    if not isinstance(url, str):
        raise ValueError("'request.url' is missing")
    path, host = wire.url_path(_utf8(url))
    headers = _headers(request.get("headers"))
    if host and not wire.has_header(headers, "host"):
        headers.insert(0, ("Host", host))
    body = _post_data(request.get("postData"), headers, max_body_bytes)
    return Record(
        method=method,
        path=path,
        headers=tuple(headers),
        body=body.value,
        body_bytes=body.data,
        body_form=body.form,
        ts=_started(entry.get("startedDateTime")),
        source=source,
        **recorded_answer(
            lambda r: answer_from_har(r, _headers, entry.get("time")), entry.get("response")
        ),
    )


def _headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("'request.headers' must be a list")
    pairs = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError("each header must be an object with 'name' and 'value'")
        name, text = item.get("name"), item.get("value")
        if not isinstance(name, str) or not isinstance(text, str):
            raise ValueError("header 'name' and 'value' must be strings")
        # HTTP/2 pseudo-headers (:authority, :path, ...) are the request line, not headers.
        if name.startswith(":"):
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # never quoted: the value may be a credential
            raise ValueError(f"header {name[:40]!r}: its value is not valid Unicode") from None
        pairs.append((_utf8(name), text))
    return wire.check_headers(pairs)


def _utf8(text: str) -> str:
    # JSON can escape a lone surrogate ("\\ud800"); no request can carry one.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"not valid Unicode: {text[:40]!r}") from None
    return text


def _post_data(post: Any, headers: list[tuple[str, str]], max_bytes: int) -> wire.Body:
    if post is None:
        return wire.NO_BODY
    if not isinstance(post, dict):
        raise ValueError("'request.postData' must be an object")
    mime = post.get("mimeType")
    mime = mime if isinstance(mime, str) and mime else None
    if mime and not wire.has_header(headers, "content-type"):
        headers.append(wire.check_header("Content-Type", _utf8(mime)))
    content_type = next((v for k, v in headers if k.lower() == "content-type"), mime)
    text, params = post.get("text"), post.get("params")
    if params and not text:
        data = _form_bytes(params, content_type)
    elif text is None:
        return wire.NO_BODY
    elif not isinstance(text, str):
        raise ValueError("'postData.text' must be a string")
    else:
        data = _text_bytes(text, post.get("encoding"))
    if len(data) > max_bytes:
        raise ValueError(f"body longer than {max_bytes} bytes")
    return wire.body_of(data, content_type)


def _text_bytes(text: str, encoding: Any) -> bytes:
    if encoding in (None, ""):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("'postData.text' is not valid Unicode") from None
    if encoding != "base64":
        raise ValueError(f"unknown postData encoding {str(encoding)[:20]!r}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("'postData.text' is not valid base64") from None


def _form_bytes(params: Any, content_type: str | None) -> bytes:
    # `params` alone can rebuild a urlencoded form, not a multipart one (no boundary, no files).
    media = (content_type or _FORM).partition(";")[0].strip().lower()
    if media != _FORM:
        raise ValueError(f"a {media} body recorded only as 'params' cannot be rebuilt")
    if not isinstance(params, list) or not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) for p in params
    ):
        raise ValueError("'postData.params' must be a list of objects with a 'name'")
    pairs = [(p["name"], p.get("value") if isinstance(p.get("value"), str) else "") for p in params]
    try:
        return urlencode(pairs).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("'postData.params' is not valid Unicode") from None


def _started(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'startedDateTime' must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'startedDateTime' is not an ISO 8601 time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
