"""End to end through the command line, as a subprocess, against real servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import itertools
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

import orjson
import pytest

from tests.support import (
    ROOT,
    Shadow,
    assert_accounted,
    assert_no_orphans,
    event_of,
    events_of,
    managed_config,
    run_shadow,
    shadow_cmd,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

ITEMS = [{"method": "GET", "path": f"/items/{n}", "id": f"i{n}"} for n in range(20)]
WAIT_S = 30.0  # the longest any wait for a line may take before the test fails
# The summary shadow writes on stderr last, whatever happened to stdout.
STDERR_SUMMARY = re.compile(
    r"(\d+) requests: (\d+) matched, (\d+) mismatched, (\d+) errors, \d+ input errors; exit (\d+)"
)


class Running:
    """A `shadow` subprocess whose stdout and stderr are read as they come, never blocking
    past a deadline: a wait ends on the line it wants, or fails, with the stderr so far, when
    the deadline passes or the stream ends first. Killed on the way out if still running."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            shadow_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._out, self._err = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        self._open = {self._out, self._err}  # read with os.read only: no buffered reads
        self._partial = {self._out: b"", self._err: b""}
        self.stdout: list[bytes] = []  # whole lines, newline kept
        self.stderr: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _read(self, deadline: float) -> bool:
        """Take what the pipes have, waiting at most until `deadline`; False when nothing
        more can come (both ended) or the deadline has passed."""
        remaining = deadline - time.monotonic()
        if not self._open or remaining <= 0:
            return False
        ready, _, _ = select.select(sorted(self._open), [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            data = self._partial[fd] + chunk
            if chunk:
                *lines, self._partial[fd] = data.split(b"\n")
                lines = [line + b"\n" for line in lines]
            else:  # end of file
                self._open.discard(fd)
                lines, self._partial[fd] = ([data] if data else []), b""
            if fd == self._out:
                self.stdout += lines
            else:
                self.stderr += [line.decode("utf-8", "replace") for line in lines]
        return True

    def _fail(self, wanted: str, why: str) -> NoReturn:
        running = self.proc.poll() is None
        if running:
            self.proc.kill()
        end = time.monotonic() + 5  # the rest of stderr, now that the process is gone
        while self._err in self._open and self._read(end):
            pass
        state = "was still running (killed)" if running else f"exited with {self.proc.wait(5)}"
        raise AssertionError(
            f"{wanted}: not seen, {why}; shadow {state}; stderr so far:\n{''.join(self.stderr)}"
        )

    def wait_event(
        self, wanted: Callable[[dict[str, Any]], bool], what: str, timeout_s: float = WAIT_S
    ) -> dict[str, Any]:
        """The first event on stdout, from the start, for which `wanted` holds."""
        deadline, seen = time.monotonic() + timeout_s, 0
        while True:
            for line in self.stdout[seen:]:
                if line.strip() and wanted(event := event_of(line)):
                    return event
            seen = len(self.stdout)
            if self._out not in self._open:
                self._fail(what, "stdout ended first")
            if not self._read(deadline):
                self._fail(what, f"none within {timeout_s:g}s")

    def wait_stderr(self, text: str, timeout_s: float = WAIT_S) -> str:
        """The first stderr line, from the start, that holds `text`."""
        deadline, seen = time.monotonic() + timeout_s, 0
        while True:
            for line in self.stderr[seen:]:
                if text in line:
                    return line
            seen = len(self.stderr)
            if self._err not in self._open:
                self._fail(f"{text!r} on stderr", "stderr ended first")
            if not self._read(deadline):
                self._fail(f"{text!r} on stderr", f"none within {timeout_s:g}s")

    def close_stdout(self) -> None:
        """Stop reading stdout and close it, as `| head` does once it has its lines."""
        self._open.discard(self._out)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def finish(self, timeout_s: float = WAIT_S) -> Shadow:
        """Read to the end of both streams, wait for the exit: the whole run."""
        deadline = time.monotonic() + timeout_s
        while self._open:
            if not self._read(deadline):
                self._fail("the end of stdout and stderr", f"not within {timeout_s:g}s")
        try:
            returncode = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._fail("the exit", f"not within {timeout_s:g}s")
        return Shadow(returncode, b"".join(self.stdout), "".join(self.stderr))


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
    exits = {e["target"]: e["expected"] for e in result.of("server_exited")}
    assert exits == {"primary": True, "candidate": True}
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
    for m in mismatches:
        n = m["seq"]  # the candidate answers n as a string when n % 5 == 0
        assert m["request"] == ITEMS[n] and m["id"] == f"i{n}", m
        assert m["endpoint"] == "GET /items/{int}"
        assert m["diffs"] == [{"path": "/n", "kind": "type", "primary": n, "candidate": str(n)}]
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
    assert result.returncode == 1, result.stderr
    summary = result.summary
    assert summary["requests"] == 23
    # 0, 5 from a; 10, 15 from b; 0 again from stdin
    paths = sorted(m["request"]["path"] for m in result.of("mismatch"))
    assert paths == ["/items/0", "/items/0", "/items/10", "/items/15", "/items/5"]
    assert summary["mismatched"] == 5
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
    assert result.returncode == 1, result.stderr  # /items/0 and /items/5 mismatch
    assert result.stdout == b""
    kinds = [e["event"] for e in events_of(out.read_bytes())]
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
    args = ("run", "-c", str(config), "--rate", "300", "--run-dir", str(tmp_path / "run"))
    with Running(*args, str(log)) as run:
        assert run.wait_event(lambda e: True, "a first event")["event"] == "run_started"
        # Mid-replay, so the verdict is known: that mismatch (/items/0) is already counted.
        run.wait_event(lambda e: e["event"] == "mismatch", "a mismatch")
        run.close_stdout()  # like `| head -3`
        result = run.finish()
    assert "Traceback" not in result.stderr, result.stderr
    assert "stopping (stdout closed): finishing requests in flight" in result.stderr
    counts = STDERR_SUMMARY.search(result.stderr)
    assert counts is not None, result.stderr
    requests, matched, mismatched, errors, exit_code = map(int, counts.groups())
    assert 0 < requests < 3000 and requests == matched + mismatched + errors
    assert mismatched > 0 and errors == 0  # the stop drained what was in flight
    assert result.returncode == exit_code == 1  # the type differences fail the run
    assert_no_orphans(tag)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_writes_the_summary_and_stops_servers(
    tmp_path: Path, tag: str, sig: signal.Signals
) -> None:
    log = write_jsonl(
        tmp_path / "slow.jsonl", [{"method": "GET", "path": "/slow/300"} for _ in range(2000)]
    )
    config = managed_config(tmp_path, tag)
    args = ("run", "-c", str(config), "--concurrency", "4", "--emit", "all")
    with Running(*args, "--run-dir", str(tmp_path / "run"), str(log)) as run:
        matches = itertools.count(1)
        run.wait_event(lambda e: e["event"] == "match" and next(matches) == 4, "four matches")
        run.proc.send_signal(sig)
        run.wait_stderr(f"stopping ({sig.name}): finishing requests in flight")
        result = run.finish()
    summary = result.summary
    assert summary["interrupted"] is True
    assert_accounted(summary)
    assert summary["requests"] < 2000 and summary["errors"] == 0  # in-flight ones finished
    assert summary["matched"] == summary["requests"] == len(result.of("match"))
    assert result.returncode == summary["exit_code"] == 0, result.stderr  # all matched
    assert "Traceback" not in result.stderr, result.stderr
    assert_no_orphans(tag)


def test_second_signal_cancels_in_flight_and_counts_them(tmp_path: Path, tag: str) -> None:
    # The answers (60 s) and the timeout (120 s) outlast the test (60 s at most): what is in
    # flight can end only by the second signal.
    log = write_jsonl(
        tmp_path / "slow.jsonl", [{"method": "GET", "path": "/slow/60000"} for _ in range(50)]
    )
    config = managed_config(tmp_path, tag)
    args = ("run", "-c", str(config), "--concurrency", "4", "--timeout", "120")
    more = ("--progress-interval", "0.1", "--run-dir", str(tmp_path / "run"), str(log))
    with Running(*args, *more) as run:
        # Frozen from then on: 4 in flight, and as many admitted behind them (the replay admits
        # twice --concurrency), none of which can finish.
        run.wait_event(
            lambda e: e["event"] == "progress" and (e["in_flight"], e["sent"]) == (4, 8),
            "4 requests in flight and 8 admitted",
        )
        run.proc.send_signal(signal.SIGINT)
        run.wait_stderr("stopping (SIGINT): finishing requests in flight")
        run.proc.send_signal(signal.SIGINT)
        result = run.finish()
    summary = result.summary
    cancelled = [e for e in result.of("error") if e["error"] == "cancelled"]
    assert sorted(e["seq"] for e in cancelled) == list(range(8)), result.stderr
    assert summary["requests"] == summary["errors"] == 8
    assert summary["matched"] == summary["mismatched"] == 0
    assert summary["interrupted"] is True
    assert "8 request(s) did not finish: cancelled by a second signal" in result.stderr
    assert result.returncode == summary["exit_code"] == 1  # errors fail the run
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
    # The candidate's sleep is not a wait: it is a server that never answers, stopped when
    # the primary's exit fails the start.
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
    errors = result.of("error")  # every error counted is an event, each the candidate's
    assert len(errors) == summary["errors"] and {e["side"] for e in errors} == {"candidate"}
    assert len(result.of("mismatch")) == summary["mismatched"]
    assert_no_orphans(tag)


def test_check_reports_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[targets.primary]\nurl = "http://127.0.0.1:1"\ncommand = "run me"\n')
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 2
    assert re.search(
        r"bad\.toml: targets\.primary\.command: must be a list of strings", result.stderr
    ), result.stderr


def test_check_warns_of_every_key_that_cannot_take_effect(tmp_path: Path) -> None:
    config = tmp_path / "idle.toml"
    (tmp_path / "secrets.env").write_text("TOKEN=x\n")
    config.write_text(
        'env_file = "secrets.env"\n'
        '[targets.primary]\nurl = "http://127.0.0.1:8002"\nenv = { DEBUG = "1" }\n'
        'cwd = "api"\n'
        '[targets.candidate]\nurl = "http://127.0.0.1:3000"\n'
        '[targets.secondary]\nurl = "http://127.0.0.1:8003"\n'
        "[noise]\nenabled = false\nsample = 0.5\n"
        '[compare]\nignore = ["/meta"]\nnormalize = { "/meta/at" = "datetime" }\n'
        'ignore_headers = ["x-runtime"]\nstatus = false\n'
        '[thresholds]\nfail_on = ["status"]\n'
        '[[compare.endpoint]]\nname = "Items"\npath = "/items/{n}"\nexpect_status = 200\n'
        '[[compare.endpoint]]\nname = "Other name"\npath = "/items/{n}"\n'
    )
    result = run_shadow("check", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(f"config OK: {config}: ")
    warned = [
        line.removeprefix(f"shadow: warning: {config}: ").split(":")[0]
        for line in result.stderr.splitlines()
    ]
    assert warned == [
        "noise.sample",
        "targets.secondary",
        "targets.primary.cwd",
        "targets.primary.env",
        "compare.ignore_headers",
        "compare.normalize./meta/at",
        "compare.endpoint[0].expect_status",
        "compare.endpoint[1].name",
        "thresholds.fail_on",
        "env_file",
    ], result.stderr
    assert run_shadow("check", "-c", "config/demo.toml").stderr == ""  # nothing idle there


def test_check_says_config_ok_in_one_line() -> None:
    result = run_shadow("check", "-c", "config/demo.toml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("config OK: config/demo.toml: primary managed at ")
    assert "2 auth profile(s), secrets and keys loaded" in lines[0]


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
    assert result.returncode == 1, result.stderr  # /items/5 mismatches
    exchanges = sorted(
        (e for e in result.events if e["event"] in ("match", "mismatch")), key=lambda e: e["seq"]
    )
    assert [e["request"]["path"] for e in exchanges] == [f"/items/{n}" for n in range(1, 7)]
    assert_accounted(result.summary)


COMMANDS = ("run", "demo", "check", "report", "convert", "synth", "schema", "completion")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples_and_exit_codes(command: str) -> None:
    result = run_shadow(command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert f"usage: shadow {command}" in text
    assert "examples:\n  shadow " in text
    assert "exit codes:\n  0 " in text and "  2    a usage, config or input problem" in text
    if command in ("run", "demo"):
        assert "  3    a target never became ready, or a managed server died" in text
        assert "(default: [replay] concurrency, 16)" in " ".join(text.split())
        assert "(default: [replay] timeout_s, 10)" in " ".join(text.split())


def test_bash_completion_completes_commands_and_options(tmp_path: Path) -> None:
    script = run_shadow("completion", "bash")
    assert script.returncode == 0, script.stderr
    (tmp_path / "shadow.bash").write_bytes(script.stdout)
    probe = """
source "$1"
complete -p shadow
COMP_WORDS=(shadow sch); COMP_CWORD=1; _shtab_shadow shadow sch shadow; echo "${COMPREPLY[*]}"
COMP_WORDS=(shadow run --heal); COMP_CWORD=2; _shtab_shadow shadow --heal run; echo "${COMPREPLY[*]}"
"""
    done = subprocess.run(
        ["bash", "-c", probe, "probe", str(tmp_path / "shadow.bash")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    registered, commands, options = done.stdout.splitlines()
    assert registered.endswith(" shadow") and "_shtab_shadow" in registered
    assert commands == "schema"
    assert options == "--health-timeout"


def test_make_demo_installs_only_the_runtime_and_the_report_extra(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # not there: make plans the install (dry run, nothing is run)
    plans = {}
    for target in ("demo", "test"):
        done = subprocess.run(
            ["make", "-n", target, f"VENV={venv}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        plans[target] = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert [line.split()[-3] for line in plans["demo"][1:]] == ["'.[report]'"]
    assert any("'.[dev]'" in line for line in plans["test"])


def test_the_distribution_name_is_not_the_commands() -> None:
    from importlib import metadata

    dist = metadata.distribution("shadow-replay")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"shadow": "shadow.cli:main"}
    readme = (ROOT / "README.md").read_text()
    assert "pip install shadow-replay" in readme


# Loaded only where a run uses them: by a profile's token or key (auth), an env file (config).
NOT_FOR_A_PLAIN_RUN = ("jwt", "cryptography", "dotenv")
LOADED = """\
import sys
from shadow.cli import main
code = main(sys.argv[2:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))
sys.stderr.write(f"loaded: {' '.join(loaded)}\\n")
sys.exit(code)
"""


def test_a_plain_run_loads_none_of_what_it_does_not_use(
    fake_pair: tuple[str, str], tmp_path: Path
) -> None:
    log = write_jsonl(tmp_path / "items.jsonl", ITEMS[1:5])
    primary, candidate = fake_pair
    argv = ["run", "-q", str(log), "--primary", primary, "--candidate", candidate]
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, ",".join(NOT_FOR_A_PLAIN_RUN), *argv],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    assert events_of(proc.stdout)[-1]["matched"] == 4
    assert "loaded: \n" in stderr, stderr
