"""`shadow run --recorded`: a HAR, a GoReplay and a JSONL capture with the primary's answers,
compared with a real candidate alone (no primary runs), and `shadow convert --keep-responses`."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import HELPERS, free_port, run_shadow, serving, write_jsonl

pytestmark = pytest.mark.e2e

RECORDED_AT = "2024-05-01T10:00:00+00:00"  # the legacy's clock when the capture was made


@pytest.fixture(scope="module")
def candidate() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The module's tests can take minutes on a loaded machine: the server must outlive them
    # (it still exits by itself, should the fixture's teardown never run).
    argv = [sys.executable, str(HELPERS / "answer_server.py"), "--port", str(port)]
    argv += ["--lifetime", "900"]
    with serving(argv, url + "/health"):
        yield url


def user(number: int, name: str) -> dict[str, Any]:
    return {"id": number, "name": name, "at": RECORDED_AT}


def har_entry(path: str, status: int, body: bytes, gzipped: bool = False) -> dict[str, Any]:
    headers = [{"name": "Content-Type", "value": "application/json"}]
    content: dict[str, Any] = {"mimeType": "application/json", "size": len(body)}
    if gzipped:  # some captures keep the compressed bytes, as base64
        headers.append({"name": "Content-Encoding", "value": "gzip"})
        content.update(text=base64.b64encode(gzip.compress(body)).decode(), encoding="base64")
    else:
        content["text"] = body.decode()
    return {
        "startedDateTime": "2024-05-01T10:00:00.000Z",
        "request": {"method": "GET", "url": f"http://legacy.example{path}", "headers": []},
        "response": {"status": status, "headers": headers, "content": content},
    }


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "shadow.toml"
    # No primary: under --recorded only the candidate is needed. `/at` is the clock.
    config.write_text(f'[targets.candidate]\nurl = "{url}"\n\n[compare]\nignore = ["/at"]\n')
    return config


def write_har(tmp_path: Path) -> Path:
    entries = [
        har_entry("/users/1", 200, json.dumps(user(1, "ada")).encode()),
        har_entry("/users/2", 200, json.dumps(user(2, "bob")).encode()),
        har_entry("/users/9", 404, b'{"error": "not found"}'),
        har_entry("/plain", 200, json.dumps({"items": [1, 2, 3]}).encode(), gzipped=True),
    ]
    path = tmp_path / "capture.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    return path


def jsonl_records() -> list[dict[str, Any]]:
    json_type = [["Content-Type", "application/json"]]
    return [
        {"method": "GET", "path": "/users/1", "response": {"status": 200, "headers": json_type, "body": user(1, "ada")}},
        {"method": "GET", "path": "/users/2", "response": {"status": 200, "headers": json_type, "body": user(2, "bob")}},
        {"method": "GET", "path": "/users/9", "response": {"status": 404, "headers": json_type, "body_text": '{"error": "not found"}'}},
        {"method": "GET", "path": "/plain", "response": {"status": 200, "headers": json_type, "body_b64": base64.b64encode(b'{"items":[1,2,3]}').decode()}},
    ]  # fmt: skip


def assert_one_real_difference(result: Any) -> None:
    assert result.returncode == 1, result.stderr
    mismatches = result.of("mismatch")
    assert len(mismatches) == 1, result.events
    diffs = mismatches[0]["diffs"]
    assert [(d["path"], d["primary"], d["candidate"]) for d in diffs] == [
        ("/name", "bob", "bob (rewrite)")
    ]
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["mismatched"]) == (4, 3, 1)
    assert (summary["errors"], summary["input_errors"]) == (0, 0)
    assert summary["recorded"] is True
    assert summary["calibration"] is None
    assert "noise could not be calibrated" in result.stderr
    assert not result.of("server_ready") or {e["target"] for e in result.of("server_ready")} == {
        "candidate"
    }


def test_a_har_capture_is_compared_with_the_candidate_alone(tmp_path: Path, candidate: str) -> None:
    har = write_har(tmp_path)
    result = run_shadow("run", "--recorded", "-c", str(write_config(tmp_path, candidate)), str(har))
    assert_one_real_difference(result)


GOR_SEPARATOR = "\n\U0001f435\U0001f648\U0001f649\n".encode()


def gor_payload(kind: int, pid: str, head: str, body: bytes = b"", latency: int = -1) -> bytes:
    header = f"{kind} {pid} 1714557600000000000 {latency}\n".encode()
    return header + head.encode() + b"\r\n\r\n" + body + GOR_SEPARATOR


def gor_answer(pid: str, status: int, body: bytes, gzipped: bool = False) -> bytes:
    reason = {200: "OK", 404: "Not Found"}[status]
    extra = "Content-Encoding: gzip\r\n" if gzipped else ""
    body = gzip.compress(body) if gzipped else body
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}"
    )
    return gor_payload(2, pid, head, body, latency=3_000_000)


def write_gor(tmp_path: Path) -> Path:
    """A GoReplay capture (`--output-file` with `--input-raw-track-response`): each request
    (type 1), the legacy's response (type 2) and one replayed response (type 3, ignored)."""
    ids = [f"{n:024x}" for n in range(1, 5)]
    paths = ["/users/1", "/users/2", "/users/9", "/plain"]
    requests = [gor_payload(1, i, f"GET {p} HTTP/1.1\r\nHost: legacy.example") for i, p in zip(ids, paths, strict=True)]  # fmt: skip
    answers = [
        gor_answer(ids[0], 200, json.dumps(user(1, "ada")).encode()),
        gor_answer(ids[1], 200, json.dumps(user(2, "bob")).encode()),
        gor_answer(ids[2], 404, b'{"error": "not found"}'),
        gor_answer(ids[3], 200, json.dumps({"items": [1, 2, 3]}).encode(), gzipped=True),
    ]
    replayed = gor_payload(3, ids[1], "HTTP/1.1 500 Oops\r\nContent-Length: 0")
    # GoReplay writes a response after its request, not always right after it.
    order = [requests[0], requests[1], answers[0], replayed, answers[1], requests[2]]
    order += [answers[2], requests[3], answers[3]]
    path = tmp_path / "capture.gor"
    path.write_bytes(b"".join(order))
    return path


def test_a_gor_capture_is_compared_with_the_candidate_alone(tmp_path: Path, candidate: str) -> None:
    gor = write_gor(tmp_path)
    result = run_shadow("run", "--recorded", "-c", str(write_config(tmp_path, candidate)), str(gor))
    assert_one_real_difference(result)


def test_a_gor_response_without_its_request_or_twice_is_an_input_error(
    tmp_path: Path, candidate: str
) -> None:
    gor = write_gor(tmp_path)
    orphan = gor_answer("f" * 24, 200, b"{}")
    again = gor_answer(f"{1:024x}", 200, json.dumps(user(1, "ada")).encode())
    gor.write_bytes(gor.read_bytes() + again + orphan)
    lines_before = gor.read_bytes()[: -len(again + orphan)].count(b"\n")
    config = str(write_config(tmp_path, candidate))
    result = run_shadow("run", "--recorded", "-c", config, str(gor))
    second, missing = sorted(result.of("input_error"), key=lambda e: e["line"])
    assert (second["source"], second["line"]) == (str(gor), lines_before + 1)
    assert f"a second response to request {1:024x} (the first, line " in second["message"]
    assert missing["line"] == lines_before + 1 + again.count(b"\n")
    assert missing["message"] == f"a response to request {'f' * 24}, which is not in the capture"
    summary = result.summary
    assert (summary["requests"], summary["mismatched"], summary["input_errors"]) == (4, 1, 2)
    # The capture replayed against two targets reads its requests only, as before.
    plain = run_shadow("run", "--primary", candidate, "--candidate", candidate, str(gor))
    assert (plain.summary["requests"], plain.summary["input_errors"]) == (4, 0)


def test_convert_keeps_the_answers_of_a_gor_capture(tmp_path: Path) -> None:
    converted = run_shadow("convert", "--keep-responses", str(write_gor(tmp_path)))
    assert converted.returncode == 0, converted.stderr
    lines = [json.loads(line) for line in converted.stdout.splitlines()]
    assert [line["response"]["status"] for line in lines] == [200, 200, 404, 200]
    assert lines[1]["response"]["body"] == user(2, "bob")
    assert lines[1]["response"]["latency_ms"] == 3.0
    assert lines[3]["response"]["body"] == {"items": [1, 2, 3]}  # inflated from gzip


def test_a_jsonl_capture_is_compared_with_the_candidate_alone(
    tmp_path: Path, candidate: str
) -> None:
    log = write_jsonl(tmp_path / "capture.jsonl", jsonl_records())
    result = run_shadow("run", "--recorded", "-c", str(write_config(tmp_path, candidate)), str(log))
    assert_one_real_difference(result)


def test_without_the_rule_the_recorded_clock_is_a_difference(
    tmp_path: Path, candidate: str
) -> None:
    # --candidate alone, no config and so no rule: nothing calibrates the clock away.
    log = write_jsonl(tmp_path / "capture.jsonl", jsonl_records()[:1])
    result = run_shadow("run", "--recorded", "--candidate", candidate, str(log))
    assert result.returncode == 1, result.stderr
    (mismatch,) = result.of("mismatch")
    assert [d["path"] for d in mismatch["diffs"]] == ["/at"]


def test_a_record_without_an_answer_is_an_input_error(tmp_path: Path, candidate: str) -> None:
    records = [
        *jsonl_records()[2:],
        {"method": "GET", "path": "/users/3"},
        {"method": "GET", "path": "/users/1", "response": {"status": 99}},
    ]
    log = write_jsonl(tmp_path / "capture.jsonl", records)
    result = run_shadow("run", "--recorded", "--candidate", candidate, str(log))
    assert result.returncode == 1, result.stderr
    missing, bad = result.of("input_error")
    assert missing["line"] == 3
    assert "GET /users/3: no recorded answer" in missing["message"]
    assert bad["line"] == 4
    assert "its recorded answer cannot be used: 'response.status'" in bad["message"]
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["input_errors"]) == (2, 2, 2)
    # Without --recorded the answers are not read: every request is replayed as before.
    plain = run_shadow("run", "--primary", candidate, "--candidate", candidate, str(log))
    assert (plain.summary["requests"], plain.summary["input_errors"]) == (4, 0)


def test_without_recorded_a_primary_is_still_required(tmp_path: Path, candidate: str) -> None:
    log = write_jsonl(tmp_path / "capture.jsonl", jsonl_records())
    result = run_shadow("run", "--candidate", candidate, str(log))
    assert result.returncode == 2
    assert "targets.primary" in result.stderr


def test_convert_keeps_the_answers_for_a_recorded_run(tmp_path: Path, candidate: str) -> None:
    har = write_har(tmp_path)
    converted = run_shadow("convert", "--keep-responses", str(har))
    assert converted.returncode == 0, converted.stderr
    lines = [json.loads(line) for line in converted.stdout.splitlines()]
    assert [line["response"]["status"] for line in lines] == [200, 200, 404, 200]
    assert lines[1]["response"]["body"] == user(2, "bob")  # JSON, for jq
    assert lines[3]["response"]["body"] == {"items": [1, 2, 3]}  # inflated from gzip
    plain = run_shadow("convert", str(har))
    assert all("response" not in json.loads(line) for line in plain.stdout.splitlines())
    log = tmp_path / "reviewed.jsonl"
    log.write_bytes(converted.stdout)
    result = run_shadow("run", "--recorded", "-c", str(write_config(tmp_path, candidate)), str(log))
    assert_one_real_difference(result)


def test_recorded_runs_over_workers(tmp_path: Path, candidate: str) -> None:
    records = [{**r, "lane": str(i)} for i, r in enumerate(jsonl_records() * 2)]
    log = write_jsonl(tmp_path / "capture.jsonl", records)
    config = str(write_config(tmp_path, candidate))
    result = run_shadow("run", "--recorded", "-c", config, "--workers", "2", str(log))
    assert result.returncode == 1, result.stderr
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["mismatched"]) == (8, 6, 2)
    assert summary["recorded"] is True
    assert [d["path"] for e in result.of("mismatch") for d in e["diffs"]] == ["/name", "/name"]


def test_recorded_refuses_a_primary_to_send_to(tmp_path: Path, candidate: str) -> None:
    log = write_jsonl(tmp_path / "capture.jsonl", jsonl_records())
    result = run_shadow(
        "run", "--recorded", "--primary", candidate, "--candidate", candidate, str(log)
    )
    assert result.returncode == 2
    assert "--recorded compares with the capture's answers" in result.stderr


def test_a_method_left_out_is_skipped_not_an_input_error(tmp_path: Path, candidate: str) -> None:
    records = [*jsonl_records()[:1], {"method": "POST", "path": "/users", "body": {"n": 1}}]
    log = write_jsonl(tmp_path / "capture.jsonl", records)
    config = write_config(tmp_path, candidate)
    config.write_text(config.read_text() + '\n[replay]\nmethods = ["GET"]\n')
    result = run_shadow("run", "--recorded", "-c", str(config), str(log))
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert (summary["requests"], summary["skipped"], summary["input_errors"]) == (1, 1, 0)


def test_recorded_refuses_synth(tmp_path: Path, candidate: str) -> None:
    result = run_shadow("run", "--recorded", "--candidate", candidate, "--synth", "3")
    assert result.returncode == 2
    assert "--synth records have none" in result.stderr
