"""Auth profiles: RS256 and HS256 JWTs, re-minting, recorded credentials, and no secret leaking."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shadow.config.load import load
from shadow.errors import ConfigError
from shadow.model import Record
from shadow.replay.auth import Authenticator, AuthError
from tests.support import ROOT, assert_accounted, events_of, shadow_cmd, write_jsonl

TARGETS = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shadow.toml"
    path.write_text(TARGETS + text)
    return path


def pem(key: Any) -> bytes:
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- RS256 -------------------------------------------------------------------------------------

RS256 = """
[auth.signer]
type = "jwt"
algorithm = "RS256"
{source}
key_id = "test-key-1"
claims = {{ sub = "{{address}}", scope = ["read", "write"] }}
ttl_s = 600
"""


def test_rs256_round_trip_with_a_key_file(tmp_path: Path) -> None:
    key = rsa_key()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signer.pem").write_bytes(pem(key))
    # A relative key_file is found beside the config, wherever shadow runs from.
    config = load(write(tmp_path, RS256.format(source='key_file = "keys/signer.pem"')))
    record = Record("GET", "/", vars={"address": "0xabc"})
    name, value = Authenticator(config).headers("signer", record)
    assert name == "Authorization" and value.startswith("Bearer ")
    token = value.removeprefix("Bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "test-key-1", "typ": "JWT"}
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"])
    assert claims["sub"] == "0xabc" and claims["scope"] == ["read", "write"]
    assert claims["exp"] - claims["iat"] == 600 and len(claims["jti"]) == 32
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, rsa_key().public_key(), algorithms=["RS256"])


def test_rs256_key_from_an_env_var_with_escaped_newlines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = rsa_key()
    monkeypatch.setenv("SHADOW_TEST_PEM", pem(key).decode().replace("\n", "\\n"))
    config = load(write(tmp_path, RS256.format(source='secret_env = "SHADOW_TEST_PEM"')))
    _, value = Authenticator(config).headers("signer", Record("GET", "/", vars={"address": "a"}))
    token = value.removeprefix("Bearer ")
    assert jwt.decode(token, key.public_key(), algorithms=["RS256"])["sub"] == "a"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a key at all: hunter2-secret-material", "needs a PEM private key"),
        (b"", "is empty"),
        ("ec", "needs an RSA private key"),
        ("encrypted", "encrypted"),
    ],
)
def test_a_bad_rsa_key_is_a_config_error_that_never_quotes_it(
    tmp_path: Path, content: Any, problem: str
) -> None:
    if content == "ec":
        content = pem(ec.generate_private_key(ec.SECP256R1()))
    elif content == "encrypted":
        content = rsa_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    (tmp_path / "k.pem").write_bytes(content)
    config = load(write(tmp_path, RS256.format(source='key_file = "k.pem"')))
    with pytest.raises(ConfigError) as caught:
        Authenticator(config)
    assert caught.value.key == "auth.signer.key_file"
    assert problem in caught.value.problem
    assert "hunter2" not in str(caught.value) and "BEGIN" not in caught.value.problem.split("(")[0]


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    config = load(write(tmp_path, RS256.format(source='key_file = "nowhere.pem"')))
    with pytest.raises(ConfigError, match=r"auth\.signer\.key_file: cannot read .*nowhere\.pem"):
        Authenticator(config)


def test_a_claim_that_is_no_template_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOW_TEST_SECRET", "s3cret-0123456789abcdef0123456789abcdef")
    text = '[auth.c]\ntype = "jwt"\nsecret_env = "SHADOW_TEST_SECRET"\nclaims = { a = "x{" }\n'
    with pytest.raises(ConfigError, match=r"auth\.c\.claims: 'x\{' is not a template"):
        Authenticator(load(write(tmp_path, text)))


# -- minting and the cache ---------------------------------------------------------------------

HS256 = """
[auth.c]
type = "jwt"
secret_env = "SHADOW_TEST_SECRET"
claims = { did = "did:pkh:eip155:1:{address}", token_type = "access" }
ttl_s = 10
"""


def test_tokens_are_cached_per_claim_set_and_reminted_before_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOW_TEST_SECRET", "s3cret-0123456789abcdef0123456789abcdef")
    now = [1_800_000_000.0]
    auth = Authenticator(load(write(tmp_path, HS256)), clock=lambda: now[0])
    alice = Record("GET", "/", vars={"address": "0xa"})
    bob = Record("GET", "/", vars={"address": "0xb"})

    def token(record: Record) -> str:
        return auth.headers("c", record)[1].removeprefix("Bearer ")

    first = token(alice)
    assert token(bob) != first  # another claim set, another token
    now[0] += 8.5  # 1.5 s of 10 left: more than a tenth, still good
    assert token(alice) == first
    now[0] += 0.6  # 0.9 s left: less than a tenth, minted again
    second = token(alice)
    assert second != first
    decode = {"algorithms": ["HS256"], "options": {"verify_exp": False, "verify_iat": False}}
    old, new = (
        jwt.decode(first, "s3cret-0123456789abcdef0123456789abcdef", **decode),
        jwt.decode(second, "s3cret-0123456789abcdef0123456789abcdef", **decode),
    )
    assert new["exp"] == int(now[0]) + 10 and new["exp"] > old["exp"]
    assert new["did"] == old["did"] == "did:pkh:eip155:1:0xa"
    assert token(alice) == second
    with pytest.raises(AuthError, match=r"vars\.address"):
        token(Record("GET", "/"))


def test_a_secret_file_loses_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret-0123456789abcdef0123456789abcdef\n")
    text = HS256.replace('secret_env = "SHADOW_TEST_SECRET"', 'key_file = "secret"')
    auth = Authenticator(load(write(tmp_path, text)))
    value = auth.headers("c", Record("GET", "/", vars={"address": "0xa"}))[1]
    jwt.decode(
        value.removeprefix("Bearer "),
        "s3cret-0123456789abcdef0123456789abcdef",
        algorithms=["HS256"],
    )


# -- recorded credentials, as the servers see them ---------------------------------------------

SECRET = "test-signing-secret-4417-0123456789abcdef"
INTERNAL_KEY = "test-internal-key-9921"
PROD_SECRET = "prod-secret-never-here-0123456789abcdef"
PROD_DID = "did:pkh:eip155:1:0x1111111111111111111111111111111111111111"
PROD_TOKEN = jwt.encode({"did": PROD_DID, "token_type": "access"}, PROD_SECRET)
RECORDED_RECORDS = [
    # Captured with a user's token and session cookie; signed again by `user`.
    {
        "method": "GET",
        "path": "/r1",
        "headers": {
            "Authorization": f"Bearer {PROD_TOKEN}",
            "Cookie": "session=prod-cookie",
            "X-Trace": "t1",
        },
        "auth": "user",
        "vars": {"did": "did:from-vars"},
    },
    # Captured with an API key, and no profile to sign it.
    {"method": "GET", "path": "/r2", "headers": {"X-Api-Key": "prod-api-key"}},
    # No recorded credentials; the internal key profile.
    {"method": "GET", "path": "/r3", "auth": "key"},
    # A user's token and no vars: only `replace` can sign it (from the token's claims).
    {
        "method": "GET",
        "path": "/r4",
        "headers": {"Authorization": f"Bearer {PROD_TOKEN}"},
        "auth": "user",
    },
]


class Recorder:
    """A target that answers 200 and keeps the headers of each request, by path."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}
        self.app = web.Application()
        self.app.router.add_get("/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen[request.path] = {
            k.lower(): v for k, v in request.headers.items() if k.lower() != "host"
        }
        return web.json_response({"ok": True})


@pytest.fixture
async def recorders() -> AsyncIterator[tuple[tuple[Recorder, Recorder], tuple[str, str]]]:
    pair = (Recorder(), Recorder())
    servers = [TestServer(r.app, host="127.0.0.1") for r in pair]
    for server in servers:
        await server.start_server()
    try:
        urls = tuple(str(s.make_url("")).rstrip("/") for s in servers)
        yield pair, (urls[0], urls[1])
    finally:
        for server in servers:
            await server.close()


async def run_against(
    tmp_path: Path, urls: tuple[str, str], mode: str
) -> tuple[list[dict[str, Any]], bytes]:
    (tmp_path / "secrets.env").write_text(f"SIGNING={SECRET}\nINTERNAL={INTERNAL_KEY}\n")
    config = tmp_path / f"{mode}.toml"
    config.write_text(f"""
env_file = "secrets.env"
[targets.primary]
url = "{urls[0]}"
[targets.candidate]
url = "{urls[1]}"
[replay]
recorded_auth = "{mode}"
[auth.user]
type = "jwt"
secret_env = "SIGNING"
claims = {{ sub = "{{did}}", token_type = "access" }}
[auth.key]
type = "header"
header = "AUTHORIZATION"
value_env = "INTERNAL"
""")
    log = write_jsonl(tmp_path / "recorded.jsonl", RECORDED_RECORDS)
    proc = await asyncio.create_subprocess_exec(
        *shadow_cmd("run", "-c", str(config), "--emit", "all", "--concurrency", "1", str(log)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    events = events_of(stdout)
    assert events[-1]["event"] == "run_finished", stderr
    assert_accounted(events[-1])
    return events, stdout + stderr


def claims_of(headers: dict[str, str]) -> dict[str, Any]:
    scheme, token = headers["authorization"].split(" ")
    assert scheme == "Bearer" and token != PROD_TOKEN
    claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return claims


def auth_errors(events: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["request"]["path"]: e["message"]
        for e in events
        if e["event"] == "error" and e["error"] == "auth"
    }


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["keep", "drop", "replace"])
async def test_recorded_credentials_as_the_servers_see_them(
    tmp_path: Path, recorders: tuple[tuple[Recorder, Recorder], tuple[str, str]], mode: str
) -> None:
    (primary, candidate), urls = recorders
    events, output = await run_against(tmp_path, urls, mode)
    assert primary.seen == candidate.seen  # both sides get the same credentials
    seen = primary.seen
    errors = auth_errors(events)

    assert claims_of(seen["/r1"])["sub"] == "did:from-vars"  # the record's vars win
    assert seen["/r1"]["x-trace"] == "t1"
    assert seen["/r3"]["authorization"] == INTERNAL_KEY
    if mode == "keep":
        assert seen["/r1"]["cookie"] == "session=prod-cookie"
        assert seen["/r2"]["x-api-key"] == "prod-api-key"
    else:
        assert "cookie" not in seen["/r1"]
    if mode == "drop":
        assert "x-api-key" not in seen["/r2"] and "authorization" not in seen["/r2"]
    if mode == "replace":
        assert "/r2" not in seen
        assert "recorded credentials (x-api-key) and no auth profile" in errors["/r2"]
        assert claims_of(seen["/r4"])["sub"] == PROD_DID  # from the captured token
        assert set(errors) == {"/r2"}
    else:
        assert "/r4" not in seen and "vars.did" in errors["/r4"]
        assert set(errors) == {"/r4"}

    # No secret, captured credential or minted token ever reaches stdout or stderr.
    minted = {h["authorization"] for h in seen.values() if "authorization" in h}
    for secret in {SECRET, INTERNAL_KEY, PROD_TOKEN, "prod-cookie", "prod-api-key", *minted}:
        assert secret.encode() not in output, secret
    requests = [e["request"] for e in events if "request" in e]
    assert len(requests) == 4
    assert ["Cookie", "[REDACTED]"] in requests[0]["headers"]


@pytest.mark.e2e
async def test_a_redacted_placeholder_is_an_auth_error_never_sent(
    tmp_path: Path, recorders: tuple[tuple[Recorder, Recorder], tuple[str, str]]
) -> None:
    """A mismatch event fed back in as a log carries `[REDACTED]` where the credentials were."""
    (primary, candidate), urls = recorders
    config = tmp_path / "fed-back.toml"
    (tmp_path / "secrets.env").write_text(f"SIGNING={SECRET}\n")
    config.write_text(f"""
env_file = "secrets.env"
[targets.primary]
url = "{urls[0]}"
[targets.candidate]
url = "{urls[1]}"
[auth.user]
type = "jwt"
secret_env = "SIGNING"
claims = {{ sub = "someone" }}
""")
    records = [
        {"method": "GET", "path": "/placeholder", "headers": [["Authorization", "[REDACTED]"]]},
        {  # a profile signs it: its header stands in for the placeholder
            "method": "GET",
            "path": "/signed",
            "headers": [["Authorization", "[REDACTED]"]],
            "auth": "user",
        },
    ]
    log = write_jsonl(tmp_path / "fed-back.jsonl", records)
    proc = await asyncio.create_subprocess_exec(
        *shadow_cmd("run", "-c", str(config), "--concurrency", "1", str(log)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    events = events_of(stdout)
    assert events[-1]["event"] == "run_finished", stderr
    errors = auth_errors(events)
    assert set(errors) == {"/placeholder"}
    assert "[REDACTED] placeholder" in errors["/placeholder"]
    assert "auth profile" in errors["/placeholder"]
    assert "/placeholder" not in primary.seen and "/placeholder" not in candidate.seen
    assert claims_of(primary.seen["/signed"])["sub"] == "someone"
    assert b"hint: " in stderr  # the stderr summary says what to try
