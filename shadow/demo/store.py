"""The in-memory state of one demo server process, and the score it derives from the stamps held.

Row ids come from a per-process counter with a flavour-chosen start, the way two databases
filled by two deployments hand out different primary keys for the same rows. Scores are a pure
function of the stamps an address holds, so both flavours agree on them; only the time a score
is stamped with differs, and it differs between any two answers, as a clock does (microseconds,
strictly increasing within a process), which is what noise calibration has to discover.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shadow.demo import seed

_SCORE_PLACES = Decimal("0.00001")


@dataclass(frozen=True, slots=True)
class StampRow:
    id: int
    address: str
    provider: str
    credential: dict[str, Any]
    expires: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "address": self.address,
            "provider": self.provider,
            "stamp": self.credential,
        }


class DemoState:
    """Stamps per address (one row per provider), stakes, and the read-only seed tables."""

    def __init__(self, first_row_id: int) -> None:
        self._row_ids = itertools.count(first_row_id)
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._stamps: dict[str, dict[str, StampRow]] = {}
        self.stakes: tuple[tuple[int, seed.Stake], ...] = tuple(
            (next(self._row_ids), stake) for stake in seed.STAKES
        )
        for row in seed.STAMPS:
            credential = seed.make_credential(
                row.address, row.provider, row.credential_hash, row.issued, row.expires
            )
            self.put_stamp(row.address, row.provider, credential, row.expires)

    def put_stamp(
        self, address: str, provider: str, credential: dict[str, Any], expires: datetime
    ) -> StampRow:
        """Store a stamp, replacing (with a new row id) any stamp of the same provider."""
        held = self._stamps.setdefault(address, {})
        held.pop(provider, None)
        row = StampRow(next(self._row_ids), address, provider, credential, expires)
        held[provider] = row
        return row

    def stamp_time(self) -> datetime:
        """Now, or a microsecond after the previous stamp: no two answers share a time."""
        now = datetime.now(UTC)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now

    def drop_stamp(self, address: str, provider: str) -> None:
        self._stamps.get(address, {}).pop(provider, None)

    def stamps_of(self, address: str) -> list[StampRow]:
        return sorted(self._stamps.get(address, {}).values(), key=lambda row: row.id)

    def stakes_of(self, address: str) -> list[tuple[int, seed.Stake]]:
        return [
            (row_id, stake)
            for row_id, stake in self.stakes
            if address in (stake.staker, stake.stakee)
        ]

    def ban_for(self, address: str, provider: str) -> seed.Ban | None:
        """The active ban hitting this stamp: an account ban first, then a single-stamp one."""
        for wanted in (None, provider):
            for ban in seed.BANS:
                if ban.address == address and ban.provider == wanted and ban.is_active():
                    return ban
        return None


def score_json(state: DemoState, address: str) -> dict[str, Any]:
    """The Passport v2 score object for `address`, stamped with the current time."""
    rows = state.stamps_of(address)
    total = sum((Decimal(seed.WEIGHTS.get(row.provider, "0")) for row in rows), Decimal(0))
    return {
        "address": address,
        "score": _decimal_text(total),
        "passing_score": total >= seed.THRESHOLD,
        "last_score_timestamp": serializer_time(state.stamp_time()),
        "expiration_timestamp": django_time(min(row.expires for row in rows)) if rows else None,
        "threshold": _decimal_text(seed.THRESHOLD),
        "error": None,
        "stamps": {
            row.provider: {
                "score": seed.WEIGHTS.get(row.provider, "0"),
                "dedup": False,
                "expiration_date": django_time(row.expires),
            }
            for row in rows
        },
    }


def _decimal_text(value: Decimal) -> str:
    return str(value.quantize(_SCORE_PLACES))


def django_time(moment: datetime) -> str:
    """Django's `DjangoJSONEncoder`: ISO 8601, microseconds cut to milliseconds, `Z` for UTC."""
    text = moment.astimezone(UTC).isoformat()
    if moment.microsecond:
        text = text[:23] + text[26:]
    return text.removesuffix("+00:00") + "Z"


def serializer_time(moment: datetime) -> str:
    """Django REST framework's DateTimeField: ISO 8601 with all six fraction digits, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chrono_time(moment: datetime) -> str:
    """chrono's `to_rfc3339_opts(AutoSi, true)`: as many fraction digits as the value needs."""
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"
