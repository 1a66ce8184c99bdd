"""Turning captured HTTP pieces (request targets, header pairs, body bytes) into Record fields.

Every capture reader goes through these checks so that whatever it yields is also a valid
native record: `shadow convert` output must read back through the JSONL reader unchanged.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

# A method is an HTTP token; the native format asks for letters only, which every method a
# service answers (GET ... PATCH, PROPFIND) satisfies.
_BAD_NAME = re.compile(r"[\x00-\x20:\x7f()<>@,;\\\"/\[\]?={}]")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x20\x7f]")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_PERCENT_ENCODE = "shadow-percent-encode"


def _percent_encode(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return "".join(f"%{byte:02X}" for byte in bad), error.end


codecs.register_error(_PERCENT_ENCODE, _percent_encode)


class Body(NamedTuple):
    """A body as the Record fields that carry it."""

    form: str  # "", "json", "text" or "b64" (see Record.body_form)
    value: Any  # the parsed JSON value when form == "json"
    data: bytes | None  # the bytes sent on the wire


NO_BODY = Body("", None, None)


def check_method(method: object) -> str:
    if not isinstance(method, str) or not method.isascii() or not method.isalpha():
        raise ValueError(f"not an HTTP method: {str(method)[:40]!r}")
    return method.upper()


def check_header(name: str, value: str) -> tuple[str, str]:
    """The pair unchanged, or ValueError naming the header that cannot be sent again."""
    if not name or _BAD_NAME.search(name):
        raise ValueError(f"invalid header name {name[:40]!r}")
    if _BAD_VALUE.search(value):
        raise ValueError(f"header {name[:40]!r} has a control character in its value")
    return name, value


def check_headers(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`check_header` on every pair, in two regex scans for the lot when all is well."""
    if (
        _BAD_NAME.search("".join(name for name, _ in pairs))
        or _BAD_VALUE.search("".join(value for _, value in pairs))
        or not all(name for name, _ in pairs)
    ):
        for name, value in pairs:
            check_header(name, value)
    return pairs


def decode_header(raw: bytes) -> str:
    """Header bytes as text: UTF-8 where it is valid, else Latin-1 (every byte kept)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def target_path(raw: bytes) -> tuple[str, str | None]:
    """The path and query of a raw request target, and the host if it was an absolute URL.

    Valid UTF-8 is kept as text (the replay percent-encodes it the same way again); bytes that
    are not are percent-encoded here, so the exact bytes go back on the wire.
    """
    if _CONTROL_BYTES.search(raw):
        raise ValueError(f"request target has a space or control character: {raw[:80]!r}")
    return url_path(raw.decode("utf-8", _PERCENT_ENCODE))


def url_path(url: str) -> tuple[str, str | None]:
    """The path and query of an origin-form target or an http(s) URL, and the URL's host."""
    if _CONTROL.search(url):
        raise ValueError(f"request target has a space or control character: {url[:80]!r}")
    if url.startswith("/"):
        return url.partition("#")[0], None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL or a path: {url[:80]!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    default_port = _DEFAULT_PORTS[parts.scheme.lower()]
    host = host.removesuffix(default_port)
    return path, host or None


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def body_of(data: bytes, content_type: str | None) -> Body:
    """Captured body bytes as a record body: JSON when declared and valid, else text or base64.

    The bytes sent are always the captured ones; the JSON form only makes a converted log
    readable (and it re-serializes to the same value).
    """
    if is_json_type(content_type) and data.strip():
        try:
            return Body("json", orjson.loads(data), data)
        except orjson.JSONDecodeError:
            pass
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return Body("b64", None, data)
    return Body("text", None, data)


def has_header(headers: list[tuple[str, str]], name: str) -> bool:
    wanted = name.lower()
    return any(key.lower() == wanted for key, _ in headers)
