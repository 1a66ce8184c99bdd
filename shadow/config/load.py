"""The TOML configuration as frozen dataclasses; every error names the file and the key.

Validation is done by hand, table by table, rather than with a schema library: the messages
are the product here (`config/x.toml: targets.primary.command: must be a list of strings, not
a string`), and each table is small. Paths inside the file are relative to the file.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from shadow.config.rules import (
    NoiseConfig,
    Thresholds,
    parse_noise,
    parse_rules,
    parse_thresholds,
)
from shadow.config.synth import SynthConfig, parse_synth
from shadow.errors import ConfigError
from shadow.events.redact import RedactConfig, parse_redact
from shadow.model import CompareRules
from shadow.replay.pacing import RateSpec, parse_rate

TARGET_NAMES = ("primary", "candidate", "secondary")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512")


@dataclass(frozen=True, slots=True)
class Health:
    path: str = "/"
    status: int = 0  # 0: any answer below 500 counts as ready
    timeout_s: float = 30.0
    interval_s: float = 0.2


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One server: attached when `command` is empty, managed (started and stopped) otherwise."""

    name: str
    url: str
    command: tuple[str, ...] = ()
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    env_remove: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    health: Health = field(default_factory=Health)
    shutdown_grace_s: float = 5.0
    restart: str = "no"  # no | on-failure
    max_restarts: int = 3
    restart_backoff_s: float = 1.0  # doubled after each restart
    warmup_s: float = 0.0  # exchanges this long after server_ready are kept out of the verdict

    @property
    def managed(self) -> bool:
        return bool(self.command)

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" else 80

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    def with_port(self, port: int) -> TargetConfig:
        """This target on `port`: the url's port and every `{port}` in the command."""
        parts = urlsplit(self.url)
        url = parts._replace(netloc=f"{parts.hostname}:{port}").geturl()
        command = tuple(arg.replace("{port}", str(port)) for arg in self.command)
        return replace(self, url=url, command=command)


@dataclass(frozen=True, slots=True)
class LaneRule:
    """Where a record's lane key comes from: the record, a header, or a regex on the path."""

    source: str = "record"  # record | header | path
    header: str = ""
    pattern: str = ""


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    concurrency: int = 16
    timeout_s: float = 10.0
    rate: float = 0.0
    ramp: RateSpec | None = None
    lane: LaneRule = field(default_factory=LaneRule)
    host_header: str = "target"  # target | preserve
    methods: tuple[str, ...] = ()  # empty: all methods
    max_body_bytes: int = 64 << 20
    max_record_bytes: int = 16 << 20
    recorded_auth: str = "keep"  # keep | drop | replace: credentials captured in the log
    progress_interval_s: float = 10.0  # 0: no progress events
    behind_warning_s: float = 5.0  # lag behind the schedule that makes a behind_schedule event
    unresponsive_after: int = 5  # timeouts in a row on a target before server_unresponsive


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """A `[[compare.endpoint]]`: a method and a path route, its name and its compare rules."""

    name: str
    method: str
    route: str
    regex: re.Pattern[str]
    rules: CompareRules
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class AuthProfile:
    name: str
    type: str  # jwt | header
    header: str = "Authorization"
    value_env: str = ""
    scheme: str = ""
    algorithm: str = "HS256"
    secret_env: str = ""
    key_file: str = ""  # absolute: resolved against the config file's folder
    key_id: str = ""  # the JWT header's `kid`, when the verifier picks keys by id
    claims: Mapping[str, Any] = field(default_factory=dict)
    ttl_s: float = 3600.0


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


class _Table:
    """A TOML table being read: typed getters that name the key, and a check for leftovers."""

    def __init__(self, source: str, prefix: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(source, prefix, f"must be a table, not {_kind(data)}")
        self.source, self.prefix, self.data = source, prefix, data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def get(self, name: str, kinds: tuple[type, ...], default: Any, what: str) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, f"must be {what}, not a boolean")
        if not isinstance(value, kinds):
            raise self.fail(name, f"must be {what}, not {_kind(value)}")
        return value

    def text(self, name: str, default: str = "", choices: tuple[str, ...] = ()) -> str:
        value: str = self.get(name, (str,), default, "a string")
        if choices and value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = float(self.get(name, (int, float), default, "a number"))
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum:g}, not {value:g}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value: int = self.get(name, (int,), default, "an integer")
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum}, not {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value: bool = self.get(name, (bool,), default, "true or false")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name, (list,), [], "a list of strings")
        if isinstance(self.data.get(name), str):
            raise self.fail(name, "must be a list of strings, not a string")
        for item in value:
            if not isinstance(item, str):
                raise self.fail(name, f"must be a list of strings; found {_kind(item)}")
        return tuple(value)

    def str_map(self, name: str) -> dict[str, str]:
        value = self.get(name, (dict,), {}, "a table of strings")
        for key, item in value.items():
            if not isinstance(item, str):
                raise ConfigError(self.source, f"{self.key(name)}.{key}", "must be a string")
        return dict(value)

    def table(self, name: str) -> _Table:
        self.seen.add(name)
        return _Table(self.source, self.key(name), self.data.get(name, {}))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def _kind(value: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


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
    root = _Table(source, "", data)
    secrets = _read_env_file(root, "env_file", base)
    run_dir = root.text("run_dir") or None
    targets_table = root.table("targets")
    targets = {}
    for name in list(targets_table.data):
        if name not in TARGET_NAMES:
            raise targets_table.fail(name, "unknown target (use primary, candidate, secondary)")
        targets[name] = _target(targets_table.table(name), name, base)
    auth_table = root.table("auth")
    auth = {name: _auth(auth_table.table(name), name, base) for name in list(auth_table.data)}
    compare_table = root.table("compare")
    endpoints = tuple(
        _endpoint(_Table(source, f"compare.endpoint[{i}]", item), auth)
        for i, item in enumerate(compare_table.get("endpoint", (list,), [], "a list of tables"))
    )
    config = Config(
        source=source,
        targets=targets,
        replay=_replay(root.table("replay")),
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


def _read_env_file(table: _Table, key: str, base: Path) -> dict[str, str]:
    name = table.text(key)
    if not name:
        return {}
    path = base / name
    try:
        with open(path, encoding="utf-8") as f:
            values = dotenv_values(stream=f)
    except (OSError, UnicodeDecodeError) as exc:
        raise table.fail(key, f"cannot read env file {path}: {exc}") from None
    return {k: v for k, v in values.items() if v is not None}


def _target(t: _Table, name: str, base: Path) -> TargetConfig:
    url = t.text("url")
    if not url:
        raise t.fail("url", "missing (every target needs a url such as http://127.0.0.1:8000)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise t.fail("url", f"must be an http:// or https:// url with a host, not {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise t.fail("url", f"has an invalid port: {url!r}") from None
    # `{python}` lets a config start Python servers with the interpreter shadow runs on.
    command = tuple(arg.replace("{python}", sys.executable) for arg in t.strings("command"))
    cwd = t.text("cwd") or None
    env = {**_read_env_file(t, "env_file", base), **t.str_map("env")}
    health = t.table("health")
    target = TargetConfig(
        name=name,
        url=url.rstrip("/"),
        command=command,
        cwd=str(base / cwd) if cwd else None,
        env=env,
        env_remove=t.strings("env_remove"),
        headers=tuple(t.str_map("headers").items()),
        health=Health(
            path=health.text("path", "/"),
            status=health.integer("status", 0),
            timeout_s=health.number("timeout_s", 30.0),
            interval_s=health.number("interval_s", 0.2),
        ),
        shutdown_grace_s=t.number("shutdown_grace_s", 5.0),
        restart=t.text("restart", "no", choices=("no", "on-failure")),
        max_restarts=t.integer("max_restarts", 3),
        restart_backoff_s=t.number("restart_backoff_s", 1.0),
        warmup_s=t.number("warmup_s", 0.0),
    )
    health.done()
    t.done()
    if not command and urlsplit(url).port == 0:
        raise t.fail("url", "port 0 (pick a free port) needs a command to start the server")
    if not command and target.restart != "no":
        raise t.fail("restart", "only a managed target (one with a command) can be restarted")
    return target


def _replay(t: _Table) -> ReplayConfig:
    lane = t.table("lane")
    lane_rule = LaneRule(
        source=lane.text("from", "record", choices=("record", "header", "path")),
        header=lane.text("header"),
        pattern=lane.text("pattern"),
    )
    if lane_rule.source == "header" and not lane_rule.header:
        raise lane.fail("header", 'missing (lane.from = "header" needs a header name)')
    if lane_rule.source == "path":
        try:
            re.compile(lane_rule.pattern or "(?!)")
        except re.error as exc:
            raise lane.fail("pattern", f"not a valid regular expression: {exc}") from None
        if not lane_rule.pattern:
            raise lane.fail("pattern", 'missing (lane.from = "path" needs a regex)')
    lane.done()
    replay = ReplayConfig(
        concurrency=t.integer("concurrency", 16, minimum=1),
        timeout_s=t.number("timeout_s", 10.0),
        rate=t.number("rate", 0.0),
        ramp=_ramp(t),
        lane=lane_rule,
        host_header=t.text("host_header", "target", choices=("target", "preserve")),
        methods=tuple(m.upper() for m in t.strings("methods")),
        max_body_bytes=t.integer("max_body_bytes", 64 << 20, minimum=1),
        max_record_bytes=t.integer("max_record_bytes", 16 << 20, minimum=64),
        recorded_auth=t.text("recorded_auth", "keep", choices=("keep", "drop", "replace")),
        progress_interval_s=t.number("progress_interval_s", 10.0),
        behind_warning_s=t.number("behind_warning_s", 5.0),
        unresponsive_after=t.integer("unresponsive_after", 5, minimum=1),
    )
    t.done()
    if replay.ramp is not None and replay.rate:
        raise t.fail("ramp", "set rate or ramp, not both")
    return replay


def _ramp(t: _Table) -> RateSpec | None:
    text = t.text("ramp")
    if not text:
        return None
    try:
        spec = parse_rate(text)
    except ValueError as exc:
        raise t.fail("ramp", str(exc)) from None
    if spec.ramp_s == 0:
        raise t.fail("ramp", f"{text!r} is not a ramp: use FROM:TO:DURATION such as 10:200:5m")
    return spec


def route_regex(route: str) -> re.Pattern[str]:
    """`/score/{scorer}/{address}` -> a regex; `{name}` is one segment, `*` anything."""
    out = []
    for piece in re.split(r"(\{[^}/]*\}|\*)", route):
        if piece == "*":
            out.append(".*")
        elif piece.startswith("{") and piece.endswith("}"):
            out.append("[^/]+")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out) + r"/?(?:\?.*)?")


def _endpoint(t: _Table, auth: Mapping[str, AuthProfile]) -> EndpointRule:
    route = t.text("path")
    if not route.startswith("/"):
        raise t.fail("path", "missing or not starting with '/' (a route such as /items/{id})")
    method = t.text("method", "*").upper()
    profile = t.text("auth") or None
    if profile is not None and profile not in auth:
        raise t.fail("auth", f"no [auth.{profile}] profile is defined")
    name = t.text("name") or (route if method == "*" else f"{method} {route}")
    rule = EndpointRule(
        name=name,
        method=method,
        route=route,
        regex=route_regex(route),
        rules=parse_rules(t),
        auth=profile,
    )
    t.done()
    return rule


def _auth(t: _Table, name: str, base: Path) -> AuthProfile:
    kind = t.text("type", choices=("jwt", "header"))
    if not kind:
        raise t.fail("type", 'missing (use "jwt" or "header")')
    profile = AuthProfile(
        name=name,
        type=kind,
        header=t.text("header", "Authorization"),
        value_env=t.text("value_env"),
        scheme=t.text("scheme", "Bearer" if kind == "jwt" else ""),
        algorithm=t.text("algorithm", "HS256", choices=JWT_ALGORITHMS),
        secret_env=t.text("secret_env"),
        key_file=str(base / t.text("key_file")) if t.text("key_file") else "",
        key_id=t.text("key_id"),
        claims=dict(t.get("claims", (dict,), {}, "a table")),
        ttl_s=t.number("ttl_s", 3600.0, minimum=1.0),
    )
    if kind == "header" and not profile.value_env:
        raise t.fail("value_env", "missing (the env var holding the header's value)")
    if kind == "jwt" and not (profile.secret_env or profile.key_file):
        raise t.fail("secret_env", "missing (the env var holding the secret or PEM key)")
    t.done()
    return profile


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
