"""Secrets never leave shadow: not in events, stderr, the run dir or reports, whatever shows
them (a server printing its environment, echoing credentials back, a url with a password).

Each row is a real `shadow run` of tests/helpers/echo_server.py, a server that prints its
secrets and echoes every credential it receives in its body and headers; each asserts that no
secret appears in any byte of stdout, stderr or any file in the run dir (nor in `shadow
report`'s outputs), that the places they would be show `[REDACTED]`, the exit code and the
exact counts, and that no process is left.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.faults.helpers import check_run
from tests.support import (
    HELPERS,
    Shadow,
    events_of,
    free_port,
    run_on_terminal,
    run_shadow,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

ECHO = str(HELPERS / "echo_server.py")
ENV_SECRET = "env-secret-7f1c2a9b"
DB_PASSWORD = "dbpass-xyz123"
PROFILE_SECRET = "profile-key-9d8e7f6a"
JWT_SECRET = "jwt-hmac-secret-31d4e5"
RECORDED_KEY = "recorded-api-key-4b3c2d"
RECORDED_COOKIE = "recorded-cookie-8a7b6c"
RECORDED_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZWNvcmRlZCJ9.cmVjb3JkZWQtc2lnbmF0dXJl"
QUERY_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJxdWVyeSJ9.cXVlcnktc2lnbmF0dXJl"
BODY_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2R5In0.Ym9keS1zaWduYXR1cmU"
URL_PASSWORD = "hunter2pw"
STATIC_TOKEN = "static-token-5e6f7a8b"
SECRETS = [
    ENV_SECRET,
    DB_PASSWORD,
    PROFILE_SECRET,
    JWT_SECRET,
    RECORDED_KEY,
    RECORDED_COOKIE,
    RECORDED_JWT,
    QUERY_JWT,
    BODY_JWT,
    URL_PASSWORD,
    base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode(),
    STATIC_TOKEN,
]
# Every JWT, the ones shadow mints included, and what an excerpt cut short leaves of one.
JWT_SHAPE = re.compile(rb"eyJ[\w-]+\.eyJ")


def echo_target(name: str, tag: str, *args: str, url: str = "http://127.0.0.1:0") -> str:
    port = "{port}"
    argv = ["{python}", ECHO, "--port", port, "--variant", name, "--tag", tag]
    argv += ["--print-env", "SECRET_KEY", "--print-env", "DATABASE_URL", *args]
    return (
        f'[targets.{name}]\nurl = "{url}"\ncommand = {json.dumps(argv)}\n'
        'env_file = "target.env"\n'
        'health = { path = "/health", timeout_s = 15 }\nshutdown_grace_s = 2\n\n'
    )


def write_config(tmp_path: Path, tag: str, primary: tuple[str, ...] = (), extra: str = "") -> Path:
    (tmp_path / "target.env").write_text(
        f"SECRET_KEY={ENV_SECRET}\nDATABASE_URL=postgres://app:{DB_PASSWORD}@db/app\n"
    )
    (tmp_path / "auth.env").write_text(f"SERVICE_KEY={PROFILE_SECRET}\nJWT_SECRET={JWT_SECRET}\n")
    text = (
        'env_file = "auth.env"\n'
        + extra
        + echo_target("primary", tag, *primary)
        + echo_target("candidate", tag)
        + '[compare]\nheaders = ["*"]\n\n'
        + '[auth.svc]\ntype = "header"\nheader = "X-Service-Key"\nvalue_env = "SERVICE_KEY"\n\n'
        + '[auth.tok]\ntype = "jwt"\nalgorithm = "HS256"\nsecret_env = "JWT_SECRET"\n'
        + 'claims = { sub = "tester" }\nscheme = "Bearer"\nheader = "Authorization"\n'
    )
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    return path


def records(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "log.jsonl",
        [
            {"method": "GET", "path": f"/a?token={QUERY_JWT}", "auth": "svc",
             "headers": {"X-API-Key": RECORDED_KEY}},
            {"method": "GET", "path": "/b", "headers": {"Authorization": f"Bearer {RECORDED_JWT}"}},
            {"method": "POST", "path": "/c", "auth": "tok",
             "body": {"id_token": BODY_JWT, "note": "kept"}},
            {"method": "GET", "path": f"/d?key={ENV_SECRET}",
             "headers": {"Cookie": f"sid={RECORDED_COOKIE}"}},
            {"method": "POST", "path": "/e", "auth": "svc", "body": {"pw": DB_PASSWORD}},
            {"method": "GET", "path": "/f", "auth": "tok"},
            {"method": "GET", "path": "/text", "auth": "svc",
             "headers": {"Authorization": f"Bearer {RECORDED_JWT}"}},
        ],
    )  # fmt: skip


def run(tmp_path: Path, config: Path, *args: str) -> Shadow:
    return run_shadow(
        "run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all",
        "--output", str(tmp_path / "events.jsonl"), *args, str(records(tmp_path)), timeout=120,
    )  # fmt: skip


def with_events(result: Shadow, tmp_path: Path) -> Shadow:
    return Shadow(result.returncode, (tmp_path / "events.jsonl").read_bytes(), result.stderr)


def assert_no_secret(tmp_path: Path, *outputs: bytes | str) -> None:
    """No secret in any of `outputs` nor in any byte of any file under tmp_path (the run dir,
    the events file, reports), the test's own inputs left out."""
    inputs = {"target.env", "auth.env", "secrets.toml", "log.jsonl", "check.toml"}
    blobs = [o.encode() if isinstance(o, str) else o for o in outputs]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in inputs]
    assert any(p.parent.name == "run" for p in files), files
    blobs += [p.read_bytes() for p in files]
    for blob in blobs:
        for secret in SECRETS:
            assert secret.encode() not in blob, (secret, blob[:3000])
        assert not JWT_SHAPE.search(blob), blob[:3000]


def report_outputs(tmp_path: Path) -> list[bytes]:
    events = str(tmp_path / "events.jsonl")
    text = run_shadow("report", events, "--html", str(tmp_path / "report.html"))
    as_json = run_shadow("report", events, "--json")
    assert text.returncode == 0 == as_json.returncode, text.stderr + as_json.stderr
    return [text.stdout, text.stderr.encode(), as_json.stdout, as_json.stderr.encode()]


@pytest.mark.parametrize("workers", [1, 2])
def test_echoed_credentials_jwts_and_env_secrets_never_show(
    tmp_path: Path, tag: str, workers: int
) -> None:
    args = ["--workers", str(workers)] if workers > 1 else []
    result = with_events(run(tmp_path, write_config(tmp_path, tag), *args), tmp_path)
    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["mismatched"], summary["errors"]) == (7, 7, 0)
    assert_no_secret(tmp_path, result.stderr, *report_outputs(tmp_path))
    mismatches = result.of("mismatch")
    paths = [m["request"]["path"] for m in mismatches]
    assert sorted(paths) == [
        "/a?token=[REDACTED]", "/b", "/c", "/d?key=[REDACTED]", "/e", "/f", "/text",
    ]  # fmt: skip
    # The echoes are there, masked: what differs is still shown.
    missing = [d for m in mismatches for d in m["diffs"] if d["path"] == "/echo"]
    assert len(missing) == 6 and all("[REDACTED]" in json.dumps(d) for d in missing)
    (text,) = [m for m in mismatches if m["request"]["path"] == "/text"]
    (body,) = [d for d in text["diffs"] if d["kind"] == "body"]
    assert "[REDACTED]" in body["primary"]["excerpt"], body
    log = (tmp_path / "run" / "primary.log").read_text()
    assert "SECRET_KEY=[REDACTED]" in log and "DATABASE_URL=[REDACTED]" in log


@pytest.mark.parametrize("when", ["at-start", "mid-run"])
def test_a_server_that_prints_its_secrets_and_exits(tmp_path: Path, tag: str, when: str) -> None:
    flag = ("--exit-at-start",) if when == "at-start" else ("--exit-after", "2")
    config = write_config(tmp_path, tag, flag)
    # No calibration: the primary dies after its second answer, a repeat would be one.
    args = ("--concurrency", "1", "--no-calibration")
    result = with_events(run(tmp_path, config, *args), tmp_path)
    summary = check_run(result, tag, 3)
    (exited,) = [e for e in result.of("server_exited") if e["target"] == "primary"]
    assert exited["expected"] is False
    assert any("SECRET_KEY=[REDACTED]" in line for line in exited["log_tail"]), exited
    if when == "at-start":
        assert summary["requests"] == 0
        assert "| starting: SECRET_KEY=[REDACTED]" in result.stderr, result.stderr
    else:
        # Two answered; the death cuts what was admitted before shadow saw it short (how many
        # that is depends on when the exit is noticed); the rest are never admitted.
        assert summary["mismatched"] == 2 and summary["matched"] == 0
        assert 1 <= summary["errors"] == summary["requests"] - 2 <= 5, summary
        assert all(e["side"] == "primary" for e in result.of("error")), result.of("error")
    assert_no_secret(tmp_path, result.stderr)


def test_a_password_in_a_target_url_is_masked_everywhere(tmp_path: Path, tag: str) -> None:
    port = free_port()
    url = f"http://alice:{URL_PASSWORD}@127.0.0.1:{port}"
    config = write_config(tmp_path, tag)
    text = config.read_text().replace(
        'url = "http://127.0.0.1:0"\ncommand = ["{python}", "' + ECHO + '", "--port", "{port}"',
        f'url = "{url}"\ncommand = ["{sys.executable}", "{ECHO}", "--port", "{port}"',
        1,
    )
    assert url in text
    config.write_text(text)
    log = write_jsonl(
        tmp_path / "log.jsonl", [{"method": "GET", "path": f"/u/{n}"} for n in range(3)]
    )
    result = run_shadow(
        "run", "-c", str(config), "--run-dir", str(tmp_path / "run"), "--emit", "all",
        "--output", str(tmp_path / "events.jsonl"), str(log), timeout=120,
    )  # fmt: skip
    result = with_events(result, tmp_path)
    summary = check_run(result, tag, 1)
    assert (summary["requests"], summary["mismatched"]) == (3, 3)
    shown = f"http://[REDACTED]@127.0.0.1:{port}"
    assert result.of("run_started")[0]["targets"]["primary"]["url"] == shown
    ready = [e["url"] for e in result.of("server_ready") if e["target"] == "primary"]
    assert ready == [shown]
    assert_no_secret(tmp_path, result.stderr)


def test_shadow_check_masks_static_headers_and_url_passwords(tmp_path: Path) -> None:
    config = tmp_path / "check.toml"
    config.write_text(
        f'[targets.primary]\nurl = "http://alice:{URL_PASSWORD}@127.0.0.1:8001"\n'
        f'headers = {{ Authorization = "Bearer {STATIC_TOKEN}", X-API-Key = "{RECORDED_KEY}" }}\n'
        f'[targets.candidate]\nurl = "http://127.0.0.1:8002"\n'
        f'env = {{ SECRET_KEY = "{ENV_SECRET}" }}\n'
    )
    result = run_shadow("check", "-c", str(config), "--print")
    assert result.returncode == 0, result.stderr
    described = tomllib.loads(result.stdout.decode())
    assert described["targets"]["primary"]["headers"] == {
        "Authorization": "***",
        "X-API-Key": "***",
    }
    assert described["targets"]["primary"]["url"] == "http://***@127.0.0.1:8001"
    ok = run_shadow("check", "-c", str(config))
    assert ok.returncode == 0 and ok.stdout.startswith(b"config OK: "), ok.stderr
    for out in (result, ok):
        for secret in (URL_PASSWORD, STATIC_TOKEN, RECORDED_KEY, ENV_SECRET):
            assert secret.encode() not in out.stdout + out.stderr.encode()


def test_a_password_in_an_attached_url_stays_out_of_the_start_failure(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: the health check fails, naming the url
    config = tmp_path / "check.toml"
    config.write_text(
        f'[targets.primary]\nurl = "http://alice:{URL_PASSWORD}@127.0.0.1:{port}"\n'
        'health = { path = "/health", timeout_s = 0.3, interval_s = 0.05 }\n'
        # The candidate waits longer, so the primary's failure (the url with a password) is
        # always the one that ends the run.
        f'[targets.candidate]\nurl = "http://127.0.0.1:{port}"\n'
        'health = { path = "/health", timeout_s = 10, interval_s = 0.05 }\n'
    )
    log = write_jsonl(tmp_path / "log.jsonl", [{"method": "GET", "path": "/x"}])
    result = run_shadow("run", "-c", str(config), str(log))
    assert result.returncode == 3, result.stderr
    assert f"did not answer GET http://[REDACTED]@127.0.0.1:{port}/health" in result.stderr
    assert result.summary["requests"] == 0 and "Traceback" not in result.stderr
    for secret in (URL_PASSWORD, base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode()):
        assert secret.encode() not in result.stdout + result.stderr.encode()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_lines_for_people_on_a_terminal_mask_the_same_secrets(
    tmp_path: Path, tag: str, workers: int
) -> None:
    """On a terminal the mismatches are printed from the events' fields, not their lines:
    the same secrets are masked there, in one process and as a --workers parent."""
    config = write_config(tmp_path, tag)
    args = ["--workers", str(workers)] if workers > 1 else []
    run_dir = tmp_path / "run"
    screen = run_on_terminal(
        "run", "-c", str(config), "--run-dir", str(run_dir), *args, str(records(tmp_path)),
        columns=400, timeout_s=120,
    )  # fmt: skip
    assert screen.returncode == 1, screen.text
    assert screen.text.count("mismatch  ") == 7, screen.text  # one block per exchange
    assert "[REDACTED]" in screen.text
    assert_no_secret(tmp_path, screen.raw)
    finished = events_of((run_dir / "events.ndjson").read_bytes())[-1]
    assert (finished["requests"], finished["mismatched"], finished["errors"]) == (7, 7, 0)
