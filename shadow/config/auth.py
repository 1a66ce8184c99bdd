"""`[auth.NAME]`: profiles that sign replayed requests (a JWT, or a header from an env var).

Only the settings live here; secrets are resolved and keys parsed when a run starts
(shadow.replay.auth), so `shadow check` can describe a config whose secrets are not set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadow.config.table import UNSET, Table
from shadow.errors import InvalidValue, check_at_least, check_choice

AUTH_TYPES = ("jwt", "header")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512")


@dataclass(frozen=True, slots=True)
class AuthProfile:
    name: str
    type: str  # jwt | header
    header: str = "Authorization"
    value_env: str = ""
    scheme: str | None = None  # None: "Bearer" for a JWT, none for a header profile
    algorithm: str = "HS256"
    secret_env: str = ""
    key_file: str = ""  # absolute: resolved against the config file's folder
    key_id: str = ""  # the JWT header's `kid`, when the verifier picks keys by id
    claims: Mapping[str, Any] = field(default_factory=dict)
    ttl_s: float = 3600.0

    def __post_init__(self) -> None:
        check_choice("type", self.type, AUTH_TYPES)
        check_choice("algorithm", self.algorithm, JWT_ALGORITHMS)
        check_at_least("ttl_s", self.ttl_s, 1)
        if self.scheme is None:
            object.__setattr__(self, "scheme", "Bearer" if self.type == "jwt" else "")
        if self.type == "header" and not self.value_env:
            raise InvalidValue("value_env", "missing (the env var holding the header's value)")
        if self.type == "jwt" and not (self.secret_env or self.key_file):
            raise InvalidValue("secret_env", "missing (the env var holding the secret or PEM key)")


def parse_auth(t: Table, name: str, base: Path) -> AuthProfile:
    kind = t.text("type")
    if not kind:
        raise t.fail("type", 'missing (use "jwt" or "header")')
    key_file = t.text("key_file")
    profile = t.build(
        AuthProfile,
        name=name,
        type=kind,
        header=t.text("header"),
        value_env=t.text("value_env"),
        scheme=t.text("scheme"),
        algorithm=t.text("algorithm"),
        secret_env=t.text("secret_env"),
        key_file=str(base / key_file) if key_file else UNSET,
        key_id=t.text("key_id"),
        claims=t.get("claims", (dict,), "a table"),
        ttl_s=t.number("ttl_s"),
    )
    t.done()
    return profile
