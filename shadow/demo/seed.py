"""What a fresh database of the demo scoring servers holds: weights, stamps, bans, stakes, lists.

Both flavours load exactly these rows, so any difference in their answers comes from how they
serve them. The module is named `seed` rather than `data` because the wheel ships the bundled
demo files in a `shadow/demo/data/` folder, which a `data` module would shadow on import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# The roles the addresses play in the bundled log (replay_logs/passport-demo.jsonl).
HOLDER = "0xf129e2be583ff1e53e30400af5ad6336b17a6356"  # passing score, stakes, banned Google stamp
STAKEE = "0x68f63f51388eaf4838dc35025cfa50f2db0f134a"  # receives HOLDER's community stake
SYBIL = "0x16b39041fe435a3be196a4e5075d8c6fea293b1a"  # account ban
EMBED_USER = "0x1134f66c3218811ee9ed75738747baa083b1ae6b"  # gains stamps through the embed API
CERAMIC_USER = "0xe75f4a7e266539b4c88615c5edfe506f5bf7b19d"  # writes through the ceramic cache
BUILDER = "0x918b339bd53ab4dcede2351d282a2d4f5a271e95"  # another allow-list member
DONOR = "0x9ffdf7fcecbfe46e350c247bcc102c0855a06452"  # another cgrants contributor

ISSUER = "did:ethr:0xd6f8d6ca86aa01e551a311d670a0d1bd8577e5fb"

WEIGHTS: dict[str, str] = {
    "Google": "0.525",
    "Ens": "2.2",
    "Linkedin": "1.531",
    "Discord": "0.516",
    "SelfStakingBronze": "1.25",
    "BeaconChain": "3.8",
    "HolonymGovIdProvider": "16.021",
    "CivicUniquenessPass": "9.2",
}

THRESHOLD = Decimal(20)

# Bans are judged against this instant instead of the wall clock, so the seeded ban stays
# active and the demo answers the same on any day it is run.
BANS_AS_OF = datetime(2025, 5, 20, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Ban:
    """A ban on a whole account (`provider` None) or on one stamp provider of an account."""

    address: str
    provider: str | None
    end_time: datetime | None
    reason: str

    @property
    def ban_type(self) -> str:
        return "account" if self.provider is None else "single_stamp"

    def is_active(self) -> bool:
        return self.end_time is None or self.end_time > BANS_AS_OF


@dataclass(frozen=True, slots=True)
class Stake:
    """One GTC stake row: `staker` locked `amount` on `stakee` (itself for a self stake)."""

    staker: str
    stakee: str
    amount: str
    lock_time: datetime
    unlock_time: datetime
    block: int


@dataclass(frozen=True, slots=True)
class SeedStamp:
    address: str
    provider: str
    credential_hash: str
    issued: datetime
    expires: datetime


# The microseconds matter: they are what the rewrite's first bug serialises differently.
BANS: tuple[Ban, ...] = (
    Ban(HOLDER, "Google", datetime(2025, 6, 1, 10, 2, 39, 584855, tzinfo=UTC), "Reused account"),
    Ban(SYBIL, None, None, "Sybil cluster"),
)

STAKES: tuple[Stake, ...] = (
    Stake(
        HOLDER,
        HOLDER,
        "100.000000000000000000",
        datetime(2025, 1, 15, 12, 0, tzinfo=UTC),
        datetime(2025, 7, 15, 12, 0, tzinfo=UTC),
        12345678,
    ),
    Stake(
        HOLDER,
        STAKEE,
        "25.500000000000000000",
        datetime(2025, 2, 3, 8, 30, tzinfo=UTC),
        datetime(2025, 5, 3, 8, 30, tzinfo=UTC),
        12401234,
    ),
)

_ISSUED = datetime(2025, 3, 10, 9, 15, 42, 120000, tzinfo=UTC)
_EXPIRES = datetime(2027, 6, 8, 9, 15, 42, 120000, tzinfo=UTC)

STAMPS: tuple[SeedStamp, ...] = (
    SeedStamp(
        HOLDER, "Google", "v0.0.0:On5o2fYez34UCNAK9bBw8RH6QgviRQVdGRF6lbHBuGw=", _ISSUED, _EXPIRES
    ),
    SeedStamp(
        HOLDER,
        "Ens",
        "v0.0.0:msKcI9V32tKzIKyoIUdx69NhOoJgUIY23aFCvASh+rI=",
        _ISSUED,
        datetime(2027, 5, 30, 18, 4, 11, tzinfo=UTC),
    ),
    SeedStamp(
        HOLDER, "Linkedin", "v0.0.0:N4Ndr+HNRhrqake/uIgJuwZwT1oeDMeGj7jwgEu5aZU=", _ISSUED, _EXPIRES
    ),
    SeedStamp(
        HOLDER, "Discord", "v0.0.0:wHBbQsoys+94aubxDc8kt85Ydx+MqA/DdMs+qez6CuA=", _ISSUED, _EXPIRES
    ),
    SeedStamp(
        HOLDER,
        "HolonymGovIdProvider",
        "v0.0.0:r5tiGl5m1mITVoisvNzAxai2l2+Klfis8+ZR/PExfEM=",
        _ISSUED,
        datetime(2027, 9, 1, 0, 0, tzinfo=UTC),
    ),
    SeedStamp(
        EMBED_USER,
        "Discord",
        "v0.0.0:xwzvqF5uRRabp7P97xnDB7VlzqZflkmU6LegBjba0bU=",
        _ISSUED,
        _EXPIRES,
    ),
)

REVOKED_PROOFS = frozenset(
    {
        (
            "0xbf9a8512d9e33c343704991fbc19fdacaf56273ee9e73aa8bac7c306db4db601"
            "a283e31458b62a41f6395b6da08d4ccbf1279b7331282475d04fef74db4e797d92"
        ),
    }
)

ALLOW_LISTS: dict[str, frozenset[str]] = {
    "testlist": frozenset({HOLDER, BUILDER}),
    "gitcoin-builders": frozenset({BUILDER}),
}

# address -> (number of grants contributed to, total amount in USD)
CONTRIBUTIONS: dict[str, tuple[int, str]] = {
    HOLDER: (7, "123.45"),
    DONOR: (42, "5081.90"),
}


def make_credential(
    address: str, provider: str, credential_hash: str, issued: datetime, expires: datetime
) -> dict[str, Any]:
    """A verifiable credential as the Passport app writes it (trimmed to the fields read)."""
    return {
        "type": ["VerifiableCredential"],
        "issuer": ISSUER,
        "issuanceDate": _js_time(issued),
        "expirationDate": _js_time(expires),
        "credentialSubject": {
            "id": f"did:pkh:eip155:1:{address}",
            "hash": credential_hash,
            "provider": provider,
        },
        "proof": {
            "type": "EthereumEip712Signature2021",
            "proofPurpose": "assertionMethod",
            "verificationMethod": f"{ISSUER}#controller",
            "created": _js_time(issued),
        },
    }


def _js_time(moment: datetime) -> str:
    """JavaScript's `Date.toISOString()`: always milliseconds, always Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
