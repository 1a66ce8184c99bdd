"""`[redact]`: what events must never show, beyond the credential headers always redacted."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class RedactConfig:
    """Header names and JSON Pointer patterns redacted beside the defaults
    (shadow.events.redact says where)."""

    headers: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for pattern in self.paths:
            if not pattern.startswith("/"):
                raise InvalidValue(
                    "paths", f"{pattern!r} is not a JSON Pointer pattern (start it with /)"
                )


def mask_userinfo(url: str) -> str:
    """`url` with its userinfo (`user:password@`) shown as `***@`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def parse_redact(t: Table) -> RedactConfig:
    headers = t.strings("headers")
    config = t.build(
        RedactConfig,
        headers=tuple(h.lower() for h in headers) if headers else UNSET,
        paths=t.strings("paths"),
    )
    t.done()
    return config
