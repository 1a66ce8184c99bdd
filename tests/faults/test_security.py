"""Security: no secret in anything a run writes, commands never through a shell, and replay
traffic only ever to the configured targets.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.faults.helpers import (
    FAULTSERVER,
    check_run,
    fault_config,
    idle_listener,
    received,
    run_faults,
    target,
)
from tests.support import ROOT, Shadow, run_shadow, shadow_cmd, write_jsonl

pytestmark = pytest.mark.e2e

SECRETS = {
    "api_key": "sk-live-4f9a1c77d2e0b3a8",
    "jwt_secret": "jwt-signing-secret-d81c2e7f",
    "email": "alice.secret@example.org",
    "password": "hunter2-correct-horse",
    "cookie": "cookie-value-77aa91bc",
    "recorded_bearer": "recorded-bearer-0c1d2e3f",
    "proxy": "proxy-credential-5e6f7a8b",
    "x_api_key": "x-api-key-9a8b7c6d",
    "session": "session-header-1234abcd",
}
REDACT = """
[compare]
headers = ["set-cookie"]

[redact]
headers = ["X-Session"]
paths = ["/**/password", "/**/email", "/**/token"]

[auth.internal]
type = "header"
header = "X-Internal-Key"
value_env = "SHADOWTEST_API_KEY"

[auth.ceramic]
type = "jwt"
secret_env = "SHADOWTEST_JWT_SECRET"
claims = { sub = "{user}" }
"""


def _records() -> list[dict[str, object]]:
    credentials = {"email": SECRETS["email"], "password": SECRETS["password"]}
    recorded = [
        ["Cookie", f"session={SECRETS['cookie']}"],
        ["X-API-Key", SECRETS["x_api_key"]],
        ["Proxy-Authorization", f"Basic {SECRETS['proxy']}"],
        ["X-Session", SECRETS["session"]],
    ]
    form = f"email={SECRETS['email']}&password={SECRETS['password']}"
    return [
        {
            "method": "POST",
            "path": "/account",
            "auth": "ceramic",
            "vars": {"user": "u1"},
            "headers": recorded,
            "body": {"profile": credentials},
        },
        {
            "method": "POST",
            "path": "/account",
            "auth": "internal",
            "headers": [["Authorization", f"Bearer {SECRETS['recorded_bearer']}"], *recorded],
            "body": credentials,
        },
        {"method": "POST", "path": "/hang", "headers": recorded, "body": credentials},
        {
            "method": "POST",
            "path": "/account",
            "headers": [["Content-Type", "application/x-www-form-urlencoded"], *recorded],
            "body_text": form,
        },
        {
            "method": "POST",
            "path": "/account",
            "body_b64": base64.b64encode(json.dumps(credentials).encode()).decode(),
        },
    ]


def _forbidden() -> list[str]:
    values = list(SECRETS.values())
    # The candidate answers them reversed; a JWT header starts with eyJhbGci (`{"alg"`).
    return [*values, *(v[::-1] for v in values), "eyJhbGci", "icGbhJye"]


def test_no_secret_in_any_output_of_a_run_that_used_them(tmp_path: Path, tag: str) -> None:
    (tmp_path / "secrets.env").write_text(
        f"SHADOWTEST_API_KEY={SECRETS['api_key']}\nSHADOWTEST_JWT_SECRET={SECRETS['jwt_secret']}\n"
    )
    config = tmp_path / "secrets.toml"
    config.write_text(
        'env_file = "secrets.env"\n' + target("primary", tag) + target("candidate", tag) + REDACT
    )
    log = write_jsonl(tmp_path / "secret.jsonl", _records())
    events = tmp_path / "events.jsonl"
    run = run_faults(config, tmp_path, "-v", "--output", str(events), str(log))
    check_run_from_file(run.returncode, run.stderr, events, tag)
    outputs = {"stderr": run.stderr, "events": events.read_text()}
    for flag in ((), ("--json",)):
        report = run_shadow("report", str(events), *flag)
        assert report.returncode == 0, report.stderr
        outputs[f"report {flag}"] = report.stdout.decode() + report.stderr
    html = tmp_path / "report.html"
    assert run_shadow("report", str(events), "--html", str(html)).returncode == 0
    outputs["html"] = html.read_text()
    for flag in ((), ("--print",)):
        checked = run_shadow("check", "-c", str(config), *flag)
        assert checked.returncode == 0, checked.stderr
        outputs[f"check {flag}"] = checked.stdout.decode() + checked.stderr
    # shadow writes nothing of its own in the run dir: only the servers' output is there.
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["candidate.log", "primary.log"]
    for name, text in outputs.items():
        for secret in _forbidden():
            assert secret not in text, f"{secret!r} leaked into {name}"
    mismatches = [orjson.loads(x) for x in events.read_bytes().splitlines()]
    for event in mismatches:  # a base64 body is checked decoded
        encoded = event.get("request", {}).get("body_b64")
        if encoded:
            assert SECRETS["password"] not in base64.b64decode(encoded).decode()
    # ...and they were really there to leak: sent to the servers and answered back.
    diffs = {d["path"] for e in mismatches if e["event"] == "mismatch" for d in e["diffs"]}
    assert {"/user/email", "/user/password", "/user/token", "header:set-cookie"} <= diffs


def check_run_from_file(returncode: int, stderr: str, events: Path, tag: str) -> None:
    assert returncode == 1 and "Traceback" not in stderr, stderr
    summary = orjson.loads(events.read_bytes().splitlines()[-1])
    assert summary["event"] == "run_finished"
    assert (summary["requests"], summary["mismatched"], summary["errors"]) == (5, 3, 2)


def test_redacted_events_still_say_what_differs(tmp_path: Path, tag: str) -> None:
    config = fault_config(tmp_path, tag, extra=REDACT.split("[auth.internal]")[0])
    record = {
        "method": "POST",
        "path": "/account",
        "headers": [["Cookie", "c=1"]],
        "body": {"email": "e@x.org", "password": "pw12", "keep": "visible"},
    }
    result = run_faults(config, tmp_path, str(write_jsonl(tmp_path / "l.jsonl", [record])))
    check_run(result, tag, 1)
    (mismatch,) = result.of("mismatch")
    assert mismatch["request"]["body"] == {
        "email": "[REDACTED]",
        "password": "[REDACTED]",
        "keep": "visible",
    }
    assert mismatch["request"]["headers"] == [["Cookie", "[REDACTED]"]]
    by_path = {d["path"]: d for d in mismatch["diffs"]}
    assert by_path["/user/email"]["kind"] == "value"
    assert by_path["/user/email"]["primary"] == by_path["/user/email"]["candidate"] == "[REDACTED]"
    assert '"$COOKIE"' not in mismatch["curl"] and "$COOKIE" in mismatch["curl"]


# -- commands and environments are never interpreted by a shell ---------------------------------

HOSTILE = "; touch pwned1 && echo $(touch pwned2) `touch pwned3` | touch pwned4 > pwned5"


def test_commands_are_argv_lists_and_env_values_stay_literal(tmp_path: Path, tag: str) -> None:
    (tmp_path / "server.env").write_text("SHADOWTEST_EVIL='$(touch pwned6) `touch pwned7`'\n")
    record = tmp_path / "primary.record"
    argv = [
        "{python}",
        FAULTSERVER,
        "--port",
        "{port}",
        "--tag",
        f"{tag} {HOSTILE} $SHADOWTEST_EVIL {{SHADOWTEST_EVIL}}",
        "--record",
        str(record),
    ]
    config = tmp_path / "c.toml"
    config.write_text(
        "[targets.primary]\n"
        'url = "http://127.0.0.1:0"\n'
        f"command = {json.dumps(argv)}\n"
        f'cwd = "{tmp_path}"\n'
        'env_file = "server.env"\n'
        'env = { SHADOWTEST_PLAIN = "$(touch pwned8)" }\n'
        'health = { path = "/health", timeout_s = 15 }\n\n' + target("candidate", tag)
    )
    log = write_jsonl(tmp_path / "l.jsonl", [{"method": "GET", "path": "/ok/1"}])
    result = run_faults(config, tmp_path, str(log))
    check_run(result, tag, 0)
    started = json.loads(record.read_text().splitlines()[0])
    assert f"{tag} {HOSTILE} $SHADOWTEST_EVIL {{SHADOWTEST_EVIL}}" in started["argv"]
    assert started["env"] == {
        "SHADOWTEST_EVIL": "$(touch pwned6) `touch pwned7`",
        "SHADOWTEST_PLAIN": "$(touch pwned8)",
    }
    for folder in (tmp_path, ROOT, Path.cwd()):
        assert not [p for p in os.listdir(folder) if p.startswith("pwned")]


def test_target_names_are_fixed_and_cannot_name_a_path(tmp_path: Path) -> None:
    for name in ('"../../etc/passwd"', "evil", '"primary/../x"'):
        config = tmp_path / "c.toml"
        config.write_text(f'[targets.{name}]\nurl = "http://127.0.0.1:1"\ncommand = ["true"]\n')
        result = run_shadow("check", "-c", str(config))
        assert result.returncode == 2
        assert "unknown target (use primary, candidate, secondary)" in result.stderr


# -- replay goes only to the configured targets -------------------------------------------------


def _logs_pointing_at(tmp_path: Path, host: str) -> list[Path]:
    jsonl = write_jsonl(
        tmp_path / "abs.jsonl",
        [{"method": "GET", "path": f"http://{host}/ok/jsonl", "headers": {"Host": host}}],
    )
    har = tmp_path / "abs.har"
    entry = {"request": {"method": "GET", "url": f"http://{host}/ok/har", "headers": []}}
    har.write_text(json.dumps({"log": {"entries": [entry]}}))
    gor = tmp_path / "abs.gor"
    sep = "\n\U0001f435\U0001f648\U0001f649\n"
    gor.write_text(f"1 a1 1795791600000000000 -1\nGET http://{host}/ok/gor HTTP/1.1\r\n\r\n{sep}")
    access = tmp_path / "abs.log"
    access.write_text(
        f'127.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET http://{host}/ok/access HTTP/1.1" '
        '200 1 "-" "-"\n'
    )
    return [jsonl, har, gor, access]


def test_recorded_hosts_absolute_urls_and_proxies_never_steer_replay(
    tmp_path: Path, tag: str
) -> None:
    with idle_listener(tmp_path) as (elsewhere, idle_record):
        host = elsewhere.removeprefix("http://")
        primary_record = tmp_path / "primary.record"
        config = fault_config(
            tmp_path,
            tag,
            primary=["--record", str(primary_record)],
            extra='[replay]\nhost_header = "preserve"\n',
        )
        logs = [str(p) for p in _logs_pointing_at(tmp_path, host)]
        redirect = write_jsonl(
            tmp_path / "redirect.jsonl",
            [{"method": "GET", "path": f"/redirect?to={elsewhere}/stolen"}],
        )
        env = {**os.environ, "HTTP_PROXY": elsewhere, "http_proxy": elsewhere}
        env |= {"ALL_PROXY": elsewhere, "NO_PROXY": ""}
        proc = subprocess.run(
            shadow_cmd(
                "run",
                "-c",
                str(config),
                "--run-dir",
                str(tmp_path / "run"),
                "--emit",
                "all",
                *logs,
                str(redirect),
            ),
            capture_output=True,
            cwd=ROOT,
            env=env,
            timeout=60,
            check=False,
        )
        result = Shadow(proc.returncode, proc.stdout, proc.stderr.decode())
        check_run(result, tag, 0)
        assert received(idle_record) == []  # not one connection
    sent = [e for e in received(primary_record) if "target" in e and e["target"] != "/health"]
    # Each read reached the primary twice (the second for calibration), never anywhere else.
    targets = sorted({e["target"] for e in sent})
    assert targets == sorted(
        ["/ok/jsonl", "/ok/har", "/ok/gor", "/ok/access", f"/redirect?to={elsewhere}/stolen"]
    )
    hosts = {{k.lower(): v for k, v in e["headers"]}.get("host") for e in sent}
    assert host in hosts  # the recorded Host was kept as a header, and only as a header
