"""Verdicts to trust at first contact: labelled scenarios, real servers, `shadow run` as a subprocess.

Each scenario knows every real difference the candidate carries (tests/helpers/trust_server.py
`injected`) and counts exactly the false positives (a reported difference that was not
injected) and the false negatives (an injected one not reported): both must be 0. Beyond the
counts, a run must not pass when nothing was proven: the same error on both sides, or nothing
compared at all, exits 1 and says why.
"""

from __future__ import annotations

import contextlib
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers.trust_server import injected
from tests.support import (
    HELPERS,
    Shadow,
    assert_accounted,
    assert_no_orphans,
    free_port,
    run_shadow,
    serving,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

TRUST_SERVER = HELPERS / "trust_server.py"


def target(name: str, variant: str, tag: str) -> str:
    return f"""
[targets.{name}]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{TRUST_SERVER}", "--port", "{{port}}", "--variant", "{variant}",
           "--tag", "{tag}"]
health = {{ path = "/health", timeout_s = 15 }}
shutdown_grace_s = 2
"""


def trust_config(tmp_path: Path, tag: str, extra: str = "") -> Path:
    path = tmp_path / "trust.toml"
    path.write_text(
        target("primary", "legacy", tag) + target("candidate", "candidate", tag) + extra
    )
    return path


@pytest.fixture
def attached(tag: str) -> Iterator[tuple[str, str]]:
    """The legacy and the candidate started by the test, for `--primary URL --candidate URL`."""
    with contextlib.ExitStack() as stack:
        urls = []
        for variant in ("legacy", "candidate"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            argv = [sys.executable, str(TRUST_SERVER), "--port", str(port), "--variant", variant]
            stack.enter_context(serving([*argv, "--tag", tag], url + "/health"))
            urls.append(url)
        yield urls[0], urls[1]


def labelled(result: Shadow, records: list[dict[str, Any]]) -> tuple[int, int]:
    """(false positives, false negatives) of a run over labelled records (`id` = kind-n)."""
    reported = {e["id"]: real_diffs(e) for e in result.of("mismatch")}
    false_positives = false_negatives = 0
    for record in records:
        kind, _, n = record["id"].rpartition("-")
        found, expected = reported.get(record["id"], set()), injected(kind, int(n))
        false_positives += len(found - expected)
        false_negatives += len(expected - found)
    return false_positives, false_negatives


def real_diffs(event: dict[str, Any]) -> set[tuple[str, str]]:
    return {(d["path"], d["kind"]) for d in event["diffs"] if "suppressed" not in d}


def records_of(kind: str, count: int, method: str = "GET", **extra: Any) -> list[dict[str, Any]]:
    return [
        {"method": method, "path": f"/{kind}/{n}", "id": f"{kind}-{n}", **extra}
        for n in range(count)
    ]


# --- 1. no false pass -------------------------------------------------------------------------


def test_the_same_401_on_both_sides_fails_the_run_and_says_why(tmp_path: Path, tag: str) -> None:
    records = records_of("score", 8, name="Score")
    log = write_jsonl(tmp_path / "score.jsonl", records)
    config = trust_config(tmp_path, tag)
    result = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "a"), str(log))
    assert labelled(result, records) == (0, 0)
    assert result.returncode == 1, result.stderr
    assert (
        "8 of 8 matched exchanges of 'Score' answered 401 on both sides: "
        "are the credentials right?" in result.stderr
    )
    summary = result.summary
    assert (summary["matched"], summary["mismatched"], summary["errors"]) == (8, 0, 0)
    score = summary["by_endpoint"]["Score"]
    assert score["both_failed"] == {"401": 8}
    assert score["statuses"] == {
        "primary": {"4xx": 8, "401": 8},
        "candidate": {"4xx": 8, "401": 8},
    }
    assert summary["statuses"]["primary"] == {"4xx": 8, "401": 8}
    assert summary["both_failed"] == {"401": 8}
    assert "primary 4xx 8 (401 8)" in result.stderr  # the stderr summary counts statuses
    # The reports say it too: JSON, text and HTML.
    why = "8 of 8 matched exchanges of 'Score' answered 401 on both sides"
    assert any(why in reason for reason in summary["reasons"]), summary["reasons"]
    report = orjson.loads(run_shadow("report", "-", "--json", stdin=result.stdout).stdout)
    assert report["verdict"]["status"] == "fail"
    assert any(why in reason for reason in report["verdict"]["reasons"])
    assert report["both_failed"] == {"401": 8}
    assert report["endpoints"]["Score"]["statuses"]["candidate"] == {"4xx": 8, "401": 8}
    text = run_shadow("report", "-", stdin=result.stdout).stdout.decode()
    assert "Score: failed alike on both sides: 401 8" in text
    assert "statuses: primary 4xx 8 (401 8); candidate 4xx 8 (401 8)" in text
    html = tmp_path / "report.html"
    run_shadow("report", "-", "--html", str(html), stdin=result.stdout)
    assert "failed alike on both sides: 401 × 8" in html.read_text()
    # Declared as the expected answer, the same records prove what they were meant to.
    expected = write_jsonl(tmp_path / "expected.jsonl", records_of("score", 8, expect_status=401))
    again = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "b"), str(expected))
    assert again.returncode == 0, again.stderr
    assert again.summary["both_failed"] == {} and again.summary["matched"] == 8
    # An endpoint rule can declare it too.
    rule = '\n[[compare.endpoint]]\nname = "Score"\npath = "/score/{n}"\nexpect_status = 401\n'
    config = trust_config(tmp_path, tag, rule)
    third = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "c"), str(log))
    assert third.returncode == 0, third.stderr
    assert_no_orphans(tag)


def test_a_run_that_compared_nothing_fails(tmp_path: Path, attached: tuple[str, str]) -> None:
    primary, candidate = attached
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    har = tmp_path / "nothing.har"
    har.write_bytes(orjson.dumps({"log": {"version": "1.2", "entries": []}}))
    writes = write_jsonl(tmp_path / "writes.jsonl", records_of("messages", 3, method="POST"))
    reads_only = tmp_path / "reads.toml"
    reads_only.write_text(
        f'[targets.primary]\nurl = "{primary}"\n[targets.candidate]\nurl = "{candidate}"\n'
        '[replay]\nmethods = ["GET"]\n'
    )
    runs = {
        "an empty log": ("--primary", primary, "--candidate", candidate, str(empty)),
        "a HAR without entries": ("--primary", primary, "--candidate", candidate, str(har)),
        "every record filtered out": ("-c", str(reads_only), str(writes)),
    }
    for what, args in runs.items():
        result = run_shadow("run", *args)
        assert labelled(result, []) == (0, 0)
        assert result.returncode == 1, (what, result.stderr)
        assert "exit 1: nothing was compared" in result.stderr, (what, result.stderr)
        assert result.summary["requests"] == 0 and result.summary["exit_code"] == 1
        assert result.summary["reasons"][0].startswith("nothing was compared"), what
        report = run_shadow("report", "-", stdin=result.stdout).stdout.decode()
        assert report.splitlines()[1].startswith("because nothing was compared"), (what, report)
    assert run_shadow("run", *runs["every record filtered out"]).summary["skipped"] == 3


# --- 2. noise handled without being asked -----------------------------------------------------


def test_clocks_ids_and_random_bytes_need_no_noise_config(
    tmp_path: Path, attached: tuple[str, str]
) -> None:
    primary, candidate = attached
    records = records_of("clock", 60) + records_of("blob", 24) + records_of("page", 24)
    log = write_jsonl(tmp_path / "noisy.jsonl", records)
    result = run_shadow("run", "--primary", primary, "--candidate", candidate, str(log))
    assert labelled(result, records) == (0, 0)
    assert result.returncode == 1, result.stderr  # the injected differences
    summary = result.summary
    assert_accounted(summary)
    calibration = summary["calibration"]
    assert calibration["mode"] == "repeat" and 0 < calibration["pairs"] < len(records)
    # The page is HTML, compared as a tree: its nonce is noise at its own path; only the
    # random bytes cannot be compared.
    assert calibration["body_not_comparable"] == ["GET /blob/{int}"]
    assert "body not comparable" in result.stderr and "GET /blob/{int}" in result.stderr
    assert summary["by_endpoint"]["GET /blob/{int}"]["noise"] == {"/": 24}
    assert summary["by_endpoint"]["GET /page/{int}"]["noise"] == {"/html/head/meta/@content": 24}
    report = orjson.loads(run_shadow("report", "-", "--json", stdin=result.stdout).stdout)
    assert report["body_not_comparable"] == ["GET /blob/{int}"]
    assert report["endpoints"]["GET /blob/{int}"]["body_not_comparable"] is True
    assert report["endpoints"]["GET /page/{int}"]["body_not_comparable"] is False
    text = run_shadow("report", "-", stdin=result.stdout).stdout.decode()
    assert "body not comparable" in text and "GET /blob/{int}" in text
    # Two workers calibrate each on its share; the run says the same, once.
    fleet = run_shadow(
        "run", "--primary", primary, "--candidate", candidate, "--workers", "2", str(log)
    )
    assert labelled(fleet, records) == (0, 0)
    assert fleet.summary["calibration"]["body_not_comparable"] == calibration["body_not_comparable"]
    assert fleet.stderr.count("body not comparable on 'GET /blob/{int}'") == 1, fleet.stderr
    # Turned off, every clock and id is reported: the calibration is what hides them.
    off = run_shadow(
        "run", "--primary", primary, "--candidate", candidate, "--no-calibration", str(log)
    )
    assert off.summary["calibration"] is None
    assert labelled(off, records)[0] > 60


def test_a_repeated_write_answered_with_an_error_teaches_nothing(tmp_path: Path, tag: str) -> None:
    records = records_of("messages", 24, method="POST")
    log = write_jsonl(tmp_path / "writes.jsonl", records)
    # Writes listed as safe to repeat: the primary's second answer is a 400.
    config = trust_config(tmp_path, tag, '\n[noise]\nrepeat_methods = ["GET", "POST"]\n')
    learned = tmp_path / "learned.toml"
    result = run_shadow(
        "run", "-c", str(config), "--learn-noise", str(learned),
        "--run-dir", str(tmp_path / "a"), str(log),
    )  # fmt: skip
    assert labelled(result, records) == (0, 0)
    assert result.returncode == 1, result.stderr
    assert result.summary["calibration"]["pairs"] == 0
    # Every one of the endpoint's first 20 (`full_pairs`) was repeated, then a tenth of the rest.
    assert result.summary["calibration"]["discarded"] == 20
    assert "calibration made no pairs" in result.stderr
    assert "20 discarded: the two answers of the primary had different statuses" in result.stderr
    assert "compare" not in tomllib.loads(learned.read_text())  # no rule learned
    # With the defaults no write is repeated: the calibration says it had nothing to go on.
    plain = trust_config(tmp_path, tag)
    default = run_shadow("run", "-c", str(plain), "--run-dir", str(tmp_path / "b"), str(log))
    assert labelled(default, records) == (0, 0)
    assert "calibration made no pairs: no record was safe to repeat" in default.stderr
    assert_no_orphans(tag)
