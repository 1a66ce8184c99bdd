"""Credentials added to replayed requests: JWTs minted with PyJWT, or a raw header value.

Secrets are resolved and keys parsed once, at start: a missing secret or an unreadable key is a
config error naming the profile's key, and no message ever quotes the secret. Tokens are cached
per claim set and minted again when less than a tenth of their lifetime is left, so a soak run
of hours keeps sending valid tokens without signing one per request.

Credentials captured in a log follow `[replay] recorded_auth`:
- `keep` (default): sent as recorded; a header that a profile sets takes the profile's value.
- `drop`: never sent; a profile still adds its own header.
- `replace`: never sent, and every record that carried some must be signed by a profile (its
  own `auth` or its endpoint's) or it becomes an `auth` error: a captured production credential
  never reaches a target. The claims of a recorded bearer JWT, read without verifying it, fill
  in the `vars` the record lacks, so `claims = { did = "{did}" }` signs the captured identity
  again with the test key.

PyJWT and cryptography are imported where a token is minted or read, or a key parsed: a run
without an auth profile or recorded JWTs to read never loads them (a tenth of a plain run's
start-up).
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shadow.config.auth import AuthProfile
from shadow.config.load import Config
from shadow.errors import ConfigError
from shadow.model import CREDENTIAL_HEADERS, REDACTED, Record

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

_CACHE_LIMIT = 10_000


class AuthError(Exception):
    """A record's auth cannot be built (unknown profile, a claim's variable missing)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What auth does to one request: headers to set, recorded headers (lowercase) to leave out."""

    headers: tuple[tuple[str, str], ...] = ()
    drop: frozenset[str] = frozenset()


_NONE = Credentials()


class _Template(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise AuthError(f"claim needs vars.{key}, which the record does not have")


class _Anything(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        return ""


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

    def __init__(
        self,
        config: Config,
        clock: Callable[[], float] = time.time,
        on_mint: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._on_mint = on_mint  # hears each token minted: the profile and its claims
        self._profiles = dict(config.auth)
        texts = {name: _key_text(config, p) for name, p in self._profiles.items()}
        self._secrets = [text for text, _ in texts.values()]
        self._keys = {
            name: _signing_key(p, *texts[name], config.source) for name, p in self._profiles.items()
        }
        for profile in self._profiles.values():
            _check_claims(config, profile)
        self._tokens: dict[tuple[str, bytes], tuple[str, float]] = {}
        self._clock = clock
        self._mode = config.replay.recorded_auth
        self._credential_names = CREDENTIAL_HEADERS | self.header_names

    def secret_values(self) -> list[str]:
        """Every header value, HMAC secret and PEM key of the profiles, and each line of a
        key: what the events must never show (the tokens minted are JWTs, masked by shape)."""
        values = []
        for text in self._secrets:
            lines = [line.strip() for line in text.splitlines()]
            values += [text, *(line for line in lines if line and not line.startswith("-----"))]
        return values

    @property
    def header_names(self) -> frozenset[str]:
        """Headers this run's profiles set: always redacted from events."""
        return frozenset(p.header.lower() for p in self._profiles.values())

    def credentials(self, record: Record, profile_name: str | None) -> Credentials:
        """The auth headers for `record` signed by `profile_name` (None: no profile applies)."""
        keep = self._mode == "keep"  # what was recorded is sent: what it holds does not matter
        recorded = (
            frozenset()
            if keep
            else frozenset(
                name.lower() for name, _ in record.headers if name.lower() in self._credential_names
            )
        )
        if keep or not recorded:
            signed = self.headers(profile_name, record) if profile_name else None
            _refuse_placeholders(record, signed[0] if signed else None)
            return Credentials((signed,)) if signed else _NONE
        if not profile_name:
            if self._mode == "replace":
                raise AuthError(
                    f"recorded credentials ({', '.join(sorted(recorded))}) and no auth profile "
                    'to replace them (recorded_auth = "replace"): give the record or its '
                    "endpoint an `auth`"
                )
            return Credentials((), recorded)
        variables: Mapping[str, Any] = record.vars
        if self._mode == "replace":
            variables = {**_recorded_claims(record, self._profiles.get(profile_name)), **variables}
        return Credentials((self.headers(profile_name, record, variables),), recorded)

    def headers(
        self, profile_name: str, record: Record, variables: Mapping[str, Any] | None = None
    ) -> tuple[str, str]:
        profile = self._profiles.get(profile_name)
        if profile is None:
            raise AuthError(f"no [auth.{profile_name}] profile is configured")
        if profile.type == "header":
            return profile.header, self._keys[profile_name]
        token = self._token(profile, record.vars if variables is None else variables)
        return profile.header, f"{profile.scheme} {token}" if profile.scheme else token

    def _token(self, profile: AuthProfile, variables: Mapping[str, Any]) -> str:
        claims = _fill(dict(profile.claims), variables)
        cache_key = (profile.name, repr(sorted(claims.items())).encode())
        now = self._clock()
        cached = self._tokens.get(cache_key)
        # Mint again when less than a tenth of the lifetime is left, so no request carries a
        # token that expires while it is in flight.
        if cached is not None and cached[1] - now > profile.ttl_s / 10:
            return cached[0]
        import jwt
        from jwt.warnings import InsecureKeyLengthWarning

        expires = now + profile.ttl_s
        payload = {**claims, "iat": int(now), "exp": int(expires), "jti": uuid.uuid4().hex}
        with warnings.catch_warnings():
            # The key is the service's own: shadow must sign with it, however short it is.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = jwt.encode(
                payload,
                self._keys[profile.name],
                algorithm=profile.algorithm,
                headers={"kid": profile.key_id} if profile.key_id else None,
            )
        if len(self._tokens) > _CACHE_LIMIT:  # bound memory on runs with very many identities
            self._tokens.clear()
        self._tokens[cache_key] = (token, expires)
        if self._on_mint is not None:
            self._on_mint(profile.name, claims)
        return token


def _refuse_placeholders(record: Record, signed: str | None) -> None:
    """A recorded credential that is the `[REDACTED]` placeholder (a mismatch event fed back
    in as a log) is never sent as it is: only a profile's header can stand in for it."""
    if all(value != REDACTED for _, value in record.headers):
        return
    placeholders = sorted(
        {
            name.lower()
            for name, value in record.headers
            if value == REDACTED and name.lower() != (signed or "").lower()
        }
    )
    if placeholders:
        raise AuthError(
            f"the recorded {', '.join(placeholders)} is the {REDACTED} placeholder of an event, "
            "not a credential: sign the record with an auth profile (its `auth`, its endpoint's, "
            'or recorded_auth = "replace"), or replay a log with the real credentials'
        )


def _recorded_claims(record: Record, profile: AuthProfile | None) -> dict[str, Any]:
    """The claims of the bearer JWT the record was captured with, unverified; {} if none."""
    header = profile.header if profile is not None else "Authorization"
    value = record.header(header) or record.header("Authorization") or ""
    token = value.split(" ", 1)[1] if " " in value else value
    import jwt

    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _check_claims(config: Config, profile: AuthProfile) -> None:
    """A claim template that cannot be filled at all is a config error, not a per-record one."""
    pending: list[Any] = [dict(profile.claims)]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.format_map(_Anything())
            except (ValueError, IndexError, KeyError, AttributeError) as exc:
                raise ConfigError(
                    config.source,
                    f"auth.{profile.name}.claims",
                    f"{value!r} is not a template: {exc}",
                ) from None


def _signing_key(profile: AuthProfile, text: str, key: str, source: str) -> Any:
    """The header value, HMAC secret or parsed RSA private key of a profile."""
    if profile.type == "jwt" and profile.algorithm.startswith("RS"):
        return _rsa_private_key(text, source, key, profile.algorithm)
    return text


def _key_text(config: Config, profile: AuthProfile) -> tuple[str, str]:
    """The key's text and the config key it came from (for errors, which never quote it)."""
    prefix = f"auth.{profile.name}"
    if profile.key_file:
        key = f"{prefix}.key_file"
        try:
            with open(profile.key_file, encoding="utf-8") as f:
                # A secret written with `echo` ends in a newline that is not part of it.
                text = f.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(
                config.source, key, f"cannot read {profile.key_file}: {problem}"
            ) from None
        if not text:
            raise ConfigError(config.source, key, f"{profile.key_file} is empty")
        return text, key
    field_name = "value_env" if profile.type == "header" else "secret_env"
    var = profile.value_env if profile.type == "header" else profile.secret_env
    value = config.lookup_secret(var)
    if not value:
        raise ConfigError(
            config.source,
            f"{prefix}.{field_name}",
            f"environment variable {var} is not set (nor in env_file)",
        )
    if value.startswith("-----BEGIN") and "\\n" in value and "\n" not in value:
        # A PEM key in a one-line environment variable, its newlines written as `\n`.
        value = value.replace("\\n", "\n")
    return value, f"{prefix}.{field_name}"


def _rsa_private_key(text: str, source: str, key: str, algorithm: str) -> rsa.RSAPrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        loaded = serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:
        raise ConfigError(
            source, key, "the PEM key is encrypted; give an unencrypted private key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            source, key, f"{algorithm} needs a PEM private key (-----BEGIN PRIVATE KEY-----)"
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigError(source, key, f"{algorithm} needs an RSA private key")
    return loaded
