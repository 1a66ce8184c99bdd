"""docker/Dockerfile built by a real engine and its image run: version, demo, a bind-mounted
output as the host's user, `docker stop`, the HTML report, and docker/compose.yaml.

The image is built once for this file, on docker/engine.sh's Debian bookworm base, and
removed afterwards with every container the tests started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow import __version__
from tests.docker.engine import (
    LABEL,
    build_image,
    container_name,
    docker,
    docker_env,
    owned_folder,
    remove_image,
    remove_test_containers,
    require_engine,
    run_argv,
)
from tests.support import ROOT, assert_accounted, write_jsonl

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HOST_UID = 4242 if os.geteuid() == 0 else os.geteuid()  # a host user that is not the image's
DEMO_BUGS = {"Check Bans", "GTC Stake"}


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    require_engine()
    tag = build_image()
    try:
        yield tag
    finally:
        remove_test_containers()
        remove_image(tag)


def events_of(stdout: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines() if line.startswith(b"{")]


def test_the_image_answers_its_version(image: str) -> None:
    proc = docker(*run_argv(image, "--version"))
    assert proc.stdout.decode().strip() == f"shadow {__version__}"


def test_the_image_runs_the_demo_and_finds_exactly_the_two_seeded_bugs(image: str) -> None:
    proc = docker(*run_argv(image, "demo", "-q"), check=False)
    assert proc.returncode == 1, proc.stderr.decode()
    events = events_of(proc.stdout)
    finished = events[-1]
    assert finished["event"] == "run_finished"
    assert (finished["requests"], finished["mismatched"], finished["errors"]) == (13, 2, 0)
    assert {e["endpoint"] for e in events if e["event"] == "mismatch"} == DEMO_BUGS


def items_log(folder: Path) -> Path:
    records = [{"id": f"r{n}", "method": "GET", "path": f"/items/{n}"} for n in range(1, 11)]
    log = write_jsonl(folder / "traffic.jsonl", records)
    if os.geteuid() == 0:
        os.chown(log, HOST_UID, HOST_UID)
    return log


def test_the_readme_recipe_writes_its_output_into_the_mounted_folder_as_the_host_user(
    image: str, tmp_path: Path, fake_pair: tuple[str, str]
) -> None:
    # README "Docker": `--user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work`, the folder
    # being the host user's (here uid HOST_UID); --network host reaches the fake pair.
    work = owned_folder(tmp_path / "work", HOST_UID)
    items_log(work)
    primary, candidate = fake_pair
    mount = ["--network", "host", "-v", f"{work}:/work", "-w", "/work"]
    args = ("run", "--primary", primary, "--candidate", candidate, "traffic.jsonl")
    user = ["--user", f"{HOST_UID}:{HOST_UID}"]
    proc = docker(
        *run_argv(image, *args, "--output", "events.jsonl", options=user + mount), check=False
    )
    # The candidate answers n as a string when n % 5 == 0: /items/5 and /items/10 differ.
    assert proc.returncode == 1, proc.stderr.decode()
    output = work / "events.jsonl"
    assert output.stat().st_uid == HOST_UID
    events = events_of(output.read_bytes())
    finished = events[-1]
    assert (finished["requests"], finished["mismatched"]) == (10, 2)
    assert_accounted(finished)
    # Without --user the image's own user (uid 10001) may not write there: a clear message
    # naming the file, exit 2, no traceback (why the README says --user).
    (work / "denied.jsonl").unlink(missing_ok=True)
    argv = run_argv(image, *args, "--output", "denied.jsonl", options=mount)
    if os.geteuid() == 0:
        denied = docker(*argv, check=False)
        assert denied.returncode == 2, denied.stderr.decode()
        stderr = denied.stderr.decode()
        assert "Permission denied" in stderr and "Traceback" not in stderr


def test_docker_stop_drains_the_run_and_writes_run_finished_interrupted(image: str) -> None:
    name = container_name()
    args = ("demo", "-q", "--loop", "--duration", "10m", "--rate", "50")
    docker("run", "-d", "--init", "--label", LABEL, "--name", name, image, *args,
           "--progress-interval", "0.2")  # fmt: skip
    try:
        wait_for_event(name, "progress")
        docker("stop", "-t", "30", name, timeout_s=60)
        code = int(docker("wait", name).stdout.decode().strip())
        events = events_of(docker("logs", name).stdout)
    finally:
        docker("rm", "--force", name, check=False)
    finished = events[-1]
    assert finished["event"] == "run_finished"
    assert finished["interrupted"] is True
    assert finished["requests"] > 0
    assert_accounted(finished)
    assert code == finished["exit_code"] == 1  # the demo's bugs, found before the stop


def wait_for_event(container: str, kind: str, timeout_s: float = 60) -> None:
    """Until the container has written an event of `kind` on its stdout (bounded)."""
    deadline = time.monotonic() + timeout_s
    needle = f'"event":"{kind}"'.encode()
    while time.monotonic() < deadline:
        logs = docker("logs", container).stdout
        if needle in logs:
            return
        state = docker("inspect", "--format", "{{.State.Running}}", container).stdout
        assert state.strip() == b"true", f"{container} ended before any {kind} event: {logs!r}"
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event from {container} within {timeout_s}s")


def test_report_html_runs_inside_the_image(image: str, tmp_path: Path) -> None:
    work = owned_folder(tmp_path / "work", HOST_UID)
    user = ["--user", f"{HOST_UID}:{HOST_UID}", "-v", f"{work}:/work", "-w", "/work"]
    demo = docker(*run_argv(image, "demo", "-q", "--output", "events.jsonl", options=user),
                  check=False)  # fmt: skip
    assert demo.returncode == 1, demo.stderr.decode()
    args = ("report", "events.jsonl", "--html", "report.html")
    proc = docker(*run_argv(image, *args, options=user), check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    html = (work / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html  # the plots were drawn
    assert all(bug in html for bug in DEMO_BUGS)
    assert all(bug in proc.stdout.decode() for bug in DEMO_BUGS)


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("neither docker-compose nor `docker compose` is installed")


def test_compose_runs_the_demo_against_the_built_image(image: str) -> None:
    project = f"shadowtest{uuid.uuid4().hex[:8]}"
    argv = [*compose_command(), "-f", str(ROOT / "docker" / "compose.yaml"), "-p", project]
    env = {**docker_env(), "SHADOW_IMAGE": image}

    def compose(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*argv, *args], env=env, capture_output=True, timeout=180, check=False
        )

    try:
        up = compose("up", "--no-build", "--exit-code-from", "shadow")
        assert up.returncode == 1, up.stdout.decode()[-3000:] + up.stderr.decode()[-3000:]
        logs = compose("logs", "--no-color", "--no-log-prefix", "shadow")
    finally:
        down = compose("down", "--volumes", "--remove-orphans")
    assert down.returncode == 0, down.stderr.decode()
    events = events_of(logs.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds.count("server_ready") == 2
    urls = {e["target"]: e["url"] for e in events if e["event"] == "server_ready"}
    assert urls == {"primary": "http://legacy:8002", "candidate": "http://rewrite:3000"}
    finished = events[-1]
    assert (finished["requests"], finished["mismatched"], finished["errors"]) == (13, 2, 0)
    assert {e["endpoint"] for e in events if e["event"] == "mismatch"} == DEMO_BUGS
    left = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}")
    assert left.stdout.strip() == b""
