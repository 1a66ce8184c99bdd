"""Inputs that misbehave: adversarial bytes through every parser, logs that grow while read,
unreadable files among several, and records far over the size limit.

The per-format fuzz tests live beside each reader (tests/test_sources.py, tests/test_formats.py);
these add what they do not cover: format detection in front of every reader, gzip cut short,
the event files `shadow report` reads, and the same faults end to end through `shadow run`.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shadow.compare.diff import parse_json_body
from shadow.errors import InputError
from shadow.model import InputProblem, Record, UnreadableInput
from shadow.report.read import InputStats, read_events
from shadow.sources.opening import iter_inputs, validate_inputs
from tests.faults.helpers import check_run, fault_config, log_of, run_faults
from tests.support import ROOT, assert_accounted, assert_no_orphans, event_of, events_of, shadow_cmd

GOOD = b'{"method": "GET", "path": "/ok/1"}\n'
# Starts of every format, so the fuzzer reaches each reader through detection.
PREFIXES = [
    b"",
    GOOD,
    b'{"log": {"entries": [{"request": {"method": "GET", "url": "http://h/a"}}',
    b"1 0c2a 1795791600000000000 -1\nGET /a HTTP/1.1\r\n",
    b'127.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"\n',
    b"\x1f\x8b",
    b"\xef\xbb\xbf",
]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(PREFIXES), st.binary(max_size=300), st.booleans())
def test_any_bytes_through_detection_never_raise(
    tmp_path: Path, prefix: bytes, tail: bytes, compress: bool
) -> None:
    data = prefix + tail
    log = tmp_path / "fuzz.log"
    log.write_bytes(gzip.compress(data) if compress else data)
    try:
        validate_inputs([str(log)])
    except InputError as exc:
        assert str(log) in str(exc)
    for item in iter_inputs([str(log)], 256):
        assert isinstance(item, Record | InputProblem)


def test_gzip_cut_short_keeps_the_records_before_the_cut(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(GOOD for _ in range(2000)), compresslevel=1)
    log = tmp_path / "cut.jsonl.gz"
    log.write_bytes(whole[: len(whole) // 2])
    validate_inputs([str(log)])  # its start is fine: the cut shows only when read
    items = list(iter_inputs([str(log)], 1 << 20))
    records = [i for i in items if isinstance(i, Record)]
    assert 0 < len(records) < 2000
    assert isinstance(items[-1], UnreadableInput) and "read failed" in items[-1].message


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.binary(max_size=60)
        | st.sampled_from(
            [
                b'{"event": "run_finished", "requests": "many"}',
                b'{"event": 1}',
                b"[" * 5000 + b"]" * 5000,
                b'{"event": "x", "v": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                b'{"event": "x", "n": 1e400, "s": "\\ud800"}',
            ]
        ),
        max_size=6,
    )
)
def test_report_reads_any_event_file_without_raising(lines: list[bytes]) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"shadow-fuzz-{os.getpid()}.events"
    path.write_bytes(b'{"event": "run_started", "run_id": "r"}\n' + b"\n".join(lines))
    try:
        stats = InputStats(str(path))
        events = list(read_events(str(path), stats))
        assert events and stats.events == len(events)
    finally:
        path.unlink()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.sampled_from([b"[" * 100_000, b"1e999999", b"-0" * 50]))
def test_any_response_body_parses_or_is_not_json(body: bytes) -> None:
    ok, _ = parse_json_body(body)
    assert ok in (True, False)


# -- a log that grows while it is read ----------------------------------------------------------


def test_lines_appended_while_reading_are_read_and_a_half_written_one_is_an_input_error(
    tmp_path: Path,
) -> None:
    log = tmp_path / "growing.jsonl"
    log.write_bytes(GOOD * 3)
    items = iter_inputs([str(log)], 1 << 20)
    assert isinstance(next(items), Record)
    with log.open("ab") as out:
        out.write(GOOD * 2 + b'{"method": "GET", "pa')  # a writer caught mid-line
    rest = list(items)
    assert sum(isinstance(i, Record) for i in rest) == 4
    assert isinstance(rest[-1], InputProblem) and rest[-1].line == 6


@pytest.mark.e2e
def test_a_log_piped_in_while_it_is_written_streams_and_adds_up(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag)
    proc = subprocess.Popen(
        shadow_cmd(
            "run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all", "-"
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    for n in range(5):
        proc.stdin.write(b'{"method": "GET", "path": "/ok/%d"}\n' % n)
    proc.stdin.flush()
    seen = []
    while len([e for e in seen if e["event"] == "match"]) < 5:  # answered before stdin ends
        line = proc.stdout.readline()
        assert line, "shadow ended early"
        seen.append(event_of(line))
    rest, stderr = proc.communicate(GOOD * 3 + b"not json\n" + b'{"method": "GET"', timeout=60)
    events = seen + events_of(rest)
    summary = events[-1]
    assert summary["event"] == "run_finished", stderr.decode()
    assert (summary["requests"], summary["matched"], summary["input_errors"]) == (8, 8, 2)
    assert_accounted(summary)
    assert proc.returncode == 1 and b"Traceback" not in stderr
    assert_no_orphans(tag)


# -- unreadable inputs ------------------------------------------------------------------------


def _unreadable(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "missing.jsonl"
    if kind == "dangling-symlink":
        link = tmp_path / "link.jsonl"
        link.symlink_to(tmp_path / "gone.jsonl")
        return link
    if kind == "directory":
        folder = tmp_path / "folder.jsonl"
        folder.mkdir()
        return folder
    if kind == "under-a-file":
        (tmp_path / "plain").write_bytes(GOOD)
        return tmp_path / "plain" / "log.jsonl"
    if kind == "not-gzip":
        fake = tmp_path / "fake.jsonl.gz"
        fake.write_bytes(GOOD)
        return fake
    unknown = tmp_path / "notes.txt"
    unknown.write_bytes(b"dear diary\n")
    return unknown


@pytest.mark.e2e
@pytest.mark.parametrize(
    "kind", ["missing", "dangling-symlink", "directory", "under-a-file", "not-gzip", "unknown"]
)
def test_an_unreadable_log_among_several_is_exit_2_before_anything_starts(
    tmp_path: Path, tag: str, kind: str
) -> None:
    config = fault_config(tmp_path, tag)
    good = log_of(tmp_path, ["/ok/1"])
    bad = _unreadable(tmp_path, kind)
    result = run_faults(config, tmp_path, str(good), str(bad), str(good))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == b""  # nothing started: no event, no server
    assert not (tmp_path / "run").exists()
    assert_no_orphans(tag)


def test_a_log_gone_after_the_check_is_an_input_error_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(GOOD)
    second.write_bytes(GOOD)
    validate_inputs([str(first), str(second)])
    second.unlink()  # deleted between the check and the read
    items = list(iter_inputs([str(first), str(second), str(first)], 1 << 20))
    assert [type(i) for i in items] == [Record, UnreadableInput, Record]
    assert items[1].source == str(second)


# -- records far over the size limit ------------------------------------------------------------

HUGE_MB = 200
LIMIT = 1 << 20


def _huge_log(tmp_path: Path, fmt: str) -> Path:
    """A log of `fmt` whose second record is HUGE_MB MiB, between two good ones."""
    huge = b"a" * (HUGE_MB << 20)
    if fmt == "jsonl":
        body = GOOD + b'{"method": "GET", "path": "/' + huge + b'"}\n' + GOOD
    elif fmt == "access":
        line = b'127.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /ok/%s HTTP/1.1" 200 1 "-" "-"\n'
        body = line % b"1" + line % huge + line % b"2"
    else:
        sep = "\n\U0001f435\U0001f648\U0001f649\n".encode()
        request = b"1 %d 1795791600000000000 -1\nGET /ok/%s HTTP/1.1\r\nHost: h\r\n\r\n"
        body = request % (1, b"1") + sep + request % (2, huge) + sep + request % (3, b"2") + sep
    path = tmp_path / f"huge.{'log' if fmt == 'access' else fmt}"
    path.write_bytes(body)
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["jsonl", "access", "gor"])
def test_a_record_far_over_the_limit_is_an_input_error_never_read_whole(
    tmp_path: Path, tag: str, fmt: str
) -> None:
    config = fault_config(tmp_path, tag, extra=f"[replay]\nmax_record_bytes = {LIMIT}\n")
    log = _huge_log(tmp_path, fmt)
    argv = shadow_cmd(
        "run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all", str(log)
    )
    # Measured in a fresh parent: the peak RSS of its children is shadow's (or a server's).
    probe = (
        "import resource, subprocess, sys; "
        "p = subprocess.run(sys.argv[1:], capture_output=True); "
        "sys.stdout.buffer.write(p.stdout); "
        "sys.stderr.write(f'{p.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        check=False,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    returncode, peak_kb = (int(x) for x in proc.stderr.decode().split()[-2:])
    events = [orjson.loads(x) for x in proc.stdout.splitlines()]
    summary = events[-1]
    assert returncode == 1 and summary["event"] == "run_finished"
    assert (summary["requests"], summary["matched"], summary["input_errors"]) == (2, 2, 1)
    (problem,) = [e for e in events if e["event"] == "input_error"]
    assert "longer than" in problem["message"] and problem["line"] >= 2
    assert peak_kb < (HUGE_MB << 10) / 2, f"peak RSS {peak_kb} KiB for a {HUGE_MB} MiB record"
    assert_no_orphans(tag)


@pytest.mark.e2e
def test_a_har_entry_over_the_limit_is_an_input_error_naming_it(tmp_path: Path, tag: str) -> None:
    def entry(path: str, text: str | None = None) -> dict[str, object]:
        request: dict[str, object] = {"method": "POST" if text else "GET", "url": f"http://h{path}"}
        if text is not None:
            request["postData"] = {"mimeType": "text/plain", "text": text}
        return {"request": request}

    entries = [entry("/ok/1"), entry("/ok/2", "x" * (2 * LIMIT)), entry("/ok/3")]
    log = tmp_path / "big.har"
    log.write_text(json.dumps({"log": {"entries": entries}}))
    config = fault_config(tmp_path, tag, extra=f"[replay]\nmax_record_bytes = {LIMIT}\n")
    result = run_faults(config, tmp_path, str(log))
    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["input_errors"]) == (2, 1)
    assert "entry 2" in result.of("input_error")[0]["message"]
