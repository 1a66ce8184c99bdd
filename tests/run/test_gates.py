"""CI gates and reproduction: thresholds and fail_on through the CLI, a mismatch's request
replayed on its own, and its `curl` command run against each demo server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import (
    ROOT,
    Shadow,
    demo_servers_running,
    run_shadow,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

ITEMS = [{"method": "GET", "path": f"/items/{n}", "id": f"i{n}"} for n in range(20)]
ENDPOINT = "GET /items/{int}"  # the fake candidate answers n as a string when n % 5 == 0


def gate(fake_pair: tuple[str, str], tmp_path: Path, thresholds: str) -> Shadow:
    primary, candidate = fake_pair
    config = tmp_path / "gate.toml"
    config.write_text(
        f'[targets.primary]\nurl = "{primary}"\n[targets.candidate]\nurl = "{candidate}"\n'
        f"[thresholds]\n{thresholds}\n"
    )
    log = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    return run_shadow("run", "-c", str(config), str(log))


@pytest.mark.parametrize(
    ("thresholds", "exit_code", "reason"),
    [
        ("mismatch_rate = 0.2", 0, ""),
        (
            "mismatch_rate = 0.1",
            1,
            "overall mismatch rate 4/20 above the mismatch_rate threshold 0.1",
        ),
        ('mismatch_rate = 0.2\nfail_on = ["type"]', 1, "4 type differences (fail_on)"),
        ('mismatch_rate = 0.2\nfail_on = ["status", "value"]', 0, ""),
        # An endpoint with its own limits is judged by them, and left out of the overall rate.
        (f'[thresholds.endpoint."{ENDPOINT}"]\nmismatch_rate = 0.25', 0, ""),
        (
            f'[thresholds.endpoint."{ENDPOINT}"]\nmismatch_rate = 0.1',
            1,
            f"endpoint '{ENDPOINT}' mismatch rate 4/20 above the mismatch_rate threshold 0.1",
        ),
        ('[thresholds.endpoint."GET /other"]\nmismatch_rate = 1', 1, "overall mismatch rate"),
    ],
)
def test_thresholds_and_fail_on_decide_the_exit_code(
    fake_pair: tuple[str, str], tmp_path: Path, thresholds: str, exit_code: int, reason: str
) -> None:
    result = gate(fake_pair, tmp_path, thresholds)
    assert result.returncode == exit_code, result.stderr
    assert result.summary["exit_code"] == exit_code and result.summary["mismatched"] == 4
    assert (f"exit 1: {reason}" in result.stderr) if reason else ("exit 1:" not in result.stderr)


# --- reproducing a mismatch ------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Shadow:
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    result = run_shadow("demo", "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stderr
    return result


def test_a_mismatch_request_replays_through_shadow_run_on_its_own(
    demo_run: Shadow, tmp_path: Path
) -> None:
    for mismatch in demo_run.of("mismatch"):
        log = write_jsonl(tmp_path / "one.jsonl", [mismatch["request"]])
        again = run_shadow(
            "run", "-c", str(ROOT / "config" / "demo.toml"), "--run-dir", str(tmp_path / "r"),
            str(log),
        )  # fmt: skip
        assert again.returncode == 1, again.stderr
        [replayed] = again.of("mismatch")
        assert replayed["endpoint"] == mismatch["endpoint"]
        assert replayed["diffs"] == mismatch["diffs"]
        assert again.summary["requests"] == 1 and again.summary["input_errors"] == 0


@pytest.fixture
def demo_servers() -> Iterator[dict[str, str]]:
    secrets = {"SECRET_KEY": "s" * 32, "CGRANTS_API_TOKEN": "internal-for-test"}
    with demo_servers_running(secrets) as urls:
        yield urls


def test_the_curl_field_reproduces_the_request_against_either_target(
    demo_run: Shadow, demo_servers: dict[str, str]
) -> None:
    bans = next(m for m in demo_run.of("mismatch") if m["endpoint"] == "Check Bans")
    command = bans["curl"]
    assert "$TARGET" in command and "$AUTHORIZATION" in command
    assert "demo-internal-key" not in command
    [diff] = bans["diffs"]
    for flavour, side in (("legacy", "primary"), ("rewrite", "candidate")):
        answer = run_curl(command, demo_servers[flavour], "internal-for-test")
        assert answer[0]["end_time"] == diff[side]
    assert run_curl(command, demo_servers["legacy"], "wrong key") == {"detail": "Unauthorized"}


def run_curl(command: str, target: str, key: str) -> Any:
    env = {"PATH": os.environ["PATH"], "TARGET": target, "AUTHORIZATION": key}
    done = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, timeout=20, check=True
    )
    return orjson.loads(done.stdout)
