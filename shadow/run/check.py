"""`shadow check`: build from a config what a run builds before it sends anything.

The auth profiles' secrets and key files, the routes, the redaction and the noise calibrator
are made by the same code a run uses (the per-record pipeline), so a config that passes here
does not fail at the start of a run for a missing env var or an unreadable key.
"""

from __future__ import annotations

import io

from shadow.config.load import Config
from shadow.config.redact import mask_userinfo
from shadow.events.sink import Sink
from shadow.run.pipeline import Pipeline
from shadow.run.tally import Tally
from shadow.stdio import Console


def check_config(config: Config) -> str:
    """Raise the error a run would raise at its start; else one line saying what was checked."""
    Pipeline(config, Sink("check", io.BytesIO()), Tally([]), Console(-1), emit="mismatches")
    targets = ", ".join(
        f"{name} {'managed' if t.managed else 'attached'} at {mask_userinfo(t.url)}"
        for name, t in config.targets.items()
    )
    parts = [targets, f"{len(config.endpoints)} endpoint rule(s)"]
    if config.auth:
        parts.append(f"{len(config.auth)} auth profile(s), secrets and keys loaded")
    if config.synth is not None:
        parts.append(f"[synth] with {len(config.synth.templates)} template(s)")
    return "; ".join(parts)
