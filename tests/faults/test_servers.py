"""Servers that misbehave: each row a real `shadow run` against two fault servers it starts.

Every row asserts the exit code, the event each record ends as (with its error or diff kind),
that no traceback reached stderr, that the counts add up with one event per exchange, and that
no server process is left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.helpers import (
    check_run,
    fault_config,
    idle_listener,
    log_of,
    received,
    run_faults,
)

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Row:
    paths: tuple[str, ...]
    # Per record, in order: the event it ends as and its `error` (errors) or first diff kind.
    outcomes: tuple[tuple[str, str | None], ...]
    exit_code: int
    extra: str = ""  # more config
    timeout_s: str = "1"


ROWS = {
    "hang": Row(("/hang", "/ok/1"), (("error", "timeout"), ("match", None)), exit_code=1),
    "slow": Row(("/slow/1500",), (("error", "timeout"),), exit_code=1),
    "reset": Row(("/reset", "/ok/1"), (("error", "reset"), ("match", None)), exit_code=1),
    "close-after-headers": Row(
        ("/close-after-headers", "/ok/1"), (("error", "bad_body"), ("match", None)), exit_code=1
    ),
    "malformed-http": Row(
        ("/malformed", "/ok/1"), (("error", "bad_http"), ("match", None)), exit_code=1
    ),
    "content-length-over-the-body": Row(
        ("/short-length", "/ok/1"), (("error", "bad_body"), ("match", None)), exit_code=1
    ),
    "content-length-under-the-body": Row(
        ("/long-length", "/ok/1"), (("error", "bad_http"), ("match", None)), exit_code=1
    ),
    "50MB-body": Row(("/big/50",), (("match", None),), exit_code=0, timeout_s="30"),
    "over-max-body-bytes": Row(
        ("/big/50", "/ok/1"),
        (("error", "too_large"), ("match", None)),
        exit_code=1,
        extra="[replay]\nmax_body_bytes = 1048576\n",
    ),
    "gzip-deflate-brotli": Row(
        (
            "/encoded?primary=gzip&candidate=br",
            "/encoded?primary=deflate&candidate=identity",
            "/encoded?primary=br&candidate=gzip",
        ),
        (("match", None),) * 3,
        exit_code=0,
    ),
    "chunked": Row(("/chunked",), (("match", None),), exit_code=0),
    "invalid-utf8-json": Row(
        ("/json/bad-utf8", "/json/bad-utf8-same"),
        (("mismatch", "body"), ("match", None)),
        exit_code=1,
    ),
    "duplicate-keys": Row(("/json/dup-keys",), (("match", None),), exit_code=0),
    "nested-10000": Row(
        ("/json/deep", "/json/deep-same"), (("mismatch", "body"), ("match", None)), exit_code=1
    ),
    "huge-numbers": Row(
        ("/json/huge-int", "/json/huge-int-same", "/json/huge-float", "/json/huge-float-same"),
        (("mismatch", "value"), ("match", None), ("mismatch", "value"), ("match", None)),
        exit_code=1,
    ),
    "nan-infinity": Row(
        ("/json/nan", "/json/infinity"), (("mismatch", "body"), ("mismatch", "body")), exit_code=1
    ),
    "5xx-storm": Row(
        tuple(f"/storm/{n}" for n in range(60)), (("mismatch", "status"),) * 60, exit_code=1
    ),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_server_fault(name: str, tmp_path: Path, tag: str) -> None:
    row = ROWS[name]
    config = fault_config(tmp_path, tag, extra=row.extra)
    log = log_of(tmp_path, row.paths)
    result = run_faults(config, tmp_path, "--concurrency", "4", str(log), timeout_s=row.timeout_s)
    summary = check_run(result, tag, row.exit_code)
    assert summary["requests"] == len(row.paths)
    by_seq = {e["seq"]: e for e in result.events if e["event"] in ("match", "mismatch", "error")}
    found = []
    for seq in range(len(row.paths)):
        event = by_seq[seq]
        detail = event.get("error") or (event.get("diffs") or [{}])[0].get("kind")
        found.append((event["event"], detail))
    assert tuple(found) == row.outcomes, result.stdout[:3000]
    for error in result.of("error"):
        assert error["side"] == "both" and error["message"]


def test_huge_numbers_are_compared_and_written_as_their_text(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag)
    log = log_of(tmp_path, ["/json/huge-int", "/json/huge-float"])
    result = run_faults(config, tmp_path, str(log))
    check_run(result, tag, 1)
    diffs = [m["diffs"][0] for m in sorted(result.of("mismatch"), key=lambda m: m["seq"])]
    # 2**100 keeps every digit; 1e400 is not infinity (which would equal 1e500).
    assert (diffs[0]["primary"], diffs[0]["candidate"]) == (str(2**100), str(2**100 + 1))
    assert (diffs[1]["primary"], diffs[1]["candidate"]) == ("1e400", "1e500")


def test_crash_at_start_is_exit_3_naming_the_server(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag, candidate=["--crash-at-start"])
    result = run_faults(config, tmp_path, str(log_of(tmp_path, ["/ok/1"])))
    summary = check_run(result, tag, 3)
    assert summary["requests"] == 0
    exited = [e for e in result.of("server_exited") if e["target"] == "candidate"]
    assert exited[0]["returncode"] == 3 and exited[0]["expected"] is False
    assert "crashing at start" in " ".join(exited[0]["log_tail"])
    assert "candidate: exited with code 3 while starting" in result.stderr


def test_crash_mid_run_is_exit_3_and_every_record_is_counted(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag, candidate=["--crash-after", "10"])
    log = log_of(tmp_path, [f"/ok/{n}" for n in range(200)])
    result = run_faults(config, tmp_path, "--rate", "100", str(log))
    summary = check_run(result, tag, 3)
    assert 9 <= summary["requests"] < 200
    assert summary["errors"] >= 1
    assert all(e["side"] in ("candidate", "both") for e in result.of("error"))
    died = [e for e in result.of("server_exited") if e["target"] == "candidate"]
    assert died[0]["expected"] is False and died[0]["returncode"] == 17
    # the stderr summary says so, with the errors it caused and what to look at
    assert "shadow: candidate exited unexpectedly (code 17)\n" in result.stderr
    assert "shadow: errors:\n" in result.stderr and "    hint: " in result.stderr


def test_redirects_are_compared_never_followed(tmp_path: Path, tag: str) -> None:
    with idle_listener(tmp_path) as (elsewhere, record):
        config = fault_config(tmp_path, tag)
        log = log_of(tmp_path, [f"/redirect?to={elsewhere}/stolen", "/redirect?to=/ok/1"])
        result = run_faults(config, tmp_path, str(log))
        check_run(result, tag, 0)
        assert received(record) == []
    matches = result.of("match")
    # The primary's second answer (calibration) is a redirect not followed either.
    redirect = {"primary": 302, "candidate": 302, "repeat": 302}
    assert [m["status"] for m in matches] == [redirect] * 2
