"""What `cli.main` answers for each way a command can end, as shadow/errors.py says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shadow import cli
from shadow.errors import BUG_EXIT_CODE, INTERRUPTED_EXIT_CODE, ConfigError, ServerStartError
from tests.support import ROOT, assert_gone, events_of, shadow_cmd


def ends_with(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> int:
    def command_check(_: object, __: object) -> int:
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


# Loaded by every Python process the test starts (sitecustomize on PYTHONPATH), so the bug is
# planted in `--workers` children too. It is past a record's handling (in writing the event of
# an exchange already counted), where no record can carry it: a bug in judging a record is
# that record's `internal` error instead (tests/faults/test_record_failures.py).
PLANTED_BUG = """
import shadow.events.sink as sink

real = sink.Sink.exchange

def exchange(self, exchange, outcome, *args):
    if outcome == "mismatch":
        raise RuntimeError("planted bug: writing the event failed")
    return real(self, exchange, outcome, *args)

sink.Sink.exchange = exchange
"""


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
def test_a_bug_mid_run_stops_the_servers_and_exits_70_not_a_verdict(
    tmp_path: Path, workers: int
) -> None:
    # The demo's two mismatching exchanges hit the planted bug: the run must not pass with
    # them missing from the counts, nor wait forever for the worker that raised.
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANTED_BUG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(plant), str(ROOT)))}
    args = ["demo", "--run-dir", str(tmp_path / "run"), "--workers", str(workers)]
    proc = subprocess.run(
        shadow_cmd(*args), capture_output=True, timeout=60, cwd=ROOT, env=env, check=False
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == BUG_EXIT_CODE, stderr
    assert "internal error (RuntimeError): this is a bug in shadow" in stderr
    assert "planted bug: writing the event failed" in stderr
    events = events_of(proc.stdout)
    finished = [e for e in events if e["event"] == "run_finished"]
    if workers == 1:
        assert finished == []  # the process that hit the bug reached no verdict
    else:  # the parent did: its children crashed, and it says so
        assert [e["exit_code"] for e in finished] == [BUG_EXIT_CODE]
    exited = {e["target"]: e["expected"] for e in events if e["event"] == "server_exited"}
    assert exited == {"primary": True, "candidate": True}  # stopped by shadow, before exit
    assert_gone(e["pid"] for e in events if e["event"] == "server_ready")
