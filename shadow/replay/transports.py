"""Which transport a run uses: `[replay] transport` or `--transport`, `auto` by default.

`auto` takes the fast one (shadow.replay.transport_fast) when every target is plain `http://`
with no user in its URL, and the reference (aiohttp) otherwise: TLS, and anything else the
fast path does not handle, stay with the library that does. The choice and its reason are in
`run_started` (`transport`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from shadow.config.replay import ReplayConfig
from shadow.config.targets import TargetConfig
from shadow.replay.transport import AiohttpTransport, Transport

AUTO, AIOHTTP, HTTPTOOLS = "auto", "aiohttp", "httptools"
TRANSPORTS = (AUTO, AIOHTTP, HTTPTOOLS)


@dataclass(frozen=True, slots=True)
class Choice:
    name: str  # aiohttp | httptools
    requested: str  # auto | aiohttp | httptools
    reason: str

    def fields(self) -> dict[str, str]:
        return {"name": self.name, "requested": self.requested, "reason": self.reason}


def choose_transport(requested: str, targets: Mapping[str, TargetConfig]) -> Choice:
    """The transport for these targets; `requested` is one of TRANSPORTS (checked before)."""
    unfit = _unfit(targets)
    if requested == AIOHTTP:
        return Choice(AIOHTTP, requested, "asked for")
    if requested == HTTPTOOLS:
        if unfit:
            return Choice(AIOHTTP, requested, f"{unfit}: only aiohttp handles it")
        return Choice(HTTPTOOLS, requested, "asked for")
    if unfit:
        return Choice(AIOHTTP, requested, f"{unfit}: only aiohttp handles it")
    return Choice(HTTPTOOLS, requested, "every target is plain http://")


def _unfit(targets: Mapping[str, TargetConfig]) -> str:
    """Why the fast transport cannot serve these targets ("" when it can)."""
    for name, target in targets.items():
        url = URL(target.url)
        if url.scheme != "http":
            return f"target {name} is {url.scheme}://"
        if url.user is not None or url.password is not None:
            return f"target {name} has credentials in its URL"
    return ""


def open_transport(
    choice: Choice, session: aiohttp.ClientSession, settings: ReplayConfig
) -> Transport:
    if choice.name == HTTPTOOLS:
        from shadow.replay.transport_fast import FastTransport

        return FastTransport(settings, fallback=AiohttpTransport(session, settings))
    return AiohttpTransport(session, settings)
