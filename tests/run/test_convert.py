"""`shadow convert` and `shadow run` on every capture sample, as subprocesses, replayed against
the bundled demo servers (which config/demo.toml starts on free ports)."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow.model import Record
from shadow.sources.jsonl import record_from_dict
from shadow.sources.opening import iter_inputs
from tests.support import ROOT, assert_accounted, run_shadow, shadow_cmd

pytestmark = pytest.mark.e2e

LOGS = ROOT / "replay_logs"
DEMO_CONFIG = ROOT / "config" / "demo.toml"
HARS = [LOGS / "passport-devtools.har", LOGS / "passport-mitmproxy.har"]
GOR = LOGS / "passport.gor"
ACCESS = [LOGS / "passport-nginx.access.log", LOGS / "passport-alb.access.log"]
SAMPLES = [*HARS, GOR, *ACCESS]
# Where the two bugs the demo rewrite carries show; every other answer must match.
BLOCKS = ["/items/0/last_updated_in_block", "/items/1/last_updated_in_block"]
BUG_DIFFS = [["/0/end_time"], BLOCKS]
SECRETS = ("demo-internal-key", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")


def read_in_process(path: Path) -> list[Record]:
    items = list(iter_inputs([str(path)], 1 << 20))
    assert all(isinstance(i, Record) for i in items)
    return [i for i in items if isinstance(i, Record)]


def outcomes(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Per record, in input order: its endpoint, both sides' statuses and the paths that
    differ (noise left out); nothing that varies from run to run."""
    exchanges = [e for e in events if e["event"] in ("match", "mismatch", "error")]
    return [
        (
            e["endpoint"],
            (e["status"]["primary"], e["status"]["candidate"]),
            sorted(d["path"] for d in e.get("diffs") or () if not d.get("suppressed")),
        )
        for e in sorted(exchanges, key=lambda e: e["seq"])
    ]


def replay(*args: str, stdin: bytes | None = None, run_dir: Path) -> tuple[Any, ...]:
    result = run_shadow(
        "run", "--concurrency", "1", "--emit", "all", "--run-dir", str(run_dir), *args, stdin=stdin
    )
    summary = result.summary
    assert_accounted(summary)
    assert summary["errors"] == 0 and summary["input_errors"] == 0, result.stderr
    for secret in SECRETS:  # recorded credentials are replayed, never echoed
        assert secret not in result.stdout.decode() + result.stderr
    return result, summary, outcomes(result.events)


def test_convert_every_sample_to_native_jsonl(tmp_path: Path) -> None:
    result = run_shadow("convert", *map(str, SAMPLES))
    assert result.returncode == 0, result.stderr
    assert "39 records converted, 0 could not be read" in result.stderr
    lines = result.stdout.splitlines()
    expected = [r for sample in SAMPLES for r in read_in_process(sample)]
    assert len(lines) == len(expected) == 39
    for line, record in zip(lines, expected, strict=True):
        again = record_from_dict(orjson.loads(line))
        assert (again.method, again.path, again.headers, again.ts, again.id) == (
            record.method,
            record.path,
            record.headers,
            record.ts,
            record.id,
        )
        assert again.body == record.body and again.body_form == record.body_form


def test_convert_problems_stdin_and_gzip(tmp_path: Path) -> None:
    data = GOR.read_bytes()
    cut = tmp_path / "cut.gor"
    cut.write_bytes(data[: data.index(b"check-revocations") + 400])  # inside a chunked body
    stdin = gzip.compress((LOGS / "passport-mitmproxy.har").read_bytes())
    result = run_shadow("convert", "-", str(cut), stdin=stdin)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8 + 3  # the HAR from stdin, then the gor up to the cut
    offset = data.index(b"1 3e8d1b6c0f2a4957bd7e0c51")
    line = data[:offset].count(b"\n") + 1
    assert f"{cut}:{line}: byte {offset}: cut off at the end of the file" in result.stderr
    assert "11 records converted, 1 could not be read" in result.stderr


def test_unknown_format_is_exit_2_for_convert_and_run(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("dear diary\n")
    for args in (("convert", str(notes)), ("run", "-c", str(DEMO_CONFIG), str(notes))):
        result = run_shadow(*args)
        assert result.returncode == 2
        assert f"{notes}: not a log format" in result.stderr and "--format" in result.stderr
        assert result.stdout == b""  # nothing started, nothing replayed
    result = run_shadow("convert", "-", stdin=b"dear diary\n")
    assert result.returncode == 2 and "<stdin>: not a log format" in result.stderr


def test_raw_and_converted_samples_replay_alike_against_the_demo(tmp_path: Path) -> None:
    # Raw: the format detected per input, the GoReplay file arriving on stdin.
    raw_args = [str(p) for p in HARS] + ["-"] + [str(p) for p in ACCESS]
    result, summary, raw = replay(
        "-c", str(DEMO_CONFIG), *raw_args, stdin=GOR.read_bytes(), run_dir=tmp_path / "raw"
    )
    assert summary["requests"] == 39 and len(raw) == 39
    captured = raw[:26]  # HAR and GoReplay records carry the credentials they were sent with
    assert all(status == (200, 200) for _, status, _ in captured)
    assert [diffs for _, _, diffs in raw if diffs] == BUG_DIFFS * 2  # mitmproxy HAR, .gor
    for _, status, _ in raw[26:]:  # access logs: no credentials recorded, so some 401s
        assert status in ((200, 200), (401, 401))
    request = next(e["request"] for e in result.events if e["event"] == "mismatch")
    assert dict(request["headers"])["AUTHORIZATION"] == "[REDACTED]"

    conversion = run_shadow("convert", *[str(p) for p in SAMPLES])
    assert conversion.returncode == 0, conversion.stderr
    converted = tmp_path / "converted.jsonl"
    converted.write_bytes(conversion.stdout)
    _, _, again = replay(
        "-c", str(DEMO_CONFIG), "--format", "jsonl", str(converted), run_dir=tmp_path / "jsonl"
    )
    assert again == raw


ACCESS_CONFIG = """
env_file = "{env}"

[targets.primary]
url = "http://127.0.0.1:0"
command = ["{{python}}", "-m", "shadow.demo.legacy", "--port", "{{port}}"]
env_file = "{env}"
health = {{ path = "/internal/embed/weights", timeout_s = 20 }}

[targets.candidate]
url = "http://127.0.0.1:0"
command = ["{{python}}", "-m", "shadow.demo.rewrite", "--port", "{{port}}"]
env_file = "{env}"
health = {{ path = "/internal/embed/weights", timeout_s = 20 }}

[compare]
ignore = ["/**/last_score_timestamp", "/**/id"]

[[compare.endpoint]]
name = "internal read"
method = "GET"
path = "/internal/*"
auth = "internal"

[auth.internal]
type = "header"
header = "AUTHORIZATION"
value_env = "CGRANTS_API_TOKEN"
"""


def test_access_logs_replay_with_auth_from_the_config(tmp_path: Path) -> None:
    # An access log holds no credentials: the config's endpoint rule supplies them.
    config = tmp_path / "access.toml"
    config.write_text(ACCESS_CONFIG.format(env=DEMO_CONFIG.parent / "demo.env"))
    _, summary, got = replay(
        "-c", str(config), "--format", "access", *map(str, ACCESS), run_dir=tmp_path / "run"
    )
    assert summary["requests"] == 13
    assert all(status == (200, 200) for _, status, _ in got)
    assert [diffs for _, _, diffs in got if diffs] == [BLOCKS] * 2  # nginx, ALB


def test_convert_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    big = tmp_path / "big.gor.gz"
    big.write_bytes(gzip.compress(GOR.read_bytes() * 500))  # more than a pipe holds
    with subprocess.Popen(
        shadow_cmd("convert", str(big)), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # the reader goes away after one record
        assert proc.wait(timeout=60) == 0
        assert b"Traceback" not in proc.stderr.read()
