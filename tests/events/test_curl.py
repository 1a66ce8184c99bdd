"""The `curl` command of an event, parsed by a real shell with `curl` standing in as a recorder."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from typing import Any

import orjson
import pytest

from shadow.events.curl import curl_command, placeholder
from shadow.events.sink import Sink
from shadow.model import REDACTED, CompareRules, Difference, Exchange, Failure, Record, Response

# Prints what the shell handed to `curl`: its arguments and what it read on stdin.
RECORDER = (
    "import base64, json, sys\n"
    "data = sys.stdin.buffer.read() if '@-' in sys.argv else b''\n"
    "print(json.dumps({'argv': sys.argv[1:], 'stdin': base64.b64encode(data).decode()}))\n"
)


def shell(command: str, **env: str) -> dict[str, Any]:
    script = f'curl() {{ "{sys.executable}" -c "$RECORDER" "$@"; }}\n{command}'
    done = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": os.environ["PATH"], "RECORDER": RECORDER, **env},
        capture_output=True,
        timeout=10,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def headers_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-H"]


@pytest.mark.e2e
def test_secrets_become_placeholders_the_shell_fills_in() -> None:
    record = Record(
        "POST",
        "/check?x=1&y=$HOME",
        headers=(("Authorization", "Bearer secret"), ("X-Api-Key", "k"), ("Accept", "a'b\"c")),
        body=[{"it's": "ok"}],
        body_form="json",
        auth="internal",
    )
    request = record.to_dict(frozenset({"authorization", "x-api-key"}))
    command = curl_command(request, auth_header="AUTHORIZATION")
    assert "secret" not in command and REDACTED not in command
    seen = shell(command, TARGET="http://127.0.0.1:9", AUTHORIZATION="tok", X_API_KEY="key")
    argv = seen["argv"]
    assert argv[argv.index("-X") + 1] == "POST"
    assert "http://127.0.0.1:9/check?x=1&y=$HOME" in argv  # the path is literal
    assert headers_of(argv) == [
        "X-Api-Key: key",
        "Accept: a'b\"c",
        "AUTHORIZATION: tok",
        "Content-Type: application/json",
    ]
    assert orjson.loads(argv[argv.index("--data-binary") + 1]) == [{"it's": "ok"}]


@pytest.mark.e2e
def test_binary_and_text_bodies_and_head() -> None:
    raw = bytes(range(256))
    request = Record("PUT", "/b", body_bytes=raw, body_form="b64").to_dict()
    seen = shell(curl_command(request), TARGET="http://h")
    assert base64.b64decode(seen["stdin"]) == raw and seen["argv"][-1] == "@-"
    text = Record("POST", "/t", body_bytes="a\x00b é".encode(), body_form="text").to_dict()
    seen = shell(curl_command(text), TARGET="http://h")
    assert base64.b64decode(seen["stdin"]) == "a\x00b é".encode()
    plain = Record("POST", "/t", body_bytes=b"x=1 y", body_form="text").to_dict()
    argv = shell(curl_command(plain), TARGET="http://h")["argv"]
    assert argv[-2:] == ["--data-binary", "x=1 y"]
    head = shell(curl_command({"method": "HEAD", "path": "/a b"}), TARGET="http://h")["argv"]
    assert "--head" in head and "http://h/a%20b" in head  # encoded as the replayer sends it


@pytest.mark.parametrize(
    ("header", "name"),
    [("Authorization", "AUTHORIZATION"), ("X-API-Key", "X_API_KEY"), ("1st", "_1ST")],
)
def test_placeholder_names(header: str, name: str) -> None:
    assert placeholder(header) == name


def exchange_with(outcomes: dict[str, Any], noise: list[Difference]) -> Exchange:
    record = Record("GET", "/x", headers=(("Authorization", "Bearer t0ken"),))
    exchange = Exchange(3, record, "GET /x", CompareRules(), outcomes)
    exchange.noise = noise
    return exchange


def test_error_and_mismatch_events_carry_curl_and_noise_shows_with_emit_all() -> None:
    ok = Response(200, (), b"{}", 1.0)
    clock = Difference("/at", "value", "t1", "t2")
    out = io.BytesIO()
    sink = Sink("r", out)
    failed = exchange_with({"primary": ok, "candidate": Failure("reset", "gone")}, [])
    sink.exchange(failed, "error", frozenset({"authorization"}))
    quiet = exchange_with({"primary": ok, "candidate": ok}, [clock])
    sink.exchange(quiet, "match", frozenset({"authorization"}), show_noise=True)
    sink.exchange(quiet, "match", frozenset({"authorization"}))
    loud = exchange_with({"primary": ok, "candidate": ok}, [clock])
    loud.diffs = [Difference("/v", "value", 1, 2)]
    sink.exchange(loud, "mismatch", frozenset({"authorization"}), show_noise=True, auth_header="A")
    sink.exchange(loud, "mismatch", frozenset({"authorization"}))
    error, noise_only, plain_match, mismatch, default = map(
        orjson.loads, out.getvalue().splitlines()
    )
    assert error["curl"].endswith('-H "Authorization: $AUTHORIZATION"')
    assert b"t0ken" not in out.getvalue()
    assert noise_only["suppressed"] == "noise"
    assert noise_only["diffs"] == [{**clock.to_dict(), "suppressed": "noise"}]
    assert (
        "suppressed" not in plain_match and "diffs" not in plain_match and "curl" not in plain_match
    )
    assert [d.get("suppressed") for d in mismatch["diffs"]] == [None, "noise"]
    assert '"A: $A"' in mismatch["curl"]
    assert default["diffs"] == [loud.diffs[0].to_dict()]


def test_the_curl_line_leaves_out_every_header_the_replayer_does_not_send() -> None:
    hop = [
        ["Host", "legacy.internal"],
        ["Content-Length", "3"],
        ["Transfer-Encoding", "chunked"],
        ["Connection", "keep-alive"],
        ["Keep-Alive", "timeout=5"],
        ["TE", "trailers"],
        ["Upgrade", "h2c"],
        ["Proxy-Connection", "keep-alive"],
        ["Expect", "100-continue"],
        ["Trailer", "X-Sum"],
    ]
    command = curl_command({"method": "GET", "path": "/x", "headers": [*hop, ["X-Kept", "1"]]})
    assert "'X-Kept: 1'" in command
    for name, value in hop:
        assert f"{name}: {value}" not in command, name
