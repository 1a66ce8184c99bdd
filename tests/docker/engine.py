"""The Docker engine the image tests talk to: docker/engine.sh's, or the one DOCKER_HOST names.

The tests skip, saying why, only where no engine answers; with SHADOW_REQUIRE_DOCKER=1 (CI
sets it, having started one) a missing engine fails them instead, so CI cannot pass by
skipping.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support import ROOT

ENGINE_SH = ROOT / "docker" / "engine.sh"
LABEL = "org.shadow.test"  # on every container the tests start, to find and remove them


@functools.cache
def own_socket() -> Path:
    """Where docker/engine.sh puts its engine's socket (build/docker/, or /tmp if too deep)."""
    proc = subprocess.run(
        ["bash", str(ENGINE_SH), "socket"], capture_output=True, text=True, check=True
    )
    return Path(proc.stdout.strip())


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or f"unix://{own_socket()}"


def own_engine() -> bool:
    return docker_host() == f"unix://{own_socket()}"


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": docker_host()}


def docker(
    *args: str, timeout_s: float = 120, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["docker", *args],
        env=docker_env(),
        input=stdin,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
        )
    return proc


def require_engine() -> None:
    """Skip (or, under SHADOW_REQUIRE_DOCKER=1, fail) unless an engine answers."""
    reason = None
    if shutil.which("docker") is None:
        reason = "no docker client on PATH"
    elif own_engine() and not own_socket().exists():
        reason = f"no Docker engine: DOCKER_HOST is not set and {own_socket()} does not exist"
    else:
        proc = docker("version", "--format", "{{.Server.Version}}", timeout_s=30, check=False)
        if proc.returncode != 0:
            reason = f"the Docker engine at {docker_host()} does not answer"
    if reason is None:
        return
    reason += " (start one with `docker/engine.sh start`, as .ci/run does)"
    if os.environ.get("SHADOW_REQUIRE_DOCKER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def build_image() -> str:
    """docker/Dockerfile built on the engine's Debian base, under a tag of this test run's."""
    tag = f"shadow:test-{uuid.uuid4().hex[:12]}"
    env = {**docker_env(), "SHADOW_IMAGE": tag}
    proc = subprocess.run(
        ["bash", str(ENGINE_SH), "build"], env=env, capture_output=True, timeout=540, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return tag


def remove_image(tag: str) -> None:
    docker("rmi", "--force", tag, check=False)
    if own_engine():  # the project's own engine: the build stages left untagged go too
        docker("image", "prune", "--force", check=False)


def container_name() -> str:
    return f"shadowtest-{uuid.uuid4().hex[:12]}"


def remove_test_containers() -> None:
    found = docker("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
    if found:
        docker("rm", "--force", *(c.decode() for c in found), check=False)


def run_argv(image: str, *args: str, options: Sequence[str] = ()) -> list[str]:
    """`docker run` of the image, removed when it ends, with an init process as PID 1."""
    return ["run", "--rm", "--init", "--label", LABEL, *options, image, *args]


def owned_folder(path: Path, uid: int) -> Path:
    """`path`, created and owned by `uid` (when this process may give it away)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path
