"""A shadow hooks module: each request signed for its own target, AWS Signature Version 4 style.

Recorded traffic to an AWS-signed API carries signatures made for the legacy's host at the
time of the capture: replayed, they are stale, and they are wrong for the rewrite's host.
`prepare_request` signs every request again, per target, with the standard library's hmac
and hashlib (the algorithm of docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html:
a canonical request, a string to sign, a key derived from the secret for the day, region
and service). Use it with `[hooks] module = "hooks_sigv4.py"` (config/sigv4.toml).

The keys come from the environment, never from the config, and are never printed:
`SIGV4_ACCESS_KEY_ID` and `SIGV4_SECRET_ACCESS_KEY`; `SIGV4_REGION` (default us-east-1) and
`SIGV4_SERVICE` (default execute-api), each overridable per target with a `_PRIMARY`,
`_CANDIDATE` or `_SECONDARY` suffix (a rewrite deployed in another region, say). A missing
key stops the run before it starts: this module cannot be imported without it.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import hmac
import os
from urllib.parse import quote, unquote, urlsplit

from shadow.model import HookRequest

ALGORITHM = "AWS4-HMAC-SHA256"
# Recorded signature headers: replaced by this request's own.
STALE = frozenset(("authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"))


def _setting(name: str, target: str, default: str | None = None) -> str:
    value = os.environ.get(f"{name}_{target.upper()}") or os.environ.get(name) or default
    if value is None:
        raise RuntimeError(f"{name} is not set (the SigV4 hooks need it in the environment)")
    return value


# Read once, at import: a missing key is a config error before anything is sent.
ACCESS_KEY_ID = _setting("SIGV4_ACCESS_KEY_ID", "")
_SECRET_KEY = _setting("SIGV4_SECRET_ACCESS_KEY", "")


def prepare_request(target: str, request: HookRequest) -> HookRequest:
    """`request` signed for `target`: its recorded signature headers replaced."""
    region = _setting("SIGV4_REGION", target, "us-east-1")
    service = _setting("SIGV4_SERVICE", target, "execute-api")
    now = datetime.datetime.now(datetime.UTC)
    headers = sign(request, region, service, now, _secret_for(target))
    kept = tuple((k, v) for k, v in request.headers if k.lower() not in STALE)
    return dataclasses.replace(request, headers=kept + headers)


def _secret_for(target: str) -> str:
    return os.environ.get(f"SIGV4_SECRET_ACCESS_KEY_{target.upper()}") or _SECRET_KEY


def sign(
    request: HookRequest, region: str, service: str, now: datetime.datetime, secret: str
) -> tuple[tuple[str, str], ...]:
    """The headers that sign `request`: X-Amz-Date, X-Amz-Content-Sha256, Authorization."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload_hash = hashlib.sha256(request.body).hexdigest()
    host = request.header("host") or host_of(request.url)
    signed = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    names = ";".join(sorted(signed))
    canonical = "\n".join(
        (
            request.method,
            canonical_path(request.path),
            canonical_query(request.path),
            "".join(f"{name}:{signed[name].strip()}\n" for name in sorted(signed)),
            names,
            payload_hash,
        )
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = signing_key(secret, day, region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={ACCESS_KEY_ID}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return (
        ("X-Amz-Date", amz_date),
        ("X-Amz-Content-Sha256", payload_hash),
        ("Authorization", authorization),
    )


@functools.lru_cache(maxsize=16)  # one key per day, region and service: derived once
def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def host_of(url: str) -> str:
    """The Host header the HTTP client sends for `url` (no default port)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def canonical_path(target: str) -> str:
    path = target.partition("?")[0] or "/"
    return quote(unquote(path), safe="/-_.~")


def canonical_query(target: str) -> str:
    query = target.partition("?")[2]
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))
