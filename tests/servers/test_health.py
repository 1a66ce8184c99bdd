"""Health checks that name the fix: what is awaited, said at once; the last cause on failure;
`{port}`, `cwd` and `--health-timeout` as a user writes them. Through the command line."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from shadow.config.targets import TargetConfig
from shadow.servers.managed import probe_failure
from tests.support import FAKE_SERVER, free_port, run_shadow, write_jsonl

ONE_RECORD = [{"method": "GET", "path": "/items/1"}]


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_404_server() -> Iterator[str]:
    """A plain-HTTP server on 127.0.0.1 answering 404 to everything, in a thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.e2e
def test_refused_says_what_it_waits_for_and_why_it_gave_up(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", ONE_RECORD)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    result = run_shadow(
        "run", "--primary", url, "--candidate", url, "--health-timeout", "0.5", str(log)
    )
    assert result.returncode == 3, result.stderr
    assert f"shadow: waiting for primary at {url} (GET /)...\n" in result.stderr
    assert (
        f"did not answer GET {url}/ with a status below 500 within 0.5s (--health-timeout, "
        f"[targets.primary.health] timeout_s): connection refused (nothing listens on "
        f"127.0.0.1 port {port})"
    ) in result.stderr


@pytest.mark.e2e
def test_tls_to_an_http_server_and_a_last_status_are_named(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", ONE_RECORD)
    with http_404_server() as address:
        tls = run_shadow(
            "run",
            "--primary",
            f"https://{address}",
            "--candidate",
            f"https://{address}",
            "--health-timeout",
            "2",
            str(log),
        )
        config = tmp_path / "status.toml"
        config.write_text(f"""
[targets.primary]
url = "http://{address}"
health = {{ path = "/health", status = 200, timeout_s = 2 }}
[targets.candidate]
url = "http://{address}"
health = {{ path = "/health", status = 200, timeout_s = 2 }}
""")
        status = run_shadow("run", "-c", str(config), str(log))
    assert tls.returncode == 3
    assert "TLS failed (" in tls.stderr and "the url says https://" in tls.stderr, tls.stderr
    assert status.returncode == 3
    assert f"did not answer GET http://{address}/health with status 200" in status.stderr
    assert "timeout_s): last status 404\n" in status.stderr, status.stderr


@pytest.mark.e2e
def test_port_placeholder_is_the_urls_port_whatever_it_is(tmp_path: Path, tag: str) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", ONE_RECORD)
    ports = {"primary": free_port(), "candidate": free_port()}
    config = tmp_path / "fixed.toml"
    config.write_text(
        "".join(
            f"""
[targets.{name}]
url = "http://127.0.0.1:{port}"
command = ["{{python}}", "{FAKE_SERVER}", "--port", "{{port}}", "--lifetime", "30"]
health = {{ timeout_s = 15 }}
"""
            for name, port in ports.items()
        )
    )
    result = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "run"), str(log))
    assert result.returncode in (0, 1), result.stderr
    ready = {e["target"]: e["url"] for e in result.of("server_ready")}
    assert ready == {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


@pytest.mark.e2e
def test_a_missing_cwd_is_named_as_the_missing_directory(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", ONE_RECORD)
    config = tmp_path / "cwd.toml"
    config.write_text(f"""
[targets.primary]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{FAKE_SERVER}", "--port", "{{port}}"]
cwd = "no-such-dir"
[targets.candidate]
url = "http://127.0.0.1:{free_port()}"
""")
    result = run_shadow("run", "-c", str(config), "--run-dir", str(tmp_path / "run"), str(log))
    assert result.returncode == 3
    missing = tmp_path / "no-such-dir"
    assert f"cwd {missing} does not exist (targets.primary.cwd)" in result.stderr, result.stderr
    assert "python" not in result.stderr.split("cwd", 1)[0][-40:]


@pytest.mark.e2e
def test_verbose_says_more_and_quiet_less(tmp_path: Path) -> None:
    verbose = run_shadow("demo", "-v", "--run-dir", str(tmp_path / "v"))
    assert verbose.returncode == 1
    assert "shadow: waiting for primary at http://127.0.0.1:" in verbose.stderr
    assert "shadow: seq 0 Embed Weights: GET /internal/embed/weights: match (primary 200" in (
        verbose.stderr
    )
    assert "shadow: auth ceramic: minted a token (claims: did, token_type)" in verbose.stderr
    assert "demo-secret" not in verbose.stderr  # -v shows requests as events do: redacted
    normal = run_shadow("demo", "--run-dir", str(tmp_path / "n"))
    assert "shadow: seq 0" not in normal.stderr and "waiting for primary" in normal.stderr
    quiet = run_shadow("demo", "-q", "--run-dir", str(tmp_path / "q"))
    assert quiet.returncode == 1 and quiet.stderr == ""
    assert quiet.summary["mismatched"] == 2


def test_each_probe_failure_names_its_cause() -> None:
    target = TargetConfig("primary", "https://no-such-host.invalid:8443")
    dns = aiohttp.ClientConnectorDNSError(None, OSError(-2, "Name or service not known"))  # type: ignore[arg-type]
    assert probe_failure(dns, target, 2) == "unknown host 'no-such-host.invalid'"
    assert probe_failure(TimeoutError(), target, 2) == "no answer within 2s"
    assert probe_failure(aiohttp.ServerDisconnectedError(), target, 2) == (
        "the server closed the connection without answering"
    )
