"""The config's JSON Schema, shipped in the package: it takes every config the project ships
and every key the parser knows (the resolved config names them all), and refuses a typo."""

from __future__ import annotations

import tomllib
from pathlib import Path

import jsonschema
import orjson
import pytest

from shadow.config.load import load
from shadow.config.resolved import resolved
from tests.support import CONFIGS, ROOT, run_shadow

SCHEMA = ROOT / "shadow" / "schemas" / "config.schema.json"
SHIPPED = sorted([*CONFIGS.glob("*.toml"), *(ROOT / "docker").glob("*.toml")])


def validator() -> jsonschema.Draft202012Validator:
    schema = orjson.loads(SCHEMA.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_and_its_resolved_form_match(path: Path) -> None:
    check = validator()
    assert list(check.iter_errors(tomllib.loads(path.read_text()))) == []
    full = resolved(load(path, env_files=False))  # every key the parser reads, with a default
    full.pop("synth", None)  # as written, checked above
    assert [e.message for e in check.iter_errors(full)] == []


def test_a_misspelt_key_and_a_wrong_type_are_refused() -> None:
    data = tomllib.loads((CONFIGS / "demo.toml").read_text())
    data["replay"]["concurency"] = 4
    data["targets"]["primary"]["health"]["path"] = "no-slash"
    messages = sorted(e.message for e in validator().iter_errors(data))
    assert len(messages) == 2
    assert "'no-slash' does not match '^/'" in messages[0]
    assert "'concurency' was unexpected" in messages[1]


@pytest.mark.e2e
@pytest.mark.parametrize("which", ["events", "config"])
def test_shadow_schema_prints_the_shipped_schema(which: str) -> None:
    result = run_shadow("schema", which)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "shadow" / "schemas" / f"{which}.schema.json").read_bytes()
