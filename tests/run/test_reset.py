"""`[targets.NAME.reset]`: real counter servers whose state a reset zeroes, a command reset and
an HTTP reset, before the replay and between `--loop` passes; each way a reset fails."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    HELPERS,
    assert_accounted,
    assert_no_orphans,
    free_port,
    run_shadow,
    serving,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

COUNTER = HELPERS / "counter_server.py"
NEXT = {"method": "POST", "path": "/next", "lane": "one", "body": {}}


@contextlib.contextmanager
def counters(tmp_path: Path, candidate_args: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """A primary and a candidate counter; the candidate starts at 7, the primary at 0."""
    (tmp_path / "candidate.state").write_text("7")
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, more in (("primary", ()), ("candidate", candidate_args)):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            argv = [sys.executable, str(COUNTER), "--port", str(port)]
            argv += ["--state", str(tmp_path / f"{name}.state"), *more]
            stack.enter_context(serving(argv, url + "/health"))
            urls[name] = url
        yield urls


def write_config(tmp_path: Path, urls: dict[str, str], primary_reset: str = "") -> Path:
    state = tmp_path / "primary.state"
    primary_reset = primary_reset or (
        f'command = ["{{python}}", "{COUNTER}", "--zero", "{state}"]\ntimeout_s = 10'
    )
    config = tmp_path / "shadow.toml"
    config.write_text(
        f"""
[targets.primary]
url = "{urls["primary"]}"

[targets.primary.reset]
{primary_reset}

[targets.candidate]
url = "{urls["candidate"]}"

[targets.candidate.reset]
method = "POST"
path = "/reset"
headers = {{ Authorization = "Bearer reset-secret-4f1c9e" }}
status = 204
timeout_s = 5
"""
    )
    return config


def test_a_reset_between_loop_passes_gives_identical_results(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [NEXT, NEXT, NEXT])
    with counters(tmp_path) as urls:
        config = write_config(tmp_path, urls)
        args = ("run", "-c", str(config), "--no-calibration", "--emit", "all")
        result = run_shadow(*args, "--loop", "--limit", "6", str(log))
        assert result.returncode == 0, result.stderr
        resets = result.of("reset")
        # Before the replay and before the second pass, each target once.
        assert [(e["target"], e["kind"], e["ok"]) for e in resets] == [
            ("primary", "command", True),
            ("candidate", "http", True),
        ] * 2
        matches = result.of("match")
        assert [e["seq"] for e in matches] == [0, 1, 2, 3, 4, 5]
        summary = result.summary
        assert summary["matched"] == 6 and summary["mismatched"] == 0
        assert_accounted(summary)
        # The second pass began again from 0: the counters end at 3, not 6.
        assert (tmp_path / "primary.state").read_text() == "3"
        assert (tmp_path / "candidate.state").read_text() == "3"
        assert "reset-secret-4f1c9e" not in result.stdout.decode() + result.stderr

        # Without the resets, the candidate's 7 shows through: the test can fail.
        bare = tmp_path / "bare.toml"
        bare.write_text(
            f'[targets.primary]\nurl = "{urls["primary"]}"\n'
            f'[targets.candidate]\nurl = "{urls["candidate"]}"\n'
        )
        (tmp_path / "candidate.state").write_text("7")
        (tmp_path / "primary.state").write_text("0")
        unreset = run_shadow("run", "-c", str(bare), "--no-calibration", str(log))
        assert unreset.returncode == 1
        assert unreset.summary["mismatched"] == 3
        assert not unreset.of("reset")


def test_a_failing_reset_command_fails_the_run(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [NEXT])
    state = tmp_path / "primary.state"
    failing = (
        f'command = ["{{python}}", "{COUNTER}", "--zero", "{state}", "--exit-code", "4"]\n'
        "timeout_s = 10"
    )
    with counters(tmp_path) as urls:
        config = write_config(tmp_path, urls, failing)
        result = run_shadow("run", "-c", str(config), "--no-calibration", str(log))
    assert result.returncode == 3, result.stderr
    assert "primary: reset command" in result.stderr and "exited with 4" in result.stderr
    assert "cannot zero: the store is locked" in result.stderr  # its output's tail
    assert [(e["target"], e["ok"]) for e in result.of("reset")] == [("primary", False)]
    assert result.summary["requests"] == 0  # nothing was sent to targets in unknown states
    assert not result.of("error") and not result.of("match")


def test_a_reset_command_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [NEXT])
    state = tmp_path / "primary.state"
    tag = f"hang-{free_port()}"
    hanging = (
        f'command = ["{{python}}", "{COUNTER}", "--zero", "{state}", "--hang", "--tag", "{tag}"]\n'
        "timeout_s = 0.5"
    )
    with counters(tmp_path) as urls:
        config = write_config(tmp_path, urls, hanging)
        result = run_shadow("run", "-c", str(config), "--no-calibration", str(log))
    assert result.returncode == 3, result.stderr
    assert "did not finish within 0.5s (killed)" in result.stderr
    assert "zeroing" in result.stderr
    assert result.of("reset")[0]["ok"] is False
    assert_no_orphans(tag)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reset_answered_with_the_wrong_status_fails_the_run(tmp_path: Path, workers: str) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [NEXT])
    with counters(tmp_path, ("--reset-status", "503")) as urls:
        config = write_config(tmp_path, urls)
        args = ("run", "-c", str(config), "--no-calibration", "--workers", workers, str(log))
        result = run_shadow(*args)
    assert result.returncode == 3, result.stderr
    assert "candidate: reset POST /reset: answered 503, expected 204" in result.stderr
    assert "reset refused: the store is read-only" in result.stderr
    assert [(e["target"], e["ok"]) for e in result.of("reset")] == [
        ("primary", True),
        ("candidate", False),
    ]
    assert "reset-secret-4f1c9e" not in result.stdout.decode() + result.stderr


def test_loop_with_workers_and_a_reset_is_refused(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [NEXT])
    urls = {"primary": "http://127.0.0.1:9", "candidate": "http://127.0.0.1:9"}
    config = write_config(tmp_path, urls)
    result = run_shadow("run", "-c", str(config), "--workers", "2", "--loop", str(log))
    assert result.returncode == 2
    assert "--loop with --workers" in result.stderr and "reset" in result.stderr


def test_a_reset_that_is_neither_command_nor_request_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "shadow.toml"
    config.write_text(
        '[targets.primary]\nurl = "http://127.0.0.1:9"\n[targets.primary.reset]\ntimeout_s = 3\n'
        '[targets.candidate]\nurl = "http://127.0.0.1:9"\n'
    )
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2
    assert "targets.primary.reset.command" in result.stderr


def test_workers_share_one_reset_made_by_the_parent(tmp_path: Path) -> None:
    records = [{**NEXT, "lane": str(i), "method": "GET", "path": "/count"} for i in range(4)]
    log = write_jsonl(tmp_path / "log.jsonl", records)
    with counters(tmp_path) as urls:
        config = write_config(tmp_path, urls)
        args = ("run", "-c", str(config), "--no-calibration", "--workers", "2", str(log))
        result = run_shadow(*args)
    assert result.returncode == 0, result.stderr
    assert [e["target"] for e in result.of("reset")] == ["primary", "candidate"]
    assert result.summary["matched"] == 4  # both at 0: the candidate's 7 was reset


def test_check_print_masks_the_secrets_of_a_reset(tmp_path: Path) -> None:
    urls = {"primary": "http://127.0.0.1:9", "candidate": "http://127.0.0.1:9"}
    config = write_config(
        tmp_path,
        urls,
        'command = ["true"]\nenv = { RESET_TOKEN = "tok-93f1a7c2e8" }',
    )
    result = run_shadow("check", "-c", str(config), "--print")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.decode()
    assert "[targets.primary.reset]" in printed and "[targets.candidate.reset]" in printed
    assert "tok-93f1a7c2e8" not in printed and "reset-secret-4f1c9e" not in printed
    assert 'RESET_TOKEN = "***"' in printed
