"""The secret values a run's config holds, gathered once into the run's scrubber."""

from __future__ import annotations

import contextlib
from pathlib import Path

from shadow.config.load import Config
from shadow.events.scrub import (
    SECRET_NAME,
    Scrubber,
    credential_values,
    env_secrets,
    secret_forms,
    url_passwords,
)
from shadow.model import CREDENTIAL_HEADERS


def run_scrubber(config: Config) -> Scrubber:
    """A scrubber that knows every secret of `config` (shadow.events.scrub says which)."""
    values: list[str] = []
    named = CREDENTIAL_HEADERS | {h.lower() for h in config.redact.headers}
    named |= {p.header.lower() for p in config.auth.values()}
    for target in config.targets.values():
        values += env_secrets(dict(target.env)) + url_passwords(target.url)
        reset = target.reset
        if reset is not None:
            values += env_secrets(dict(reset.env))
        for name, value in (*target.headers, *(reset.headers if reset is not None else ())):
            if name.lower() in named or SECRET_NAME.search(name):
                values += credential_values(value)
    for profile in config.auth.values():
        var = profile.value_env if profile.type == "header" else profile.secret_env
        secret = config.lookup_secret(var) if var else None
        if profile.key_file:  # read again by the run's auth, which reports what fails
            with contextlib.suppress(OSError, UnicodeDecodeError):
                secret = Path(profile.key_file).read_text(encoding="utf-8").strip()
        if secret:
            values += secret_forms(secret)
    for secret in config.secrets.values():  # the config's env_file holds auth secrets
        values += secret_forms(secret)
    return Scrubber(values)
