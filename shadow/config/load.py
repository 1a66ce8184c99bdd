"""The TOML configuration as frozen dataclasses; every error names the file and the key.

Validation is done by hand, table by table, rather than with a schema library: the messages
are the product here (`config/x.toml: targets.primary.command: must be a list of strings, not
a string`), and each table is small. One module per table reads it (shadow.config.targets,
.replay, .rules, .verdict, .auth, .redact, .synth); this one reads the file, puts the tables
together, and answers the command line's `--primary URL` and `shadow check`. Paths inside
the file are relative to the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shadow.config.auth import AuthProfile, parse_auth
from shadow.config.keys import unknown_keys
from shadow.config.redact import RedactConfig, parse_redact
from shadow.config.replay import ReplayConfig, parse_replay
from shadow.config.rules import EndpointRule, parse_endpoint, parse_rules
from shadow.config.synth import SynthConfig, parse_synth
from shadow.config.table import Table, UnknownKeys, did_you_mean, read_env_file
from shadow.config.targets import TARGET_NAMES, TargetConfig, parse_target
from shadow.config.verdict import NoiseConfig, Thresholds, parse_noise, parse_thresholds
from shadow.errors import ConfigError
from shadow.model import CompareRules


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    targets: Mapping[str, TargetConfig]
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    compare: CompareRules = field(default_factory=CompareRules)
    endpoints: tuple[EndpointRule, ...] = ()
    auth: Mapping[str, AuthProfile] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    secrets: Mapping[str, str] = field(default_factory=dict)
    run_dir: str | None = None
    synth: SynthConfig | None = None
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    synth_table: Mapping[str, Any] | None = None  # `[synth]` as written (shadow check --print)
    env_file: str | None = None  # as written (shadow check --print)
    hooks: str | None = None  # `[hooks] module`: the hooks module's path (shadow.run.hooks)

    def lookup_secret(self, var: str) -> str | None:
        """An env var for auth: the process environment first, then the config's env_file."""
        return os.environ.get(var, self.secrets.get(var))


def load(path: str | os.PathLike[str], env_files: bool = True) -> Config:
    """Read and validate a config file; raise ConfigError naming the file and key.

    Without `env_files`, no env file is read (the top-level one for secrets, the targets'
    ones): `shadow synth` neither signs nor starts anything."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    return parse(data, source, Path(source).resolve().parent, env_files)


def parse(data: dict[str, Any], source: str, base: Path, env_files: bool = True) -> Config:
    unknown = UnknownKeys(source)
    try:
        config = _parse(data, source, base, env_files, unknown)
    except ConfigError as exc:
        # The parser stopped at `exc`: the unknown keys it did not reach are named too.
        named = {line.partition(": ")[0] for line in unknown.found} | {exc.key}
        unknown.found += [
            line for line in unknown_keys(data) if line.partition(": ")[0] not in named
        ]
        if unknown.found and exc.key not in {line.partition(": ")[0] for line in unknown.found}:
            unknown.found.append(f"{exc.key}: {exc.problem}")
        unknown.check()  # a misspelt key is the likelier cause (`templat` -> "template: missing")
        raise
    unknown.check()
    return config


def _parse(
    data: dict[str, Any], source: str, base: Path, env_files: bool, unknown: UnknownKeys
) -> Config:
    root = Table(source, "", data, unknown)
    secrets = read_env_file(root, "env_file", base) if env_files else _skip(root, "env_file")
    run_dir = root.text("run_dir")
    targets_table = root.table("targets")
    targets = {}
    for name in list(targets_table.data):
        if name not in TARGET_NAMES:
            problem = "unknown target (use primary, candidate, secondary)"
            if hint := did_you_mean(name, set(TARGET_NAMES)):
                problem += ";" + hint.replace(" (", " ", 1).rstrip(")")
            raise targets_table.fail(name, problem)
        targets[name] = parse_target(targets_table.table(name), name, base, env_files)
    auth_table = root.table("auth")
    auth = {name: parse_auth(auth_table.table(name), name, base) for name in list(auth_table.data)}
    compare_table = root.table("compare")
    endpoints = tuple(
        parse_endpoint(compare_table.child(f"endpoint[{i}]", item), auth)
        for i, item in enumerate(compare_table.get("endpoint", (list,), "a list of tables") or [])
    )
    hooks = _hooks_module(root.table("hooks"), base)
    replay = parse_replay(root.table("replay"))
    captures = replay.correlate.names
    config = Config(
        source=source,
        hooks=hooks,
        targets=targets,
        replay=replay,
        compare=parse_rules(compare_table),
        endpoints=endpoints,
        auth=auth,
        thresholds=parse_thresholds(root.table("thresholds")),
        noise=parse_noise(root.table("noise")),
        redact=parse_redact(root.table("redact")),
        secrets=secrets,
        run_dir=str(base / run_dir) if run_dir else None,
        synth=parse_synth(root.table("synth"), auth, captures) if "synth" in data else None,
        synth_table=data.get("synth"),
        env_file=data["env_file"] if isinstance(data.get("env_file"), str) else None,
    )
    compare_table.done()
    root.done()
    return config


def _hooks_module(table: Table, base: Path) -> str | None:
    """`[hooks] module`: a Python file relative to the config, checked to exist (it is
    imported when a run starts: shadow.run.hooks)."""
    module = table.text("module")
    table.done()
    if not module:
        return None
    path = base / module
    if path.suffix != ".py":
        raise table.fail("module", f"must name a Python file (.py), not {module!r}")
    if not path.is_file():
        raise table.fail("module", f"no such file: {path}")
    return str(path)


def _skip(table: Table, key: str) -> dict[str, str]:
    """An env file not read: its key is still checked to be a string."""
    table.text(key)
    return {}


def attach_config(urls: Mapping[str, str | None], source: str = "command line") -> Config:
    """A config from `--primary URL --candidate URL` alone."""
    data = {"targets": {name: {"url": url} for name, url in urls.items() if url}}
    return parse(data, source, Path.cwd())


def replace_targets(config: Config, urls: Mapping[str, str | None]) -> Config:
    """`--primary URL` and friends over a config: that target is attached at URL."""
    targets = dict(config.targets)
    for name, url in urls.items():
        if url:
            targets[name] = attach_config({name: url}).targets[name]
    return replace(config, targets=targets)


def with_health_timeout(config: Config, timeout_s: float) -> Config:
    """`--health-timeout S` over every target's `health.timeout_s`."""
    targets = {
        name: replace(t, health=replace(t.health, timeout_s=timeout_s))
        for name, t in config.targets.items()
    }
    return replace(config, targets=targets)


def check_targets(config: Config) -> None:
    for name in ("primary", "candidate"):
        if name not in config.targets:
            raise ConfigError(config.source, f"targets.{name}", "missing (a url is required)")
