"""Outputs that are inputs: refused by file identity, whatever the path says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shadow.errors import UsageError
from shadow.sources.clobber import check_outputs


def test_an_output_that_is_an_input_by_any_name_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("{}\n")
    (tmp_path / "link").symlink_to(log)
    os.link(log, tmp_path / "hard")
    for name in (
        str(log),
        str(tmp_path / "link"),
        str(tmp_path / "hard"),
        f"{tmp_path}/./log.jsonl",
    ):
        with pytest.raises(UsageError, match="would destroy it"):
            check_outputs([str(log)], {"--output": name})


def test_outputs_elsewhere_and_missing_files_are_fine(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("{}\n")
    check_outputs([str(log), "-"], {"--output": str(tmp_path / "new"), "--learn-noise": None})
    check_outputs([str(tmp_path / "missing")], {"--output": str(tmp_path / "missing")})


def test_a_regular_file_twice_is_replayed_twice_a_pipe_twice_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("{}\n")
    check_outputs([str(log), str(log)], {})
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="given twice"):
        check_outputs([str(fifo), str(log), str(fifo)], {})


def test_stdout_onto_an_input_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("{}\n")
    with open(log, "ab") as out, pytest.raises(UsageError, match="stdout is the input"):
        check_outputs([str(log)], {}, out.fileno())
    with open(tmp_path / "events", "wb") as out:
        check_outputs([str(log)], {}, out.fileno())
