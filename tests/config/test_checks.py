"""Each config value checked where it is held: in its dataclass's `__post_init__`, so a value
read from a file, built in code, or given on the command line meets the same check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shadow import cli
from shadow.config.load import load
from shadow.config.replay import ReplayConfig
from shadow.config.targets import TargetConfig
from shadow.config.verdict import NoiseConfig, Thresholds
from shadow.errors import ConfigError, InvalidValue
from shadow.model import CompareRules

TARGETS = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
"""


@pytest.mark.parametrize(
    ("table", "line", "key", "problem"),
    [
        ("replay", "timeout_s = nan", "replay.timeout_s", "must be a finite number, not nan"),
        ("replay", "timeout_s = inf", "replay.timeout_s", "must be a finite number, not inf"),
        ("replay", "rate = -inf", "replay.rate", "must be a finite number, not -inf"),
        ("noise", "ratio = nan", "noise.ratio", "must be a finite number, not nan"),
        ("thresholds", "error_rate = nan", "thresholds.error_rate", "not nan"),
        ("compare", "tolerance = inf", "compare.tolerance", "must be a finite number, not inf"),
        ("replay", "concurrency = 0", "replay.concurrency", "must be at least 1, not 0"),
        ("replay", 'host_header = "x"', "replay.host_header", "one of target, preserve"),
    ],
)
def test_a_bad_number_or_choice_in_a_file_names_its_key(
    tmp_path: Path, table: str, line: str, key: str, problem: str
) -> None:
    path = tmp_path / "shadow.toml"
    path.write_text(f"{TARGETS}\n[{table}]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ReplayConfig(concurrency=0), "concurrency"),
        (lambda: dataclasses.replace(ReplayConfig(), timeout_s=float("nan")), "timeout_s"),
        (lambda: NoiseConfig(sample=1.5), "sample"),
        (lambda: Thresholds(fail_on=("typo",)), "fail_on"),
        (lambda: CompareRules(ignore=("no-slash",)), "ignore"),
        (lambda: TargetConfig("primary", "http://127.0.0.1:0"), "url"),
    ],
)
def test_a_value_built_in_code_is_checked_as_one_read_from_a_file(
    build: object, field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_defaults_are_the_dataclasses_own(tmp_path: Path) -> None:
    path = tmp_path / "shadow.toml"
    path.write_text(TARGETS)
    config = load(path)
    assert config.replay == ReplayConfig()
    assert config.noise == NoiseConfig() and config.thresholds == Thresholds()
    assert config.targets["primary"] == TargetConfig("primary", "http://127.0.0.1:8002")


@pytest.mark.parametrize("flag", ["--timeout", "--progress-interval"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_nan_and_inf_are_refused_on_the_command_line(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "--primary", "http://a", "--candidate", "http://b", flag, value, "x"])
    assert caught.value.code == 2
    assert f"{flag}: must be a finite number, not {value}" in capsys.readouterr().err
