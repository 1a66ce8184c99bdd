"""Never a silent death or a hang: a bug while one record is handled is that record's `error`
(kind `internal`) and the run goes on to its summary; numbers that are not numbers, a timeout
of 0, and methods that are not ASCII are refused where they come in.

A bug is planted in the shadow under test with a `sitecustomize` module on PYTHONPATH, which
every Python process the test starts loads (`--workers` children too).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from shadow.sources.gor import SEPARATOR
from tests.faults.helpers import check_run, fault_config, received, run_faults
from tests.support import ROOT, Shadow, shadow_cmd, write_jsonl

pytestmark = pytest.mark.e2e

# Each raises for a record whose path holds "bug", at one stage of its handling.
PLANTS = {
    "prepare": """
import shadow.replay.routes as routes
real = routes.Router.route
def route(self, record):
    if "bug" in record.path:
        raise RuntimeError("planted bug in routing")
    return real(self, record)
routes.Router.route = route
""",
    "transport": """
import shadow.replay.pool as pool
real = pool.Replayer.request_headers
def request_headers(self, target, record, *args):
    if "bug" in record.path:
        raise KeyError("planted bug in the transport")
    return real(self, target, record, *args)
pool.Replayer.request_headers = request_headers
""",
    "compare": """
import shadow.run.pipeline as pipeline
real = pipeline.diff_responses
def diff_responses(primary, candidate, rules, *args):
    if b"bug" in primary.body:
        raise ZeroDivisionError("planted bug in compare")
    return real(primary, candidate, rules, *args)
pipeline.diff_responses = diff_responses
""",
}
MESSAGES = {
    "prepare": "RuntimeError: planted bug in routing",
    "transport": "KeyError: 'planted bug in the transport'",
    "compare": "ZeroDivisionError: planted bug in compare",
}


def run_planted(tmp_path: Path, plant: str, *args: str) -> Shadow:
    folder = tmp_path / "plant"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(plant)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(folder), str(ROOT)))}
    proc = subprocess.run(
        shadow_cmd(*args), capture_output=True, timeout=120, cwd=ROOT, env=env, check=False
    )
    return Shadow(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("stage", sorted(PLANTS))
def test_a_bug_while_a_record_is_handled_is_its_error_and_the_run_goes_on(
    tmp_path: Path, tag: str, stage: str, workers: int
) -> None:
    # Before, the first such bug ended the whole run with exit 70 and no summary (and, before
    # that, killed the worker: the record was `cancelled` with no reason, then a hang).
    paths = ["/ok/1", "/ok/bug-1", "/ok/2", "/ok/3", "/ok/bug-2", "/ok/4", "/ok/5"]
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": p} for p in paths])
    config = fault_config(tmp_path, tag)
    args = ["run", "-c", str(config), str(log), "--run-dir", str(tmp_path / "run")]
    result = run_planted(tmp_path, PLANTS[stage], *args, "--emit", "all", "--workers", str(workers))

    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["matched"], summary["errors"]) == (7, 5, 2)
    errors = result.of("error")
    assert sorted(e["request"]["path"] for e in errors) == ["/ok/bug-1", "/ok/bug-2"]
    for event in errors:
        assert (event["error"], event["side"]) == ("internal", "both")
        assert MESSAGES[stage] in event["message"], event["message"]
    said = [line for line in result.stderr.splitlines() if "(an `internal` error event)" in line]
    assert len(said) == 2 and all(MESSAGES[stage] in line for line in said), result.stderr


BAD_NUMBERS = ["nan", "inf", "-inf"]
NUMERIC_KEYS = [
    ("replay", "timeout_s"),
    ("replay", "rate"),
    ("replay", "progress_interval_s"),
    ("replay", "behind_warning_s"),
    ("targets.primary", "shutdown_grace_s"),
    ("targets.primary", "restart_backoff_s"),
    ("targets.primary", "warmup_s"),
    ("targets.primary.health", "timeout_s"),
    ("targets.primary.health", "interval_s"),
    ("compare", "tolerance"),
    ("compare", "relative_tolerance"),
    ("thresholds", "mismatch_rate"),
    ("thresholds", "error_rate"),
    ("auth.svc", "ttl_s"),
]


def numeric_config(tmp_path: Path, table: str, key: str, value: str) -> Path:
    """A config of two attached targets with `[table] key = value` (and what it needs)."""
    sections: dict[str, list[str]] = {
        "targets.primary": ['url = "http://127.0.0.1:9"'],
        "targets.primary.health": [],
        "targets.candidate": ['url = "http://127.0.0.1:9"'],
        "auth.svc": ['type = "jwt"', 'secret_env = "HOME"', 'claims = { a = "b" }'],
    }
    sections.setdefault(table, []).append(f"{key} = {value}")
    text = "".join(
        f"[{name}]\n" + "".join(f"{line}\n" for line in lines) for name, lines in sections.items()
    )
    path = tmp_path / "numbers.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize(("table", "key"), NUMERIC_KEYS, ids=[f"{t}.{k}" for t, k in NUMERIC_KEYS])
def test_a_setting_that_is_not_a_finite_number_is_refused_with_its_key(
    tmp_path: Path, table: str, key: str, value: str
) -> None:
    config = numeric_config(tmp_path, table, key, value)
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": "/ok/1"}])
    result = run_shadow_quick("run", "-c", str(config), str(log))
    assert result.returncode == 2, result.stderr
    assert f"{table}.{key}: must be a finite number" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == b""


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--timeout", "nan", "must be a finite number"),
        ("--timeout", "inf", "must be a finite number"),
        ("--timeout", "0", "0 would mean none"),
        ("--rate", "inf", "rates must be finite"),
        ("--rate", "nan", "rates must be finite"),
        ("--speed", "inf", "must be a finite number"),
        ("--duration", "9" * 400, "not a finite duration"),
        ("--max-wait", "9" * 400 + "h", "not a finite duration"),
        ("--progress-interval", "nan", "must be a finite number"),
    ],
)
def test_a_flag_that_is_not_a_finite_number_or_a_zero_timeout_is_refused(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": "/ok/1"}])
    urls = ["--primary", "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:9"]
    result = run_shadow_quick("run", *urls, str(log), flag, value)
    assert result.returncode == 2, result.stderr
    assert flag in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == b""


def test_a_zero_timeout_in_the_config_is_refused(tmp_path: Path) -> None:
    config = numeric_config(tmp_path, "replay", "timeout_s", "0")
    result = run_shadow_quick("check", "-c", str(config))
    assert result.returncode == 2
    assert "replay.timeout_s: must be above 0" in result.stderr, result.stderr


def run_shadow_quick(*args: str) -> Shadow:
    proc = subprocess.run(shadow_cmd(*args), capture_output=True, timeout=60, cwd=ROOT, check=False)
    return Shadow(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


# --- methods that are not ASCII ---------------------------------------------------------------

BAD_METHODS = ["GÉT", "\u017fet", "GET\u0130"]  # the 2nd upper-cases to "SET"


def _methods_jsonl(tmp_path: Path) -> Path:
    records = [{"method": m, "path": "/ok/bad"} for m in BAD_METHODS]
    return write_jsonl(tmp_path / "m.jsonl", [*records, {"method": "get", "path": "/ok/good"}])


def _methods_har(tmp_path: Path) -> Path:
    entries = [
        {"startedDateTime": "2026-11-27T15:00:00Z", "request": {"method": m, "url": f"http://h{p}"}}
        for m, p in [*((m, "/ok/bad") for m in BAD_METHODS), ("GET", "/ok/good")]
    ]
    path = tmp_path / "m.har"
    path.write_bytes(orjson.dumps({"log": {"version": "1.2", "entries": entries}}))
    return path


def _methods_gor(tmp_path: Path) -> Path:
    path = tmp_path / "m.gor"
    payloads = [
        b"1 0c2a 1795791600000000000 -1\n"
        + f"{m} {p} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
        + SEPARATOR
        for m, p in [*((m, "/ok/bad") for m in BAD_METHODS), ("GET", "/ok/good")]
    ]
    path.write_bytes(b"".join(payloads))
    return path


def _methods_access(tmp_path: Path) -> Path:
    lines = [
        f'127.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "{m} {p} HTTP/1.1" 200 1 "-" "-"\n'
        for m, p in [*((m, "/ok/bad") for m in BAD_METHODS), ("GET", "/ok/good")]
    ]
    path = tmp_path / "m.log"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "make_log",
    [_methods_jsonl, _methods_har, _methods_gor, _methods_access],
    ids=["jsonl", "har", "gor", "access"],
)
def test_a_method_that_is_not_ascii_is_an_input_error_in_every_format_and_never_sent(
    tmp_path: Path, tag: str, make_log: object
) -> None:
    primary, candidate = tmp_path / "primary.record", tmp_path / "candidate.record"
    config = fault_config(tmp_path, tag, ["--record", str(primary)], ["--record", str(candidate)])
    assert callable(make_log)
    # No calibration: the servers must see the one good record exactly once.
    result = run_faults(config, tmp_path, str(make_log(tmp_path)), "--no-calibration")

    summary = check_run(result, tag, 1)  # input errors over the default threshold of 0
    assert (summary["requests"], summary["matched"], summary["input_errors"]) == (1, 1, 3)
    for record in (primary, candidate):
        sent = [(e["method"], e["target"]) for e in received(record) if "method" in e]
        assert [s for s in sent if s[1] != "/health"] == [("GET", "/ok/good")]


def test_a_synth_template_with_a_method_that_is_not_ascii_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "synth.toml"
    config.write_text(
        '[targets.primary]\nurl = "http://127.0.0.1:9"\n'
        '[targets.candidate]\nurl = "http://127.0.0.1:9"\n'
        '[synth]\ncount = 1\n[[synth.template]]\nmethod = "\u017fet"\npath = "/x"\n',
        encoding="utf-8",
    )
    result = run_shadow_quick("run", "-c", str(config), "--synth", "1")
    assert result.returncode == 2, result.stderr
    assert "method" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("differs", [False, True])
def test_a_run_failed_only_by_request_errors_can_exit_apart_from_differences(
    tmp_path: Path, tag: str, workers: int, differs: bool
) -> None:
    """`--errors-exit-code N`: a run whose only failed threshold is the error rate (the
    candidate resets a connection) exits N, a retry's cue; a difference keeps it at 1."""
    paths = ["/ok/1", "/reset-candidate", "/ok/2", "/reset-candidate"]
    paths += ["/storm/1"] if differs else []
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": p} for p in paths])
    args = ["--errors-exit-code", "75", "--workers", str(workers), str(log)]
    result = run_faults(fault_config(tmp_path, tag), tmp_path, *args)
    summary = check_run(result, tag, 1 if differs else 75)
    assert (summary["errors"], summary["mismatched"]) == (2, 1 if differs else 0)
    assert {(e["side"], e["error"]) for e in result.of("error")} == {("candidate", "reset")}
    assert "overall error rate 2/" in result.stderr
