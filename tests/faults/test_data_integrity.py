"""Data altered or lost: outputs that would overwrite an input, JSON bodies written again instead
of sent as recorded, a cookie jar that carries one target's session into later requests, and a
`.gor` request whose body swallows the bytes up to the next separator.

Each row runs shadow as a subprocess against fault servers on 127.0.0.1 that record what they
receive, so the test sees the bytes that went out, not what shadow says it sent.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import orjson
import pytest

from shadow.sources.gor import SEPARATOR
from tests.faults.helpers import (
    check_run,
    fault_config,
    idle_listener,
    received,
    run_faults,
)
from tests.support import ROOT, run_shadow, shadow_cmd, write_jsonl

pytestmark = pytest.mark.e2e

LOG_LINE = b'{"method": "GET", "path": "/ok/1"}\n'


def recorded_config(tmp_path: Path, tag: str, extra: str = "") -> tuple[Path, Path, Path]:
    """Managed fault servers that record every request: the config and the two record files."""
    primary, candidate = tmp_path / "primary.record", tmp_path / "candidate.record"
    config = fault_config(
        tmp_path, tag, ["--record", str(primary)], ["--record", str(candidate)], extra
    )
    return config, primary, candidate


def requests_at(record: Path) -> list[dict[str, object]]:
    """What a recording fault server received, health checks left out."""
    return [e for e in received(record) if "method" in e and e["target"] != "/health"]


# --- outputs that are inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["output", "output-symlink", "output-hardlink", "learn-noise", "config", "stdout"]
)
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    tmp_path: Path, case: str
) -> None:
    # Before, `--output log.jsonl` truncated the log before it was read: zero records, exit 0.
    log = tmp_path / "log.jsonl"
    log.write_bytes(LOG_LINE * 3)
    with idle_listener(tmp_path) as (url, record):
        config = tmp_path / "attach.toml"
        config.write_text(f'[targets.primary]\nurl = "{url}"\n[targets.candidate]\nurl = "{url}"\n')
        args = ["run", "-c", str(config), str(log), "--run-dir", str(tmp_path / "run")]
        output = {"output-symlink": tmp_path / "link", "output-hardlink": tmp_path / "hard"}
        if case == "output-symlink":
            output[case].symlink_to(log)
        elif case == "output-hardlink":
            os.link(log, output[case])
        flags = {
            "output": ["--output", str(log)],
            "output-symlink": ["--output", str(output.get(case, ""))],
            "output-hardlink": ["--output", str(output.get(case, ""))],
            "learn-noise": ["--learn-noise", str(log)],
            "config": ["--output", str(config)],
            "stdout": [],
        }[case]
        before = config.read_bytes()
        with open(log, "ab") as appended:
            stdout = appended if case == "stdout" else subprocess.PIPE
            proc = subprocess.run(
                shadow_cmd(*args, *flags),
                stdout=stdout,
                stderr=subprocess.PIPE,
                timeout=60,
                cwd=ROOT,
                check=False,
            )
        stderr = proc.stderr.decode()
        assert proc.returncode == 2, stderr
        assert "Traceback" not in stderr
        assert "would destroy it" in stderr or "read back as records" in stderr, stderr
        assert log.read_bytes() == LOG_LINE * 3  # not one byte lost or added
        assert config.read_bytes() == before
        assert received(record) == []  # refused before anything was sent


def test_a_pipe_given_twice_is_refused(tmp_path: Path) -> None:
    # Two readers of one pipe would each take some of its lines: records lost from both.
    fifo = tmp_path / "records.pipe"
    os.mkfifo(fifo)
    result = run_shadow(
        "run", "--primary", "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:9",
        str(fifo), str(fifo),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "given twice" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == b""


def test_report_html_over_an_event_file_is_refused(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl.gz"
    line = {"event": "run_finished", "requests": 0, "matched": 0, "mismatched": 0, "errors": 0}
    events.write_bytes(gzip.compress(orjson.dumps(line) + b"\n"))
    before = events.read_bytes()
    result = run_shadow("report", str(events), "--html", str(events))
    assert result.returncode == 2, result.stderr
    assert "--html" in result.stderr and "Traceback" not in result.stderr
    assert events.read_bytes() == before


# --- bodies sent as recorded ------------------------------------------------------------------

# What a JSON body may hold that a parse and a dump would change: digits past 64 bits and past
# a double's precision, number spellings, member order, spacing, escapes.
BODY_TEXT = (
    '{"n": 18446744073709551616, "big": 1267650600228229401496703205376,'
    ' "f": 1.50, "e": 1E2, "z": -0.0, "order": {"b": 1, "a": 2},'
    '  "s": "caf\\u00e9 \\/ x", "list": [ 1 ,2 ]}'
)


def _jsonl_log(tmp_path: Path) -> Path:
    log = tmp_path / "bodies.jsonl"
    log.write_text(f'{{"method": "POST", "path": "/ok/1", "body": {BODY_TEXT}}}\n')
    return log


def _har_log(tmp_path: Path) -> Path:
    post = {"mimeType": "application/json", "text": BODY_TEXT}
    request = {"method": "POST", "url": "http://h/ok/1", "headers": [], "postData": post}
    entry = {"startedDateTime": "2026-11-27T15:00:00Z", "request": request}
    log = tmp_path / "bodies.har"
    log.write_bytes(orjson.dumps({"log": {"version": "1.2", "entries": [entry]}}))
    return log


def _gor_log(tmp_path: Path) -> Path:
    body = BODY_TEXT.encode()
    head = (
        b"POST /ok/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    log = tmp_path / "bodies.gor"
    log.write_bytes(b"1 0c2a 1795791600000000000 -1\n" + head + body + SEPARATOR)
    return log


@pytest.mark.parametrize("make_log", [_jsonl_log, _har_log, _gor_log], ids=["jsonl", "har", "gor"])
def test_json_bodies_go_out_and_show_exactly_as_recorded(
    tmp_path: Path, tag: str, make_log: object
) -> None:
    config, primary, candidate = recorded_config(tmp_path, tag)
    assert callable(make_log)
    result = run_faults(config, tmp_path, str(make_log(tmp_path)))

    summary = check_run(result, tag, 0)
    assert (summary["requests"], summary["matched"]) == (1, 1)
    for record in (primary, candidate):
        (request,) = requests_at(record)
        assert request["body"] == BODY_TEXT  # byte for byte: digits, order, spaces, escapes
    # The event's `request` shows the body as sent: its text is in the line unchanged.
    (line,) = [ln for ln in result.stdout.splitlines() if b'"event":"match"' in ln]
    assert b'"body":' + BODY_TEXT.encode() in line
    assert json.loads(line)["request"]["body"]["order"] == {"b": 1, "a": 2}


# --- no cookie jar ----------------------------------------------------------------------------


@pytest.mark.parametrize("recorded_auth", ["keep", "drop"])
def test_a_set_cookie_from_a_target_never_reaches_a_later_request(
    tmp_path: Path, tag: str, recorded_auth: str
) -> None:
    # Both servers answer /set-cookie with `Set-Cookie: sid=<variant>-token`. Before, the
    # client's jar sent it to both targets on every later record, even with recorded_auth
    # = "drop". Each request must carry exactly the Cookie its record holds.
    # By a host name: a jar keeps no cookie of an IP address, which would hide the jar.
    extra = f'[replay]\nrecorded_auth = "{recorded_auth}"\nconcurrency = 1\n'
    config, primary, candidate = recorded_config(tmp_path, tag, extra)
    config.write_text(config.read_text().replace("http://127.0.0.1:0", "http://localhost:0"))
    records: list[dict[str, object]] = [{"method": "GET", "path": "/set-cookie"}]
    records += [{"method": "GET", "path": f"/ok/{n}"} for n in range(3)]
    records += [{"method": "GET", "path": "/ok/own", "headers": {"Cookie": "mine=1"}}]
    records += [{"method": "GET", "path": "/set-cookie"}, {"method": "GET", "path": "/ok/last"}]
    log = write_jsonl(tmp_path / "cookies.jsonl", records)

    # No calibration: the servers must see each record once, in order.
    result = run_faults(config, tmp_path, str(log), "--concurrency", "1", "--no-calibration")

    summary = check_run(result, tag, 0)  # headers are not compared by default
    assert (summary["requests"], summary["matched"]) == (7, 7)
    own = [] if recorded_auth == "drop" else ["mine=1"]
    for record in (primary, candidate):
        seen = requests_at(record)
        assert [r["target"] for r in seen] == [r["path"] for r in records]
        for request, sent in zip(seen, records, strict=True):
            headers = request["headers"]
            assert isinstance(headers, list)
            cookies = [v for k, v in headers if k.lower() == "cookie"]
            assert cookies == (own if sent["path"] == "/ok/own" else []), (record, request)


# --- .gor framing -----------------------------------------------------------------------------


def _payload(head: bytes, rest: bytes = b"") -> bytes:
    return b"1 0c2a 1795791600000000000 -1\n" + head + rest + SEPARATOR


def test_a_gor_request_without_a_length_has_no_body_and_leftovers_are_input_errors(
    tmp_path: Path, tag: str
) -> None:
    # Before, a head with neither Content-Length nor Transfer-Encoding took every byte up to
    # the next separator as its body: a second message merged into the first was sent inside it.
    bare = b"GET /ok/%d HTTP/1.1\r\nHost: h\r\n\r\n"
    log = tmp_path / "capture.gor"
    log.write_bytes(
        _payload(bare % 1)  # no body: fine
        + _payload(bare % 2, b"GET /ok/merged HTTP/1.1\r\nHost: h\r\n\r\n")  # two merged
        + _payload(bare % 3, b"stray bytes")  # leftover bytes
        + _payload(b"POST /ok/4 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n", b"{}")
        + _payload(bare % 5, b"\r\n")  # a line end before the separator is no body
    )
    config, primary, candidate = recorded_config(tmp_path, tag)

    result = run_faults(config, tmp_path, str(log), "--no-calibration")  # each record once

    summary = check_run(result, tag, 1)  # input errors over the default threshold of 0
    assert (summary["requests"], summary["matched"], summary["input_errors"]) == (3, 3, 2)
    problems = [e["message"] for e in result.of("input_error")]
    assert all("neither Content-Length nor Transfer-Encoding" in m for m in problems), problems
    for record in (primary, candidate):
        seen = requests_at(record)
        assert sorted((str(r["target"]), str(r["body"])) for r in seen) == [
            ("/ok/1", ""),
            ("/ok/4", "{}"),
            ("/ok/5", ""),
        ]
