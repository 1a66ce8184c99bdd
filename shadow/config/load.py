"""The TOML configuration as frozen dataclasses; every error names the file and the key.

Validation is done by hand, table by table, rather than with a schema library: the messages
are the product here (`config/x.toml: targets.primary.command: must be a list of strings, not
a string`), and each table is small. One module per table reads it (shadow.config.targets,
.replay, .rules, .verdict, .auth, .redact, .synth); this one reads the file, puts the tables
together, and answers the command line's `--primary URL` and `shadow check`. Paths inside
the file are relative to the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shadow.config.auth import AuthProfile, parse_auth
from shadow.config.redact import RedactConfig, mask_userinfo, parse_redact
from shadow.config.replay import ReplayConfig, parse_replay
from shadow.config.rules import EndpointRule, parse_endpoint, parse_rules
from shadow.config.synth import SynthConfig, parse_synth
from shadow.config.table import Table, read_env_file
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

    def lookup_secret(self, var: str) -> str | None:
        """An env var for auth: the process environment first, then the config's env_file."""
        return os.environ.get(var, self.secrets.get(var))


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigError naming the file and key."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    return parse(data, source, Path(source).resolve().parent)


def parse(data: dict[str, Any], source: str, base: Path) -> Config:
    root = Table(source, "", data)
    secrets = read_env_file(root, "env_file", base)
    run_dir = root.text("run_dir")
    targets_table = root.table("targets")
    targets = {}
    for name in list(targets_table.data):
        if name not in TARGET_NAMES:
            raise targets_table.fail(name, "unknown target (use primary, candidate, secondary)")
        targets[name] = parse_target(targets_table.table(name), name, base)
    auth_table = root.table("auth")
    auth = {name: parse_auth(auth_table.table(name), name, base) for name in list(auth_table.data)}
    compare_table = root.table("compare")
    endpoints = tuple(
        parse_endpoint(compare_table.child(f"endpoint[{i}]", item), auth)
        for i, item in enumerate(compare_table.get("endpoint", (list,), "a list of tables") or [])
    )
    config = Config(
        source=source,
        targets=targets,
        replay=parse_replay(root.table("replay")),
        compare=parse_rules(compare_table),
        endpoints=endpoints,
        auth=auth,
        thresholds=parse_thresholds(root.table("thresholds")),
        noise=parse_noise(root.table("noise")),
        redact=parse_redact(root.table("redact")),
        secrets=secrets,
        run_dir=str(base / run_dir) if run_dir else None,
        synth=parse_synth(root.table("synth"), auth) if "synth" in data else None,
    )
    compare_table.done()
    root.done()
    return config


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


def check_targets(config: Config) -> None:
    for name in ("primary", "candidate"):
        if name not in config.targets:
            raise ConfigError(config.source, f"targets.{name}", "missing (a url is required)")


def describe(config: Config) -> dict[str, Any]:
    """The resolved config as JSON-able data (`shadow check`); env values, header values,
    url userinfo and secrets masked."""
    out: dict[str, Any] = {"source": config.source, "targets": {}}
    for name, target in config.targets.items():
        data = dataclasses.asdict(target)
        data["env"] = dict.fromkeys(target.env, "***")
        data["headers"] = [[name, "***"] for name, _ in target.headers]  # credentials, often
        data["url"] = mask_userinfo(target.url)
        data["managed"] = target.managed
        out["targets"][name] = data
    out["replay"] = dataclasses.asdict(config.replay)
    out["compare"] = dataclasses.asdict(config.compare)
    out["endpoints"] = [
        {
            "name": e.name,
            "method": e.method,
            "path": e.route,
            "auth": e.auth,
            **dataclasses.asdict(e.rules),
        }
        for e in config.endpoints
    ]
    out["auth"] = {name: dataclasses.asdict(p) for name, p in config.auth.items()}
    out["thresholds"] = dataclasses.asdict(config.thresholds)
    out["noise"] = dataclasses.asdict(config.noise)
    out["synth"] = config.synth.describe() if config.synth is not None else None
    out["secrets_from_env_file"] = sorted(config.secrets)
    return out
