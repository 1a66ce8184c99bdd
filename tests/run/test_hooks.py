"""`[hooks] module`: config/hooks_sigv4.py signing each request for its target against real
servers that verify SigV4 signatures, and hooks that normalise, raise, or cannot load."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    CONFIGS,
    HELPERS,
    assert_accounted,
    free_port,
    run_shadow,
    serving,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
KEYS = {"SIGV4_ACCESS_KEY_ID": "AKIDEXAMPLE", "SIGV4_SECRET_ACCESS_KEY": SECRET}
STALE_SIGNATURE = "AWS4-HMAC-SHA256 Credential=AKIDOLD/20240501/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + "0" * 64  # fmt: skip
RECORDS = [
    {"method": "GET", "path": "/items?b=2&a=1", "headers": {"Authorization": STALE_SIGNATURE}},
    {"method": "POST", "path": "/items", "body": {"name": "lamp", "price": 12}},
    {"method": "GET", "path": "/items/caf%C3%A9"},
]


@pytest.fixture(scope="module")
def verifiers() -> Iterator[dict[str, str]]:
    """Two verifying servers: the primary's region us-east-1, the candidate's eu-west-1."""
    env = {**os.environ, "VERIFY_SECRET": SECRET}
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, region in (("primary", "us-east-1"), ("candidate", "eu-west-1")):
            port = free_port()
            argv = [sys.executable, str(HELPERS / "sigv4_server.py"), "--port", str(port)]
            argv += ["--secret-env", "VERIFY_SECRET", "--region", region]
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(serving(argv, url + "/health", env))
            urls[name] = url
        yield urls


def write_config(tmp_path: Path, urls: dict[str, str], module: Path | None) -> Path:
    hooks = f'[hooks]\nmodule = "{module}"\n\n' if module is not None else ""
    config = tmp_path / "shadow.toml"
    config.write_text(
        hooks + f'[targets.primary]\nurl = "{urls["primary"]}"\n\n'
        f'[targets.candidate]\nurl = "{urls["candidate"]}"\n'
    )
    return config


def test_the_sigv4_hook_signs_each_request_for_its_target(
    tmp_path: Path, verifiers: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", RECORDS)
    config = write_config(tmp_path, verifiers, CONFIGS / "hooks_sigv4.py")
    args = ("run", "-c", str(config), "--no-calibration", str(log))
    result = run_shadow(*args, env={**KEYS, "SIGV4_REGION_CANDIDATE": "eu-west-1"})
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert summary["matched"] == 3 and summary["errors"] == 0
    assert summary["statuses"]["candidate"]["200"] == 3
    assert SECRET not in result.stdout.decode() + result.stderr

    # Signed for the primary's region on both: the candidate refuses every request.
    one_region = run_shadow(*args, env=KEYS)
    assert one_region.returncode == 1
    assert one_region.summary["mismatched"] == 3
    assert one_region.summary["statuses"]["candidate"]["403"] == 3
    # And without the hook, the stale recorded signature is refused by both.
    unsigned = run_shadow("run", "-c", str(write_config(tmp_path, verifiers, None)), *args[3:])
    assert unsigned.summary["statuses"]["primary"]["403"] == 3


def test_a_hooks_module_that_cannot_be_imported_stops_the_run_before_it_starts(
    tmp_path: Path, verifiers: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", RECORDS)
    config = write_config(tmp_path, verifiers, CONFIGS / "hooks_sigv4.py")
    env = {"SIGV4_ACCESS_KEY_ID": "AKIDEXAMPLE", "SIGV4_SECRET_ACCESS_KEY": ""}
    result = run_shadow("run", "-c", str(config), str(log), env=env)
    assert result.returncode == 2
    assert "hooks.module" in result.stderr
    assert "SIGV4_SECRET_ACCESS_KEY is not set" in result.stderr
    assert result.stdout == b""  # before run_started


RAISING = """
import os
from shadow.model import HookRequest

with open(os.environ["HOOKS_LOADED"], "a") as f:
    f.write(f"{os.getpid()}\\n")


def prepare_request(target: str, request: HookRequest) -> HookRequest | None:
    if target == "candidate" and request.path == "/boom":
        raise ValueError("no tenant for /boom")
    return request.with_header("X-Tenant", target)


def normalize_body(target: str, endpoint: str, body: bytes, content_type: str) -> bytes:
    if endpoint == "GET /health":
        raise KeyError("health")
    return b"".join(b"#" if 48 <= c <= 57 else bytes([c]) for c in body)
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hook_that_raises_is_an_error_event_and_the_run_goes_on(
    tmp_path: Path, workers: int
) -> None:
    module = tmp_path / "hooks.py"
    module.write_text(RAISING)
    loaded = tmp_path / "loaded.txt"
    (tmp_path / "candidate.state").write_text("7")  # GET /count: 0 vs 7, normalised away
    with contextlib.ExitStack() as stack:
        urls = {}
        for name in ("primary", "candidate"):
            port = free_port()
            argv = [sys.executable, str(HELPERS / "counter_server.py"), "--port", str(port)]
            argv += ["--state", str(tmp_path / f"{name}.state")]
            stack.enter_context(serving(argv, f"http://127.0.0.1:{port}/health"))
            urls[name] = f"http://127.0.0.1:{port}"
        records = [{"method": "GET", "path": p} for p in ("/count", "/boom", "/health")]
        log = write_jsonl(tmp_path / "log.jsonl", records)
        config = write_config(tmp_path, urls, Path("hooks.py"))  # relative to the config
        result = run_shadow(
            "run", "-c", str(config), "--no-calibration", "--workers", str(workers), str(log),
            env={"HOOKS_LOADED": str(loaded)},
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    summary = result.summary
    assert (summary["requests"], summary["matched"], summary["errors"]) == (3, 1, 2)
    assert_accounted(summary)
    errors = {e["request"]["path"]: e for e in result.of("error")}
    assert errors["/boom"]["error"] == "hook" and errors["/boom"]["side"] == "candidate"
    assert errors["/boom"]["message"] == (
        "candidate: prepare_request: ValueError: no tenant for /boom"
    )
    assert errors["/health"]["error"] == "hook" and errors["/health"]["side"] == "both"
    assert "normalize_body: KeyError: 'health'" in errors["/health"]["message"]
    # Imported once per process: the parent, and each worker for itself.
    pids = set(loaded.read_text().split())
    assert len(pids) == (1 if workers == 1 else 1 + workers)
