"""Credentials added to replayed requests: JWTs minted with PyJWT, or a raw header value.

Secrets are resolved once at start (a missing one is a config error naming the profile), and
tokens are cached per claim set and minted again before they expire, so a soak run of hours
keeps sending valid tokens without signing one per request.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from shadow.config import AuthProfile, Config
from shadow.errors import ConfigError
from shadow.model import Record


class AuthError(Exception):
    """A record's auth cannot be built (unknown profile, a claim's variable missing)."""


class _Template(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise AuthError(f"claim needs vars.{key}, which the record does not have")


def _fill(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(_Template(variables))
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


class Authenticator:
    """Header values for auth profiles; one per run."""

    def __init__(self, config: Config) -> None:
        self._profiles = dict(config.auth)
        self._keys = {name: _signing_key(config, p) for name, p in self._profiles.items()}
        self._tokens: dict[tuple[str, bytes], tuple[str, float]] = {}

    @property
    def header_names(self) -> frozenset[str]:
        """Headers this run's profiles set: always redacted from events."""
        return frozenset(p.header.lower() for p in self._profiles.values())

    def headers(self, profile_name: str, record: Record) -> tuple[str, str]:
        profile = self._profiles.get(profile_name)
        if profile is None:
            raise AuthError(f"no [auth.{profile_name}] profile is configured")
        if profile.type == "header":
            return profile.header, self._keys[profile_name]
        token = self._token(profile, record.vars)
        return profile.header, f"{profile.scheme} {token}" if profile.scheme else token

    def _token(self, profile: AuthProfile, variables: Mapping[str, Any]) -> str:
        claims = _fill(dict(profile.claims), variables)
        cache_key = (profile.name, repr(sorted(claims.items())).encode())
        now = time.time()
        cached = self._tokens.get(cache_key)
        # Mint again when less than a tenth of the lifetime is left, so no request carries a
        # token that expires while it is in flight.
        if cached is not None and cached[1] - now > profile.ttl_s / 10:
            return cached[0]
        expires = now + profile.ttl_s
        payload = {**claims, "iat": int(now), "exp": int(expires), "jti": uuid.uuid4().hex}
        with warnings.catch_warnings():
            # The key is the service's own: shadow must sign with it, however short it is.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = jwt.encode(payload, self._keys[profile.name], algorithm=profile.algorithm)
        if len(self._tokens) > 10_000:  # bound memory on runs with very many identities
            self._tokens.clear()
        self._tokens[cache_key] = (token, expires)
        return token


def _signing_key(config: Config, profile: AuthProfile) -> str:
    key = f"auth.{profile.name}"
    if profile.key_file:
        try:
            with open(profile.key_file, encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise ConfigError(
                config.source, f"{key}.key_file", f"cannot read {profile.key_file}: {exc.strerror}"
            ) from None
    var = profile.value_env if profile.type == "header" else profile.secret_env
    value = config.lookup_secret(var)
    if not value:
        field_name = "value_env" if profile.type == "header" else "secret_env"
        raise ConfigError(
            config.source,
            f"{key}.{field_name}",
            f"environment variable {var} is not set (nor in env_file)",
        )
    return value
