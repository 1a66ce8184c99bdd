"""The endpoints of the demo scoring API, shared by both flavours, and the JSON they accept.

Request bodies are checked by hand rather than with a schema library: the demo must stay a
dependency-free part of the package, and each check names the field it rejects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import orjson
from aiohttp import web

from shadow.demo import seed
from shadow.demo.store import DemoState, django_time, score_json

T = TypeVar("T")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DID = re.compile(r"did:pkh:eip155:1:(0x[0-9a-fA-F]{40})")


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one flavour writes what both flavours hold."""

    first_row_id: int
    ban_end_time: Callable[[datetime], str]
    block_number: Callable[[int], int | str]


STATE = web.AppKey("state", DemoState)
DIALECT = web.AppKey("dialect", Dialect)


class ApiError(Exception):
    """An answer other than 200, sent as `{"detail": ...}` by the app's middleware."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


# -- internal API ------------------------------------------------------------------------------


async def get_weights(request: web.Request) -> web.Response:
    return json_response(seed.WEIGHTS)


async def get_score_v2(request: web.Request) -> web.Response:
    return json_response(score_json(request.app[STATE], path_address(request)))


async def check_bans(request: web.Request) -> web.Response:
    credentials = _expect(await read_json(request), list, "body")
    state, dialect = request.app[STATE], request.app[DIALECT]
    return json_response([_ban_json(state, dialect, item) for item in credentials])


def _ban_json(state: DemoState, dialect: Dialect, credential: Any) -> dict[str, Any]:
    subject = _field(credential, "credentialSubject", dict, "credential")
    credential_hash = _field(subject, "hash", str, "credentialSubject")
    provider = _field(subject, "provider", str, "credentialSubject")
    address = did_address(_field(subject, "id", str, "credentialSubject"))
    if address is None:
        _reject("credentialSubject.id: expected did:pkh:eip155:1:<address>")
    ban = state.ban_for(address, provider)
    if ban is None:
        return {
            "hash": credential_hash,
            "is_banned": False,
            "ban_type": None,
            "end_time": None,
            "reason": None,
        }
    return {
        "hash": credential_hash,
        "is_banned": True,
        "ban_type": ban.ban_type,
        "end_time": None if ban.end_time is None else dialect.ban_end_time(ban.end_time),
        "reason": ban.reason,
    }


async def check_revocations(request: web.Request) -> web.Response:
    proofs = _field(await read_json(request), "proof_values", list, "body")
    answers = [
        {"proof_value": proof, "is_revoked": proof in seed.REVOKED_PROOFS}
        for proof in (_expect(item, str, "proof_values[]") for item in proofs)
    ]
    return json_response(answers)


async def get_gtc_stake(request: web.Request) -> web.Response:
    block_number = request.app[DIALECT].block_number
    items = [
        {
            "id": row_id,
            "chain": 1,
            "lock_time": django_time(stake.lock_time),
            "unlock_time": django_time(stake.unlock_time),
            "last_updated_in_block": block_number(stake.block),
            "staker": stake.staker,
            "stakee": stake.stakee,
            "amount": stake.amount,
        }
        for row_id, stake in request.app[STATE].stakes_of(path_address(request))
    ]
    return json_response({"items": items})


async def get_allow_list(request: web.Request) -> web.Response:
    members = seed.ALLOW_LISTS.get(request.match_info["list"], frozenset())
    return json_response({"is_member": path_address(request) in members})


async def get_contributor_statistics(request: web.Request) -> web.Response:
    address = _checked_address(request.query.get("address", ""))
    grants, amount = seed.CONTRIBUTIONS.get(address, (0, "0.00"))
    return json_response({"num_grants_contribute_to": grants, "total_contribution_amount": amount})


async def add_embed_stamps(request: web.Request) -> web.Response:
    address = path_address(request)
    body = await read_json(request)
    _field(body, "scorer_id", int, "body")
    state = request.app[STATE]
    for credential in _field(body, "stamps", list, "body"):
        subject = _field(credential, "credentialSubject", dict, "stamp")
        provider = _field(subject, "provider", str, "credentialSubject")
        state.put_stamp(address, provider, credential, credential_expiry(credential))
    return json_response({"success": True, "score": score_json(state, address)})


async def get_embed_score(request: web.Request) -> web.Response:
    score = score_json(request.app[STATE], path_address(request))
    return json_response({"success": True, "score": score})


# -- ceramic cache (the caller's address comes from its access token) --------------------------


async def post_stamps(request: web.Request, address: str) -> web.Response:
    state = request.app[STATE]
    for item in _expect(await read_json(request), list, "body"):
        provider = _field(item, "provider", str, "item")
        credential = _field(item, "stamp", dict, "item")
        state.put_stamp(address, provider, credential, credential_expiry(credential))
    return _bulk_json(state, address)


async def patch_stamps(request: web.Request, address: str) -> web.Response:
    """Replace the providers given; an item without a `stamp` removes its provider."""
    state = request.app[STATE]
    for item in _expect(await read_json(request), list, "body"):
        provider = _field(item, "provider", str, "item")
        credential = item.get("stamp")
        if credential is None:
            state.drop_stamp(address, provider)
            continue
        credential = _expect(credential, dict, "item.stamp")
        state.put_stamp(address, provider, credential, credential_expiry(credential))
    return _bulk_json(state, address)


async def delete_stamps(request: web.Request, address: str) -> web.Response:
    state = request.app[STATE]
    for item in _expect(await read_json(request), list, "body"):
        state.drop_stamp(address, _field(item, "provider", str, "item"))
    return _bulk_json(state, address)


async def get_ceramic_score(request: web.Request, address: str) -> web.Response:
    if path_address(request) != address:
        raise ApiError(403, "The address does not match the token's DID.")
    return json_response(score_json(request.app[STATE], address))


def _bulk_json(state: DemoState, address: str) -> web.Response:
    stamps = [row.to_json() for row in state.stamps_of(address)]
    return json_response({"success": True, "stamps": stamps, "score": score_json(state, address)})


# -- reading requests --------------------------------------------------------------------------


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _reject(f"JSON parse error - {exc}")


def path_address(request: web.Request) -> str:
    return _checked_address(request.match_info["address"])


def _checked_address(text: str) -> str:
    if not _ADDRESS.fullmatch(text):
        _reject("Invalid address.")
    return text.lower()


def did_address(did: str) -> str | None:
    """The lowercase address of a `did:pkh:eip155:1:0x...` DID, or None for another DID."""
    match = _DID.fullmatch(did)
    return None if match is None else match.group(1).lower()


def credential_expiry(credential: dict[str, Any]) -> datetime:
    text = _field(credential, "expirationDate", str, "stamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        _reject("stamp.expirationDate: expected an ISO 8601 time with a zone")
    return moment


def _field(container: Any, key: str, kind: type[T], where: str) -> T:
    """`container[key]`, which must be a `kind`; a 400 naming `where.key` otherwise."""
    if not isinstance(container, dict):
        _reject(f"{where}: expected an object")
    return _expect(container.get(key), kind, f"{where}.{key}")


def _expect(value: Any, kind: type[T], where: str) -> T:
    # bool is an int to isinstance, but `true` is no scorer id.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        _reject(f"{where}: expected {_JSON_NAMES.get(kind, kind.__name__)}")
    return value


_JSON_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
}


def _reject(detail: str) -> NoReturn:
    raise ApiError(400, detail)
