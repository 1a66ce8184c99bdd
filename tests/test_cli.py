"""End to end through the command line, as a subprocess, against real servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support import (
    ROOT,
    assert_accounted,
    assert_no_orphans,
    managed_config,
    run_shadow,
    shadow_cmd,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

ITEMS = [{"method": "GET", "path": f"/items/{n}", "id": f"i{n}"} for n in range(20)]


def test_demo_reports_exactly_the_two_seeded_bugs(tmp_path: Path) -> None:
    result = run_shadow("demo", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    events = result.events
    assert events[0]["event"] == "run_started" and events[0]["schema"] == 1
    assert events[-1]["event"] == "run_finished"
    found = {
        (
            m["endpoint"],
            d["path"],
            d["kind"],
            orjson.dumps(d["primary"]),
            orjson.dumps(d["candidate"]),
        )
        for m in result.of("mismatch")
        for d in m["diffs"]
    }
    assert found == {
        (
            "Check Bans",
            "/0/end_time",
            "value",
            b'"2025-06-01T10:02:39.584Z"',
            b'"2025-06-01T10:02:39.584855Z"',
        ),
        ("GTC Stake", "/items/0/last_updated_in_block", "type", b"12345678", b'"12345678"'),
        ("GTC Stake", "/items/1/last_updated_in_block", "type", b"12401234", b'"12401234"'),
    }
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["mismatched"]) == (13, 11, 2)
    assert summary["errors"] == 0 and summary["exit_code"] == 1
    assert {e["target"] for e in result.of("server_ready")} == {"primary", "candidate"}
    assert all(e["expected"] for e in result.of("server_exited"))
    assert (tmp_path / "run" / "primary.log").read_text().startswith("demo legacy")
    # Secrets never reach stdout or stderr.
    for secret in ("demo-internal-key", "demo-secret-key-not-for-production", "Bearer ey"):
        assert secret not in result.stdout.decode() + result.stderr


def test_attach_mode_streams_mismatches_and_summary(
    fake_pair: tuple[str, str], tmp_path: Path
) -> None:
    log = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    primary, candidate = fake_pair
    result = run_shadow("run", "--primary", primary, "--candidate", candidate, str(log))
    assert result.returncode == 1, result.stderr
    mismatches = result.of("mismatch")
    assert sorted(m["seq"] for m in mismatches) == [0, 5, 10, 15]
    assert mismatches[0]["diffs"][0]["kind"] == "type"
    assert mismatches[0]["diffs"][0]["path"] == "/n"
    assert mismatches[0]["endpoint"] == "GET /items/{int}"
    assert mismatches[0]["request"] == {
        "method": "GET",
        "path": mismatches[0]["request"]["path"],
        "id": mismatches[0]["id"],
    }
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["mismatched"]) == (20, 16, 4)
    assert summary["by_endpoint"]["GET /items/{int}"]["diffs"] == {"/n": 4}
    assert set(summary["latency_ms"]["primary"]) == {"p50", "p90", "p99", "max"}
    assert_accounted(summary)


def test_stdin_gz_and_several_inputs(fake_pair: tuple[str, str], tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", ITEMS[:10])
    second = tmp_path / "b.jsonl.gz"
    second.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in ITEMS[10:])))
    stdin = b"".join(orjson.dumps(r) + b"\n" for r in ITEMS[:3])
    primary, candidate = fake_pair
    result = run_shadow(
        "run",
        "--primary",
        primary,
        "--candidate",
        candidate,
        str(first),
        str(second),
        "-",
        stdin=stdin,
    )
    summary = result.summary
    assert summary["requests"] == 23
    assert summary["mismatched"] == 5  # 0, 5 from a; 10, 15 from b; 0 again from stdin
    assert result.events[0]["sources"] == [str(first), str(second), "<stdin>"]


def test_malformed_lines_are_counted_and_the_run_goes_on(
    fake_pair: tuple[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "mixed.jsonl"
    log.write_bytes(
        b'{"method": "GET", "path": "/items/1"}\n'
        b"not json\n"
        b'{"path": "/items/2"}\n'
        b"\n"
        b'{"method": "GET", "path": "/items/3", "body": 1, "body_text": "x"}\n'
        b'{"method": "GET", "path": "/items/4"}\n'
    )
    primary, candidate = fake_pair
    result = run_shadow("run", "--primary", primary, "--candidate", candidate, str(log))
    problems = [(e["source"], e["line"]) for e in result.of("input_error")]
    assert problems == [(str(log), 2), (str(log), 3), (str(log), 5)]
    summary = result.summary
    assert summary["input_errors"] == 3 and summary["requests"] == 2 and summary["matched"] == 2
    assert result.returncode == 1  # input errors fail the gate unless thresholds allow them


def test_emit_all_and_output_file(fake_pair: tuple[str, str], tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "items.jsonl", ITEMS[:6])
    out = tmp_path / "events.jsonl"
    primary, candidate = fake_pair
    result = run_shadow(
        "run",
        "--primary",
        primary,
        "--candidate",
        candidate,
        "--emit",
        "all",
        "--output",
        str(out),
        str(log),
    )
    assert result.stdout == b""
    kinds = [orjson.loads(line)["event"] for line in out.read_bytes().splitlines()]
    assert kinds.count("match") == 4 and kinds.count("mismatch") == 2


def test_lanes_keep_order_under_concurrency(tmp_path: Path, tag: str) -> None:
    records = [
        {"method": "POST", "path": f"/lane/{lane}/{i}", "lane": f"L{lane}", "body": {"i": i}}
        for i in range(12)
        for lane in range(4)
    ]
    log = write_jsonl(tmp_path / "lanes.jsonl", records)
    config = managed_config(tmp_path, tag)
    result = run_shadow(
        "run",
        "-c",
        str(config),
        "--concurrency",
        "16",
        "--emit",
        "all",
        "--run-dir",
        str(tmp_path / "run"),
        str(log),
    )
    statuses = {(e["status"]["primary"], e["status"]["candidate"]) for e in result.of("match")}
    assert statuses == {(200, 200)}, result.stdout[:2000]
    assert result.summary["matched"] == 48 and result.returncode == 0
    assert_no_orphans(tag)


def test_head_closing_stdout_ends_the_run_cleanly(tmp_path: Path, tag: str) -> None:
    log = write_jsonl(
        tmp_path / "many.jsonl",
        [{"method": "GET", "path": f"/items/{n % 50}"} for n in range(3000)],
    )
    config = managed_config(tmp_path, tag)
    proc = subprocess.Popen(
        shadow_cmd(
            "run", "-c", str(config), "--rate", "300", "--run-dir", str(tmp_path / "run"), str(log)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert orjson.loads(first)["event"] == "run_started"
    proc.stdout.close()  # like `| head -1`
    _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr.decode(), stderr.decode()
    assert proc.returncode in (0, 1)
    assert_no_orphans(tag)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_writes_the_summary_and_stops_servers(
    tmp_path: Path, tag: str, sig: signal.Signals
) -> None:
    log = write_jsonl(
        tmp_path / "slow.jsonl", [{"method": "GET", "path": "/slow/300"} for _ in range(2000)]
    )
    config = managed_config(tmp_path, tag)
    proc = subprocess.Popen(
        shadow_cmd(
            "run",
            "-c",
            str(config),
            "--concurrency",
            "4",
            "--emit",
            "all",
            "--run-dir",
            str(tmp_path / "run"),
            str(log),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    lines = []
    while len([x for x in lines if b'"event":"match"' in x]) < 4:
        line = proc.stdout.readline()
        assert line, "shadow ended early"
        lines.append(line)
    proc.send_signal(sig)
    rest, stderr = proc.communicate(timeout=30)
    events = [orjson.loads(x) for x in [*lines, *rest.splitlines()] if x.strip()]
    summary = events[-1]
    assert summary["event"] == "run_finished", stderr.decode()
    assert summary["interrupted"] is True
    assert_accounted(summary)
    assert summary["requests"] < 2000 and summary["errors"] == 0  # in-flight ones finished
    assert "Traceback" not in stderr.decode(), stderr.decode()
    assert_no_orphans(tag)


def test_second_signal_cancels_in_flight_and_counts_them(tmp_path: Path, tag: str) -> None:
    log = write_jsonl(
        tmp_path / "slow.jsonl", [{"method": "GET", "path": "/slow/5000"} for _ in range(50)]
    )
    config = managed_config(tmp_path, tag)
    proc = subprocess.Popen(
        shadow_cmd(
            "run",
            "-c",
            str(config),
            "--concurrency",
            "4",
            "--timeout",
            "20",
            "--run-dir",
            str(tmp_path / "run"),
            str(log),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    while b"server_ready" not in proc.stdout.readline() or False:
        pass
    proc.stdout.readline()  # the second server_ready
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=30)
    events = [orjson.loads(x) for x in rest.splitlines() if x.strip()]
    summary = events[-1]
    assert summary["event"] == "run_finished", stderr.decode()
    cancelled = [e for e in events if e["event"] == "error" and e["error"] == "cancelled"]
    assert summary["errors"] == len(cancelled) > 0
    assert_accounted(summary)
    assert_no_orphans(tag)


def test_port_taken_is_exit_2_naming_the_port(tmp_path: Path, tag: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f"""
[targets.primary]
url = "http://127.0.0.1:{port}"
command = ["{{python}}", "-c", "print('never started')", "{tag}"]
[targets.candidate]
url = "http://127.0.0.1:0"
command = ["{{python}}", "-c", "print('never started')", "{tag}"]
""")
        log = write_jsonl(tmp_path / "l.jsonl", ITEMS[:1])
        result = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "r"), str(log))
    assert result.returncode == 2
    assert str(port) in result.stderr and "primary" in result.stderr


def test_server_exiting_at_start_is_exit_3_with_the_log_tail(tmp_path: Path, tag: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"""
[targets.primary]
url = "http://127.0.0.1:0"
command = ["{{python}}", "-c", "import sys; print('cannot bind database'); sys.exit(4)", "{tag}"]
[targets.candidate]
url = "http://127.0.0.1:0"
command = ["{{python}}", "-c", "import time; time.sleep(30)", "{tag}"]
health = {{ timeout_s = 10 }}
""")
    log = write_jsonl(tmp_path / "l.jsonl", ITEMS[:1])
    result = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "r"), str(log))
    assert result.returncode == 3, result.stderr
    exited = [e for e in result.of("server_exited") if e["target"] == "primary"]
    assert exited and exited[0]["returncode"] == 4 and not exited[0]["expected"]
    assert "cannot bind database" in exited[0]["log_tail"]
    assert result.summary["exit_code"] == 3
    assert_no_orphans(tag)


def test_server_dying_mid_run_is_exit_3_and_nothing_is_lost(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag, candidate_args=', "--die-after", "40"')
    log = write_jsonl(
        tmp_path / "l.jsonl", [{"method": "GET", "path": f"/items/{n % 7}"} for n in range(400)]
    )
    result = run_shadow(
        "run", "-c", str(config), "--rate", "200", "--run-dir", str(tmp_path / "r"), str(log)
    )
    assert result.returncode == 3, result.stderr
    died = [e for e in result.of("server_exited") if e["target"] == "candidate"]
    assert died[0]["expected"] is False and died[0]["returncode"] == 17
    summary = result.summary
    assert_accounted(summary)
    assert summary["errors"] >= 1 and summary["requests"] < 400
    assert all(e["side"] in ("candidate", "both") for e in result.of("error"))
    assert_no_orphans(tag)


def test_check_reports_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[targets.primary]\nurl = "http://127.0.0.1:1"\ncommand = "run me"\n')
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2
    assert re.search(
        r"bad\.toml: targets\.primary\.command: must be a list of strings", result.stderr
    ), result.stderr


def test_check_prints_the_resolved_demo_config() -> None:
    result = run_shadow("check", "-c", "config/demo.toml")
    assert result.returncode == 0, result.stderr
    resolved = orjson.loads(result.stdout)
    assert resolved["targets"]["primary"]["managed"] is True
    assert resolved["targets"]["primary"]["env"]["SECRET_KEY"] == "***"
    assert "demo-secret" not in result.stdout.decode()


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    assert run_shadow("run", str(tmp_path / "x.jsonl")).returncode == 2
    missing = run_shadow(
        "run",
        "--primary",
        "http://127.0.0.1:9",
        "--candidate",
        "http://127.0.0.1:9",
        str(tmp_path / "missing.jsonl"),
    )
    assert missing.returncode == 2 and "missing.jsonl" in missing.stderr
    assert missing.stdout == b""


def test_recorded_timing_merges_several_logs_in_ts_order(
    fake_pair: tuple[str, str], tmp_path: Path
) -> None:
    first = write_jsonl(
        tmp_path / "a.jsonl",
        [{"method": "GET", "path": f"/items/{n}", "ts": float(n)} for n in (1, 3, 5)],
    )
    second = write_jsonl(
        tmp_path / "b.jsonl",
        [{"method": "GET", "path": f"/items/{n}", "ts": float(n)} for n in (2, 4, 6)],
    )
    primary, candidate = fake_pair
    result = run_shadow(
        *("run", "--primary", primary, "--candidate", candidate, "--emit", "all"),
        *("--speed", "50", "--concurrency", "1", str(first), str(second)),
    )
    exchanges = sorted(
        (e for e in result.events if e["event"] in ("match", "mismatch")), key=lambda e: e["seq"]
    )
    assert [e["request"]["path"] for e in exchanges] == [f"/items/{n}" for n in range(1, 7)]
    assert_accounted(result.summary)
