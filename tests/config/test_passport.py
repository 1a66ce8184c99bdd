"""config/passport.toml: the real comparison's config, and the same file run against the demo."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shadow.config.load import load
from tests.support import ROOT, Shadow, assert_accounted, run_shadow

PASSPORT = ROOT / "config" / "passport.toml"
LOG = ROOT / "replay_logs" / "passport-13.jsonl"
DEMO_ENV = ROOT / "config" / "demo.env"
DEMO_SECRETS = ("demo-internal-key", "demo-secret-key-not-for-production")
ENDPOINTS = {
    "Embed Weights",
    "Internal Score v2",
    "Check Bans",
    "Check Revocations",
    "GTC Stake",
    "Allow List",
    "Cgrants Contributor Statistics",
    "Embed Add Stamps",
    "Embed Score",
    "Ceramic Cache Add Stamps",
    "Ceramic Cache Patch Stamps",
    "Ceramic Cache Score",
    "Ceramic Cache Delete Stamps",
}
# The two bugs the rewrite ships with, as (endpoint, diff path, kind).
BUGS = {
    ("Check Bans", "/0/end_time", "value"),
    ("GTC Stake", "/items/0/last_updated_in_block", "type"),
    ("GTC Stake", "/items/1/last_updated_in_block", "type"),
}


def test_the_real_config_starts_the_real_services(tmp_path: Path) -> None:
    # As a user runs it: copied to the root of a passport-scorer checkout.
    (tmp_path / ".env.development").write_text(
        'SECRET_KEY="dev-secret"\nCGRANTS_API_TOKEN=dev-internal\nDATABASE_URL=postgres://x\n'
    )
    config = load(_copy(tmp_path, PASSPORT.read_text()))
    primary, candidate = config.targets["primary"], config.targets["candidate"]
    assert primary.command == (
        "poetry", "run", "python", "manage.py", "runserver", "0.0.0.0:8002", "--noreload",
    )  # fmt: skip
    assert primary.cwd == str(tmp_path / "api") and primary.port == 8002
    assert (primary.health.path, primary.health.timeout_s) == ("/internal/embed/weights", 60)
    assert candidate.command == ("cargo", "run", "--release")
    assert candidate.cwd == str(tmp_path / "rust-scorer") and candidate.port == 3000
    assert (candidate.health.path, candidate.health.timeout_s) == ("/health", 120)
    assert {"CARGO_*", "RUSTFLAGS"} <= set(candidate.env_remove)
    assert not primary.env_remove
    # The switch to the Rust scorer goes to the candidate only.
    assert candidate.headers == (("X-Use-Rust-Scorer", "true"),) and primary.headers == ()
    for target in (primary, candidate):
        assert target.env["SECRET_KEY"] == "dev-secret" and target.env["DATABASE_URL"]
    assert config.secrets["CGRANTS_API_TOKEN"] == "dev-internal"
    internal, ceramic = config.auth["internal"], config.auth["ceramic"]
    assert (internal.type, internal.header, internal.value_env, internal.scheme) == (
        "header", "AUTHORIZATION", "CGRANTS_API_TOKEN", "",
    )  # fmt: skip
    assert (ceramic.type, ceramic.algorithm, ceramic.secret_env, ceramic.scheme) == (
        "jwt", "HS256", "SECRET_KEY", "Bearer",
    )  # fmt: skip
    assert dict(ceramic.claims) == {"did": "did:pkh:eip155:1:{address}", "token_type": "access"}
    assert {e.name for e in config.endpoints} == ENDPOINTS
    assert {e.auth for e in config.endpoints if e.route.startswith("/ceramic")} == {"ceramic"}
    assert {e.auth for e in config.endpoints if e.route.startswith("/internal")} == {"internal"}
    assert config.synth is not None and config.replay.recorded_auth == "replace"


@pytest.mark.e2e
def test_the_log_against_the_demo_finds_exactly_the_two_bugs(tmp_path: Path) -> None:
    result = _run_on_demo(tmp_path, str(LOG))
    exchanges = _exchanges(result)
    assert sorted(e["endpoint"] for e in exchanges) == sorted(ENDPOINTS)  # each one once
    _assert_authorised(exchanges)
    assert _bug_signatures(result) == BUGS
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["mismatched"]) == (13, 11, 2)
    assert summary["errors"] == 0 and result.returncode == 1
    _assert_no_secrets(result)


@pytest.mark.e2e
def test_the_synth_scenario_against_the_demo_finds_only_the_two_bugs(tmp_path: Path) -> None:
    result = _run_on_demo(tmp_path, "--synth", "300", "--seed", "13")
    exchanges = _exchanges(result)
    assert {e["endpoint"] for e in exchanges} == ENDPOINTS
    _assert_authorised(exchanges)
    assert _bug_signatures(result) == BUGS
    summary = result.summary
    assert summary["requests"] == 300 and summary["errors"] == 0
    assert_accounted(summary)
    assert result.events[0]["sources"] == ["synth:300@13"]
    _assert_no_secrets(result)


def test_the_demo_copy_keeps_everything_but_the_targets(tmp_path: Path) -> None:
    original = tomllib.loads(PASSPORT.read_text())
    copied = tomllib.loads(_demo_copy(tmp_path).read_text())
    for data in (original, copied):
        del data["targets"], data["env_file"]
    assert copied == original


# -- helpers -----------------------------------------------------------------------------------


def _copy(folder: Path, text: str) -> Path:
    path = folder / "passport.toml"
    path.write_text(text)
    return path


def _demo_copy(tmp_path: Path) -> Path:
    """passport.toml with only its servers swapped for the bundled demo ones and demo.env."""
    text = PASSPORT.read_text()
    start, end = text.index("[targets.primary]"), text.index("[replay]")
    candidate_headers = re.search(
        r"^headers = .*$", text[text.index("[targets.candidate]") :], re.MULTILINE
    )
    assert candidate_headers is not None

    def target(name: str, module: str, extra: str = "") -> str:
        return (
            f'[targets.{name}]\nurl = "http://127.0.0.1:0"\n'
            f'command = ["{{python}}", "-m", "shadow.demo.{module}", "--port", "{{port}}"]\n'
            f'env_file = "{DEMO_ENV}"\n'
            'health = { path = "/internal/embed/weights", timeout_s = 20 }\n'
            f"shutdown_grace_s = 3\n{extra}\n"
        )

    targets = target("primary", "legacy") + target(
        "candidate", "rewrite", candidate_headers.group(0) + "\n"
    )
    text = text[:start] + targets + text[end:]
    text, found = re.subn(
        r'^env_file = ".*"$', f'env_file = "{DEMO_ENV}"', text, count=1, flags=re.MULTILINE
    )
    assert found == 1
    return _copy(tmp_path, text)


def _run_on_demo(tmp_path: Path, *args: str) -> Shadow:
    config = _demo_copy(tmp_path)
    return run_shadow(
        "run", "-c", str(config), "--emit", "all", "--run-dir", str(tmp_path / "run"), *args
    )


def _exchanges(result: Shadow) -> list[dict[str, Any]]:
    assert result.events[-1]["event"] == "run_finished", result.stderr
    assert not result.of("error"), result.of("error")[:3]
    return result.of("match") + result.of("mismatch")


def _assert_authorised(exchanges: list[dict[str, Any]]) -> None:
    statuses = {
        (e["endpoint"], e["status"]["primary"], e["status"]["candidate"]) for e in exchanges
    }
    assert {(name, 200, 200) for name, _, _ in statuses} == statuses, statuses


def _bug_signatures(result: Shadow) -> set[tuple[str, str, str]]:
    return {
        (m["endpoint"], d["path"], d["kind"]) for m in result.of("mismatch") for d in m["diffs"]
    }


def _assert_no_secrets(result: Shadow) -> None:
    output = result.stdout.decode() + result.stderr
    for secret in (*DEMO_SECRETS, "Bearer ey"):
        assert secret not in output


@pytest.fixture(autouse=True)
def _no_real_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The run must take its secrets from the env file, not from the test's environment.
    for name in ("SECRET_KEY", "CGRANTS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
