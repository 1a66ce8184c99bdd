"""The one place that knows a run's secret values, and takes them out of every line it writes.

What is a secret (shadow.run.secrets gathers them from the config, then `add` for what is known
later):

- the values of a target's `env` and `env_file` whose name says secret (the name-based rule
  error trackers use: `KEY`, `SECRET`, `TOKEN`, `PASS`, `PWD`, `AUTH`, `CREDENTIAL`, `PRIVATE`,
  `SESSION`, `COOKIE`, `SALT`, `SIGNATURE`, `CERT`, `DSN`), that carry a password in a url, or
  that look random (16 characters or more, no space, letters and digits mixed); a value such
  as `127.0.0.1` or `config.settings` is not one, or every url shown would be masked too;
- the password of a target's url, and static `[targets.*] headers` values of credential
  headers (`Authorization`, `X-API-Key`, ..., every auth profile's and `[redact]` header);
- every auth profile's header value, HMAC secret and PEM key (and each line of it); the
  tokens shadow mints are JWTs, caught by their shape;
- per exchange, the credentials the record carries (`sink.exchange` passes them).

What is masked, in every string of every event (keys too) and every line on stderr and in
the servers' logs (the keeper applies the same `keeper_mask()`): each known value (at least
`MIN_SECRET_CHARS` long: a shorter one cannot be told from ordinary text), every JWT-shaped
string (`eyJ...`.`eyJ...`, signed or cut short by an excerpt) and the userinfo of every url (`http://user:pw@host` shows as
`http://[REDACTED]@host`). A rendered line is first searched for each value's bytes and for
the two shapes' literal starts (substring tests, no alternation: those are what keep it
cheap); only a line that holds something is parsed, masked string by string, and written
again.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from shadow.model import REDACTED

MIN_SECRET_CHARS = 6
# A JWT, or what an excerpt cut short leaves of one: a header and (part of) the claims.
JWT = r"eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?"
USERINFO = r"://[^/?#@\s\"'\\<>]+@"
# Each its own pattern: a literal start lets the regex engine skip ahead, an alternation not.
_JWT, _JWT_BYTES = re.compile(JWT), re.compile(JWT.encode())
_USERINFO, _USERINFO_BYTES = re.compile(USERINFO), re.compile(USERINFO.encode())
SECRET_NAME = re.compile(
    r"KEY|SECRET|TOKEN|PASS|PWD|AUTH|CREDENTIAL|PRIVATE|SESSION|COOKIE|SALT|SIGNATURE|CERT|DSN",
    re.IGNORECASE,
)
_RANDOM = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*\d)[^\s]{16,}")
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def env_secrets(env: dict[str, str]) -> list[str]:
    """The values of an environment that are secrets by the rules above."""
    found = []
    for name, value in env.items():
        passwords = url_passwords(value)
        if SECRET_NAME.search(name) or _RANDOM.fullmatch(value) or passwords:
            found.append(value)
        found.extend(passwords)
    return found


def url_passwords(text: str) -> list[str]:
    """The password of `text` if it is a url that has one: as given, percent-decoded, and as
    the Basic credentials a client sends for it (base64 of `user:password`)."""
    if "://" not in text or "@" not in text:
        return []
    try:
        parts = urlsplit(text.strip())
        user, password = parts.username, parts.password
    except ValueError:
        return []
    if not password:
        return []
    basic = f"{unquote(user or '')}:{unquote(password)}".encode()
    return [password, unquote(password), base64.b64encode(basic).decode("ascii")]


def credential_values(value: str) -> list[str]:
    """A credential header's value and its parts: the token after a scheme, cookie values."""
    parts = [value]
    scheme, _, token = value.partition(" ")
    if token and scheme.isalpha():
        parts.append(token.strip())
    parts.extend(cookie.partition("=")[2].strip() for cookie in value.split(";"))
    return parts


class Scrubber:
    """The run's secret values, and the masking of every output line."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self._forms: list[bytes] = []  # each value as a rendered line may hold it
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """More secret values (those shorter than MIN_SECRET_CHARS are not masked)."""
        fresh = {v for v in values if len(v) >= MIN_SECRET_CHARS} - self.values
        if not fresh:
            return
        self.values |= fresh
        # Longest first: a value that holds another is masked whole.
        known = sorted(self.values, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(v) for v in known))
        raw = {v.encode("utf-8", "surrogatepass") for v in known}
        self._forms = sorted(raw | {_escaped(v) for v in known}, key=len, reverse=True)

    def keeper_mask(self) -> dict[str, Any]:
        """The masking for the keeper, which imports nothing of shadow and applies it to the
        servers' output as bytes: the values, and the two shapes."""
        return {"values": sorted(self.values), "jwt": JWT, "userinfo": USERINFO}

    def text(self, value: str) -> str:
        """`value` with every secret, JWT and url userinfo masked."""
        # Substring tests first: C-speed, and a string rarely holds anything.
        if self._known is not None and any(v in value for v in self.values):
            value = self._known.sub(REDACTED, value)
        if "eyJ" in value:
            value = _JWT.sub(REDACTED, value)
        if "://" in value and "@" in value:
            value = _USERINFO.sub(f"://{REDACTED}@", value)
        return value

    def holds(self, rendered: bytes) -> bool:
        """Whether a rendered line holds anything to mask."""
        for form in self._forms:
            if form in rendered:
                return True
        return (b"eyJ" in rendered and _JWT_BYTES.search(rendered) is not None) or (
            b"://" in rendered and _USERINFO_BYTES.search(rendered) is not None
        )

    def line(self, rendered: bytes, extra: Iterable[str] = ()) -> bytes:
        """A rendered event line, masked; `extra`: this event's own secrets (a record's)."""
        scrubber = self
        # Only those the line holds: a new pattern per record would cost more than the line.
        extra = [
            v
            for v in extra
            if len(v) >= MIN_SECRET_CHARS
            and v not in self.values
            and (v.encode("utf-8", "surrogatepass") in rendered or _escaped(v) in rendered)
        ]
        if extra:
            scrubber = Scrubber(self.values)
            scrubber.add(extra)
        if not scrubber.holds(rendered):
            return rendered
        try:
            event = orjson.loads(rendered)
        except orjson.JSONDecodeError:  # not ours to parse: mask the bytes as they are
            for form in scrubber._forms:
                rendered = rendered.replace(form, REDACTED.encode())
            rendered = _JWT_BYTES.sub(REDACTED.encode(), rendered)
            return _USERINFO_BYTES.sub(f"://{REDACTED}@".encode(), rendered)
        return orjson.dumps(scrubber.value(event), option=_OPTIONS)

    def lines(self, chunk: bytes) -> bytes:
        """Whole rendered lines (a `--workers` child's), each masked."""
        if not self.holds(chunk):
            return chunk
        return b"".join(self.line(line) for line in chunk.splitlines(keepends=True))

    def value(self, value: Any) -> Any:
        """JSON-like data with every string (and key) masked; iterative, any depth."""
        holder: list[Any] = [value]
        stack: list[tuple[Any, Any, Any]] = [(value, holder, 0)]
        while stack:
            node, parent, key = stack.pop()
            if isinstance(node, str):
                parent[key] = self.text(node)
            elif isinstance(node, dict):
                copy: dict[Any, Any] = {}
                for k, v in node.items():
                    copy[self.text(k) if isinstance(k, str) else k] = v
                parent[key] = copy
                stack.extend((v, copy, k) for k, v in copy.items())
            elif isinstance(node, list):
                items = list(node)
                parent[key] = items
                stack.extend((v, items, i) for i, v in enumerate(items))
        return holder[0]


def secret_forms(secret: str) -> list[str]:
    """A secret as it may be shown: whole, and each line of a PEM key."""
    lines = [line.strip() for line in secret.replace("\\n", "\n").splitlines()]
    return [secret, *(line for line in lines if line and not line.startswith("-----"))]


def _escaped(value: str) -> bytes:
    """`value` as it stands inside a JSON string orjson wrote."""
    return orjson.dumps(value.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))[1:-1]
