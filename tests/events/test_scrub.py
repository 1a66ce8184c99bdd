"""The scrubber on plain values: which env values are secrets, and how lines are masked."""

from __future__ import annotations

import base64

import orjson

from shadow.events.scrub import Scrubber, credential_values, env_secrets, url_passwords

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"


def test_which_env_values_are_secrets() -> None:
    env = {
        "SECRET_KEY": "abc",
        "DB_PASSWORD": "pw-long",
        "HOST": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "STRIPE": "sk_live_51HabcDEF123456",
        "DATABASE_URL": "postgres://app:dbpass99@db/app",
        "DEBUG": "0",
    }
    found = env_secrets(env)
    assert "abc" in found and "pw-long" in found and "sk_live_51HabcDEF123456" in found
    assert "postgres://app:dbpass99@db/app" in found and "dbpass99" in found
    assert "127.0.0.1" not in found and "config.settings.dev" not in found and "0" not in found


def test_url_passwords_include_the_basic_credentials_a_client_sends() -> None:
    basic = base64.b64encode(b"al ice:p@ss").decode()
    assert url_passwords("http://al%20ice:p%40ss@host/") == ["p%40ss", "p@ss", basic]
    assert url_passwords("http://user@host/") == [] and url_passwords("no url") == []


def test_credential_values_split_schemes_and_cookies() -> None:
    assert credential_values("Bearer tok123") == ["Bearer tok123", "tok123", ""]
    assert "v2-long" in credential_values("a=v1; b=v2-long")


def test_text_masks_values_longest_first_jwts_and_userinfo_and_leaves_short_ones() -> None:
    scrubber = Scrubber(["secret-value", "secret-value-longer", "short"])
    text = f"secret-value-longer secret-value http://u:p@h/x {JWT} short"
    assert scrubber.text(text) == ("[REDACTED] [REDACTED] http://[REDACTED]@h/x [REDACTED] short")


def test_a_line_is_masked_where_json_escapes_the_secret_and_stays_json() -> None:
    secret = 'quote"and\\slash'
    scrubber = Scrubber([secret])
    line = orjson.dumps({"event": "x", "a": [f"before {secret} after"], secret: 1}) + b"\n"
    masked = scrubber.line(line)
    assert orjson.loads(masked) == {"event": "x", "a": ["before [REDACTED] after"], "[REDACTED]": 1}
    clean = b'{"event":"x","a":"nothing here"}\n'
    assert scrubber.line(clean) is clean  # no match: the very same bytes


def test_extra_secrets_count_for_one_line_only() -> None:
    scrubber = Scrubber()
    line = b'{"event":"mismatch","body":"echo recorded-token"}\n'
    assert b"[REDACTED]" in scrubber.line(line, ["recorded-token"])
    assert scrubber.line(line) == line


def test_lines_masks_each_line_of_a_chunk() -> None:
    scrubber = Scrubber(["topsecret"])
    chunk = b'{"event":"a","v":"topsecret"}\n{"event":"b","v":"ok"}\n'
    assert scrubber.lines(chunk) == b'{"event":"a","v":"[REDACTED]"}\n{"event":"b","v":"ok"}\n'


def test_deep_values_are_masked_without_recursion() -> None:
    value: object = "topsecret"
    for _ in range(5000):
        value = [value]
    masked = Scrubber(["topsecret"]).value(value)
    for _ in range(5000):
        assert isinstance(masked, list)
        masked = masked[0]
    assert masked == "[REDACTED]"
