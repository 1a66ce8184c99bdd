"""What `cli.main` answers for each way a command can end, as shadow/errors.py says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shadow import cli
from shadow.errors import BUG_EXIT_CODE, INTERRUPTED_EXIT_CODE, ConfigError, ServerStartError
from tests.support import ROOT, assert_gone


def ends_with(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> int:
    def command_check(_: object) -> int:
        raise exc

    monkeypatch.setattr(cli, "command_check", command_check)
    return cli.main(["check", "-c", "shadow.toml"])


def test_a_bug_is_said_to_be_one_and_never_read_as_a_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ends_with(RuntimeError("boom"), monkeypatch)
    out, err = capsys.readouterr()
    assert code == BUG_EXIT_CODE == 70
    assert out == ""
    assert "shadow: error: internal error (RuntimeError): this is a bug in shadow" in err
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (ConfigError("x.toml", "replay.rate", "must be at least 0, not -1"), 2, "x.toml: replay"),
        (ServerStartError("primary", "exited with code 1 while starting"), 3, "primary: exited"),
        (KeyboardInterrupt(), INTERRUPTED_EXIT_CODE, "interrupted"),
    ],
)
def test_user_errors_get_their_exit_code_and_no_traceback(
    exc: BaseException,
    code: int,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert ends_with(exc, monkeypatch) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


BUGGY_SHADOW = """
import sys
import shadow.run.pipeline as pipeline
from shadow.cli import main

real = pipeline.diff_responses

def diff_responses(primary, candidate, rules):
    found = real(primary, candidate, rules)
    if found:
        raise RuntimeError("planted bug: the compare step failed")
    return found

pipeline.diff_responses = diff_responses
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.e2e
def test_a_bug_mid_run_stops_the_servers_and_exits_70_not_a_verdict(tmp_path: Path) -> None:
    # The demo's two mismatching exchanges hit the planted bug: the run must not pass with
    # them missing from the counts, nor wait forever for the worker that raised.
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", BUGGY_SHADOW, "demo", "--run-dir", str(run_dir)],
        capture_output=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == BUG_EXIT_CODE, stderr
    assert "internal error (RuntimeError): this is a bug in shadow" in stderr
    assert "planted bug: the compare step failed" in stderr
    events = [orjson.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert "run_finished" not in kinds  # no verdict was reached
    exited = {e["target"]: e["expected"] for e in events if e["event"] == "server_exited"}
    assert exited == {"primary": True, "candidate": True}  # stopped by shadow, before exit
    assert_gone(e["pid"] for e in events if e["event"] == "server_ready")
