"""What `cli.main` answers for each way a command can end, as shadow/errors.py says."""

from __future__ import annotations

import pytest

from shadow import cli
from shadow.errors import BUG_EXIT_CODE, INTERRUPTED_EXIT_CODE, ConfigError, ServerStartError


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
