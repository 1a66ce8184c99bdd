"""The bundled demo servers: auth, answer shapes, and that the flavours differ only by the two bugs."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from shadow.demo import seed
from shadow.demo.app import MissingSettingError, main, make_app
from tests.support import LOGS

SECRET = "demo-secret-key-not-for-production"
INTERNAL_KEY = "demo-internal-key"
LOG = LOGS / "passport-demo.jsonl"
INTERNAL = {"AUTHORIZATION": INTERNAL_KEY}
NOISE_KEYS = frozenset({"id", "last_score_timestamp"})
BUG_PATHS = {
    "r-03": ["/0/end_time"],
    "r-05": ["/items/0/last_updated_in_block", "/items/1/last_updated_in_block"],
}

Client = TestClient[Any, Any]


@pytest.fixture(autouse=True)
def demo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("CGRANTS_API_TOKEN", INTERNAL_KEY)


async def _serve(flavour: str) -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_app(flavour))) as client:
        yield client


@pytest.fixture
async def legacy() -> AsyncIterator[Client]:
    async for client in _serve("legacy"):
        yield client


@pytest.fixture
async def rewrite() -> AsyncIterator[Client]:
    async for client in _serve("rewrite"):
        yield client


def mint(address: str, *, secret: str = SECRET, ttl_s: int = 300, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "did": f"did:pkh:eip155:1:{address}",
        "token_type": "access",
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(address: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(address, **kwargs)}"}


def read_log() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in LOG.read_bytes().splitlines() if line.strip()]


async def send(client: Client, record: dict[str, Any]) -> ClientResponse:
    headers = dict(record.get("headers", {}))
    if record.get("auth") == "internal":
        headers.update(INTERNAL)
    elif record.get("auth") == "ceramic":
        headers.update(bearer(record["vars"]["address"]))
    data = orjson.dumps(record["body"]) if "body" in record else None
    return await client.request(record["method"], record["path"], headers=headers, data=data)


def strip_noise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_noise(v) for k, v in value.items() if k not in NOISE_KEYS}
    if isinstance(value, list):
        return [strip_noise(v) for v in value]
    return value


def diff_paths(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """JSON Pointers where a and b differ, JSON types kept apart (1 != "1", 1 != true)."""
    if type(a) is not type(b):
        yield path or "/"
    elif isinstance(a, dict):
        for key in a.keys() | b.keys():
            if key not in a or key not in b:
                yield f"{path}/{key}"
            else:
                yield from diff_paths(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list):
        if len(a) != len(b):
            yield path or "/"
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            yield from diff_paths(x, y, f"{path}/{index}")
    elif a != b:
        yield path or "/"


# -- configuration -------------------------------------------------------------------------------


def test_missing_env_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(MissingSettingError, match="SECRET_KEY"):
        make_app("legacy")


def test_main_exits_2_naming_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CGRANTS_API_TOKEN")
    assert main(["--flavour", "rewrite", "--port", "1"]) == 2
    assert "CGRANTS_API_TOKEN" in capsys.readouterr().err


def test_unknown_flavour_is_refused() -> None:
    with pytest.raises(ValueError, match="flavour"):
        make_app("staging")


# -- auth ----------------------------------------------------------------------------------------


async def test_weights_are_open_for_health_checks(legacy: Client) -> None:
    response = await legacy.get("/internal/embed/weights")
    assert response.status == 200
    weights = await response.json()
    assert len(weights) == 8
    assert weights["Google"] == "0.525"


@pytest.mark.parametrize("header", [None, "wrong-key", f"Bearer {INTERNAL_KEY}"])
async def test_internal_endpoints_need_the_raw_key(legacy: Client, header: str | None) -> None:
    headers = {} if header is None else {"AUTHORIZATION": header}
    response = await legacy.get(f"/internal/stake/gtc/{seed.HOLDER}", headers=headers)
    assert response.status == 401
    assert await response.json() == {"detail": "Unauthorized"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        f"Token {mint(seed.CERAMIC_USER)}",
        f"Bearer {mint(seed.CERAMIC_USER, secret='another-secret-key-of-enough-length')}",
        f"Bearer {mint(seed.CERAMIC_USER, ttl_s=-60)}",
        f"Bearer {mint(seed.CERAMIC_USER, token_type='refresh')}",
        f"Bearer {mint(seed.CERAMIC_USER, did='did:key:z6Mkabc')}",
    ],
    ids=["none", "garbage", "scheme", "signature", "expired", "refresh", "did"],
)
async def test_ceramic_cache_needs_a_valid_access_token(
    rewrite: Client, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await rewrite.get(f"/ceramic-cache/score/{seed.CERAMIC_USER}", headers=headers)
    assert response.status == 401
    assert "detail" in await response.json()


async def test_ceramic_score_of_another_address_is_forbidden(legacy: Client) -> None:
    response = await legacy.get(
        f"/ceramic-cache/score/{seed.HOLDER}", headers=bearer(seed.CERAMIC_USER)
    )
    assert response.status == 403


# -- errors --------------------------------------------------------------------------------------


async def test_unknown_route_is_a_json_404(rewrite: Client) -> None:
    response = await rewrite.get("/internal/nope", headers=INTERNAL)
    assert response.status == 404
    assert await response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("body", [b"{not json", b"{}", b'[{"credentialSubject": {}}]'])
async def test_bad_bodies_are_a_json_400(legacy: Client, body: bytes) -> None:
    response = await legacy.post("/internal/check-bans", data=body, headers=INTERNAL)
    assert response.status == 400
    assert isinstance((await response.json())["detail"], str)


async def test_invalid_address_is_a_400(legacy: Client) -> None:
    response = await legacy.get("/internal/stake/gtc/0x1234", headers=INTERNAL)
    assert response.status == 400


# -- shapes --------------------------------------------------------------------------------------


async def test_score_v2_shape(legacy: Client) -> None:
    response = await legacy.get(f"/internal/score/v2/335/{seed.HOLDER}", headers=INTERNAL)
    score = await response.json()
    assert score["address"] == seed.HOLDER
    assert score["score"] == "20.79300"
    assert score["passing_score"] is True
    assert score["threshold"] == "20.00000"
    assert score["error"] is None
    assert score["expiration_timestamp"] == "2027-05-30T18:04:11Z"
    datetime.fromisoformat(score["last_score_timestamp"])
    assert score["stamps"]["Google"] == {
        "score": "0.525",
        "dedup": False,
        "expiration_date": "2027-06-08T09:15:42.120Z",
    }


async def test_unknown_address_scores_zero(rewrite: Client) -> None:
    response = await rewrite.get(f"/internal/score/v2/1/{'0x' + 'ab' * 20}", headers=INTERNAL)
    score = await response.json()
    assert (score["score"], score["passing_score"], score["stamps"]) == ("0.00000", False, {})
    assert score["expiration_timestamp"] is None


async def test_check_bans_bug_end_time_precision(legacy: Client, rewrite: Client) -> None:
    body = [
        {"credentialSubject": {"hash": "h1", "provider": "Google", "id": f"did:pkh:eip155:1:{a}"}}
        for a in (seed.HOLDER, seed.SYBIL, seed.STAKEE)
    ]
    answers = {}
    for name, client in (("legacy", legacy), ("rewrite", rewrite)):
        response = await client.post("/internal/check-bans", json=body, headers=INTERNAL)
        answers[name] = await response.json()
    assert answers["legacy"][0]["end_time"] == "2025-06-01T10:02:39.584Z"
    assert answers["rewrite"][0]["end_time"] == "2025-06-01T10:02:39.584855Z"
    assert answers["legacy"][0]["ban_type"] == "single_stamp"
    assert answers["legacy"][1] == {
        "hash": "h1",
        "is_banned": True,
        "ban_type": "account",
        "end_time": None,
        "reason": "Sybil cluster",
    }
    assert answers["legacy"][2]["is_banned"] is False
    assert answers["legacy"][1:] == answers["rewrite"][1:]


async def test_gtc_stake_bug_block_as_string(legacy: Client, rewrite: Client) -> None:
    path = f"/internal/stake/gtc/{seed.HOLDER}"
    old = (await (await legacy.get(path, headers=INTERNAL)).json())["items"]
    new = (await (await rewrite.get(path, headers=INTERNAL)).json())["items"]
    assert [item["last_updated_in_block"] for item in old] == [12345678, 12401234]
    assert [item["last_updated_in_block"] for item in new] == ["12345678", "12401234"]
    assert [item["id"] for item in old] == [1001, 1002]
    assert [item["id"] for item in new] == [1, 2]
    assert old[0]["amount"] == "100.000000000000000000"
    assert old[0]["chain"] == 1


async def test_small_internal_endpoints(legacy: Client) -> None:
    revoked = next(iter(seed.REVOKED_PROOFS))
    response = await legacy.post(
        "/internal/check-revocations", json={"proof_values": ["0xabc", revoked]}, headers=INTERNAL
    )
    assert await response.json() == [
        {"proof_value": "0xabc", "is_revoked": False},
        {"proof_value": revoked, "is_revoked": True},
    ]
    member = await legacy.get(f"/internal/allow-list/testlist/{seed.HOLDER}", headers=INTERNAL)
    assert await member.json() == {"is_member": True}
    stranger = await legacy.get(f"/internal/allow-list/testlist/{seed.SYBIL}", headers=INTERNAL)
    assert await stranger.json() == {"is_member": False}
    stats = await legacy.get(
        f"/internal/cgrants/contributor_statistics?address={seed.HOLDER}", headers=INTERNAL
    )
    assert await stats.json() == {
        "num_grants_contribute_to": 7,
        "total_contribution_amount": "123.45",
    }


async def test_embed_stamps_raise_the_score(rewrite: Client) -> None:
    credential = seed.make_credential(
        seed.EMBED_USER,
        "BeaconChain",
        "h",
        datetime.fromisoformat("2025-01-01T00:00:00Z"),
        datetime.fromisoformat("2026-01-01T00:00:00Z"),
    )
    path = f"/internal/embed/stamps/{seed.EMBED_USER}"
    added = await rewrite.post(
        path, json={"scorer_id": 335, "stamps": [credential]}, headers=INTERNAL
    )
    body = await added.json()
    assert body["success"] is True
    assert body["score"]["score"] == "4.31600"  # seeded Discord 0.516 + BeaconChain 3.8
    read = await rewrite.get(f"/internal/embed/score/335/{seed.EMBED_USER}", headers=INTERNAL)
    assert strip_noise(await read.json()) == strip_noise(body)


async def test_ceramic_cache_bulk_flow(legacy: Client) -> None:
    auth = bearer(seed.CERAMIC_USER)
    stamp = {"expirationDate": "2026-02-18T14:03:12.845Z", "credentialSubject": {}}
    posted = await legacy.post(
        "/ceramic-cache/stamps/bulk",
        json=[{"provider": "Google", "stamp": stamp}, {"provider": "Ens", "stamp": stamp}],
        headers=auth,
    )
    body = await posted.json()
    assert [(s["provider"], s["address"]) for s in body["stamps"]] == [
        ("Google", seed.CERAMIC_USER),
        ("Ens", seed.CERAMIC_USER),
    ]
    assert body["stamps"][0]["id"] >= 1001
    assert body["score"]["score"] == "2.72500"
    patched = await legacy.patch(
        "/ceramic-cache/stamps/bulk", json=[{"provider": "Ens"}], headers=auth
    )
    assert [s["provider"] for s in (await patched.json())["stamps"]] == ["Google"]
    deleted = await legacy.delete(
        "/ceramic-cache/stamps/bulk", json=[{"provider": "Google"}], headers=auth
    )
    assert (await deleted.json())["stamps"] == []


# -- the bundled log -----------------------------------------------------------------------------


def test_log_is_the_documented_scenario() -> None:
    records = read_log()
    assert [r["id"] for r in records] == [f"r-{n:02d}" for n in range(1, 14)]
    for record in records:
        names = {name.lower() for name in record.get("headers", {})}
        assert "authorization" not in names, record["id"]
    ceramic = [r["id"] for r in records if r["path"].startswith("/ceramic-cache/")]
    assert ceramic == ["r-10", "r-11", "r-12", "r-13"]
    assert {records[n]["lane"] for n in range(9, 13)} == {seed.CERAMIC_USER}


async def test_flavours_differ_only_by_the_two_bugs(legacy: Client, rewrite: Client) -> None:
    found: dict[str, list[str]] = {}
    for record in read_log():
        old, new = await send(legacy, record), await send(rewrite, record)
        assert (old.status, new.status) == (200, 200), record["id"]
        paths = sorted(diff_paths(strip_noise(await old.json()), strip_noise(await new.json())))
        if paths:
            found[record["id"]] = paths
    assert found == BUG_PATHS
