"""`shadow check` and the config errors that name the fix, through the command line."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from shadow.config.load import load
from shadow.config.resolved import resolved
from tests.support import CONFIGS, run_shadow

pytestmark = pytest.mark.e2e

TARGETS = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
"""


def demo_copy(tmp_path: Path) -> Path:
    for name in ("demo.toml", "demo.env"):
        shutil.copy(CONFIGS / name, tmp_path / name)
    return tmp_path / "demo.toml"


def test_print_writes_the_resolved_config_as_toml_that_loads_again(tmp_path: Path) -> None:
    config = demo_copy(tmp_path)
    result = run_shadow("check", "-c", str(config), "--print")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    for secret in ("demo-secret-key-not-for-production", "demo-internal-key"):
        assert secret not in text
    data = tomllib.loads(text)
    # the keys a user writes, not the fields they become
    assert data["compare"]["status"] is True and "compare_status" not in text
    assert data["replay"]["lane"]["from"] == "record"
    assert data["targets"]["primary"]["env"]["SECRET_KEY"] == "***"
    assert data["targets"]["primary"]["health"]["interval_s"] == 0.2  # a default, filled in
    # Loaded again (beside the env file its auth profiles read), it is the same config.
    again = tmp_path / "resolved.toml"
    assert data["env_file"] == "demo.env"  # named, so the file loads again beside it
    again.write_text(text)
    original, reloaded = resolved(load(config)), resolved(load(again))
    assert reloaded == original


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        (  # the secret a profile names is in no env var and no env_file
            '[auth.user]\ntype = "jwt"\nsecret_env = "SHADOW_TEST_UNSET_SECRET"\n',
            "auth.user.secret_env",
            "environment variable SHADOW_TEST_UNSET_SECRET is not set",
        ),
        (
            '[auth.user]\ntype = "jwt"\nalgorithm = "RS256"\nkey_file = "missing.pem"\n',
            "auth.user.key_file",
            "missing.pem: No such file or directory",
        ),
    ],
)
def test_check_loads_secrets_and_key_files_as_a_run_does(
    tmp_path: Path, extra: str, key: str, problem: str
) -> None:
    config = tmp_path / "shadow.toml"
    config.write_text(TARGETS + extra)
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2
    assert f"{config}: {key}: " in result.stderr and problem in result.stderr, result.stderr
    assert result.stdout == b""


def test_every_unknown_key_at_once_with_a_did_you_mean(tmp_path: Path) -> None:
    config = tmp_path / "typos.toml"
    config.write_text(
        TARGETS.replace(
            'url = "http://127.0.0.1:3000"', 'url = "http://127.0.0.1:3000"\nheders = {}'
        )
        + "[replay]\nconcurency = 4\n[thresholds]\nmismatch_rat = 0.1\nfrobnicate = 1\n"
    )
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"shadow: error: {config}: 4 unknown keys:"
    assert lines[1:] == [
        '  targets.candidate.heders: unknown key (did you mean "headers"?)',
        '  replay.concurency: unknown key (did you mean "concurrency"?)',
        "  thresholds.frobnicate: unknown key",
        '  thresholds.mismatch_rat: unknown key (did you mean "mismatch_rate"?)',
    ]


@pytest.mark.parametrize(
    ("bad", "also"),
    [
        ("[replay]\nconcurency = 4\ntimeout_s = nan\n", "replay.timeout_s: must be a finite"),
        ('[targets.primary.health]\npath = "h"\n[noise]\nsampel = 1\n', "health.path: must"),
    ],
)
def test_a_bad_value_does_not_hide_the_unknown_keys(tmp_path: Path, bad: str, also: str) -> None:
    """The parser stops at the bad value; the typo it did not reach is named all the same."""
    config = tmp_path / "both.toml"
    config.write_text(TARGETS + bad)
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"shadow: error: {config}: 2 problems:", result.stderr
    assert any(": unknown key (did you mean" in line for line in lines[1:]), result.stderr
    assert any(also in line for line in lines[1:]), result.stderr


def test_a_health_path_needs_its_leading_slash(tmp_path: Path) -> None:
    config = tmp_path / "health.toml"
    config.write_text(TARGETS + '[targets.primary.health]\npath = "healthz"\n')
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2
    assert "targets.primary.health.path: must start with / (such as /health)" in result.stderr


def test_synth_does_not_need_the_targets_env_files(tmp_path: Path) -> None:
    config = tmp_path / "synth.toml"
    config.write_text(
        'env_file = "gone.env"\n'
        + TARGETS.replace("[targets.candidate]", 'env_file = "also-gone.env"\n[targets.candidate]')
        + '[[synth.template]]\nmethod = "GET"\npath = "/items/1"\n'
    )
    result = run_shadow("synth", "-c", str(config), "--count", "2")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    # a run does need them, and says which
    checked = run_shadow("check", "-c", str(config))
    assert checked.returncode == 2 and "gone.env" in checked.stderr


def test_print_masks_the_headers_events_would_hide(tmp_path: Path) -> None:
    config = tmp_path / "headers.toml"
    config.write_text(
        TARGETS
        + '[targets.candidate.headers]\nAuthorization = "Bearer sekrit-1"\n'
        + '"X-Deploy-Token" = "sekrit-2"\n"X-Use-Rust" = "true"\n'
        + '[redact]\nheaders = ["X-Deploy-Token"]\n'
    )
    result = run_shadow("check", "-c", str(config), "--print")
    assert result.returncode == 0, result.stderr
    assert b"sekrit" not in result.stdout
    headers = tomllib.loads(result.stdout.decode())["targets"]["candidate"]["headers"]
    assert headers == {"Authorization": "***", "X-Deploy-Token": "***", "X-Use-Rust": "true"}


def test_print_round_trips_every_kind_of_key_to_the_same_config(tmp_path: Path) -> None:
    """Each table's keys, the newer ones included, are written back: the config loaded from
    `--print` equals the original, field by field (not only as printed again)."""
    config = tmp_path / "wide.toml"
    config.write_text(
        TARGETS
        + "[replay]\nmax_differences = 7\nmax_event_bytes = 65536\n"
        + "max_bodies_bytes = 134217728\nconcurrency = 3\ntimeout_s = 2.5\n"
        + "[compare]\nignore_whitespace = false\nheaders = []\n"
        + "[noise]\nfull_pairs = 5\nsample = 0.5\n"
        + "[thresholds]\nboth_failed_rate = 0.25\n"
        + '[thresholds.endpoint."Get"]\nboth_failed_rate = 0.75\n'
        + '[[compare.endpoint]]\nname = "Get"\nmethod = "POST"\npath = "/"\nsafe = true\n'
        + 'match_header = { "X-Amz-Target" = "Svc.Get" }\nmatch_body = { "/v" = 2 }\n'
        + 'match_name = "get"\nexpect_status = 404\nheaders = ["etag"]\n'
    )
    result = run_shadow("check", "-c", str(config), "--print")
    assert result.returncode == 0, result.stderr
    again = tmp_path / "again.toml"
    again.write_text(result.stdout.decode())
    original, reloaded = load(config), load(again)
    assert replace(reloaded, source=original.source, synth_table=None) == replace(
        original, synth_table=None
    )
