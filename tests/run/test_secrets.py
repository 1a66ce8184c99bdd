"""What a run's scrubber knows from the config: every secret value, and nothing ordinary."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadow.config.load import load
from shadow.run.secrets import run_scrubber

PEM_LINE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"


def test_the_config_s_secrets_are_known_and_ordinary_values_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_KEY", "from-the-environment")
    (tmp_path / "auth.env").write_text("JWT_SECRET=hmac-secret-value\n")
    (tmp_path / "key.pem").write_text(
        f"-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\n"
    )
    config = tmp_path / "c.toml"
    config.write_text(
        'env_file = "auth.env"\n'
        '[targets.primary]\nurl = "http://alice:url-password@127.0.0.1:8001"\n'
        'headers = { Authorization = "Bearer static-token", X-Trace = "not-a-secret-1" }\n'
        "[targets.candidate]\nurl = \"http://127.0.0.1:8002\"\ncommand = ['x']\n"
        'env = { API_TOKEN = "candidate-token", HOST = "127.0.0.1", MODE = "development" }\n'
        '[auth.svc]\ntype = "header"\nheader = "X-Service-Key"\nvalue_env = "SERVICE_KEY"\n'
        '[auth.tok]\ntype = "jwt"\nalgorithm = "HS256"\nsecret_env = "JWT_SECRET"\n'
        '[auth.rsa]\ntype = "jwt"\nalgorithm = "RS256"\nkey_file = "key.pem"\n'
    )
    values = run_scrubber(load(str(config))).values
    for secret in (
        "url-password",
        "Bearer static-token",
        "static-token",
        "candidate-token",
        "from-the-environment",
        "hmac-secret-value",
        PEM_LINE,
    ):
        assert secret in values, secret
    for ordinary in ("not-a-secret-1", "127.0.0.1", "development"):
        assert ordinary not in values, ordinary
