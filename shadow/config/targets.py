"""`[targets.*]`: the servers compared, each attached (a url) or managed (a url and a command)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from shadow.config.table import UNSET, Table, read_env_file
from shadow.errors import InvalidValue, check_above, check_at_least, check_choice

TARGET_NAMES = ("primary", "candidate", "secondary")
RESTART_POLICIES = ("no", "on-failure")
RESET_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True, slots=True)
class Reset:
    """`[targets.NAME.reset]`: what puts a target back in its known state before the replay
    and before each `--loop` pass: a command (argv) or an HTTP request to the target."""

    command: tuple[str, ...] = ()
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    status: int = 0  # 0: any 2xx answer counts as done
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if bool(self.command) == bool(self.path):
            raise InvalidValue(
                "command", "a reset is either a command (argv list) or a path (an HTTP request)"
            )
        if self.path and not self.path.startswith("/"):
            raise InvalidValue("path", f"must start with / (such as /reset), not {self.path!r}")
        if self.command and (self.headers or self.body):
            raise InvalidValue("headers", "headers and body are for an HTTP reset (a path)")
        if self.path and (self.cwd is not None or self.env):
            raise InvalidValue("env", "cwd and env are for a command reset")
        check_choice("method", self.method, RESET_METHODS)
        if self.status and not 100 <= self.status <= 599:
            raise InvalidValue("status", f"must be an HTTP status such as 204, not {self.status}")
        check_above("timeout_s", self.timeout_s, 0, " (a reset always has a deadline)")

    @property
    def kind(self) -> str:
        return "command" if self.command else "http"


@dataclass(frozen=True, slots=True)
class Health:
    path: str = "/"
    status: int = 0  # 0: any answer below 500 counts as ready
    timeout_s: float = 30.0
    interval_s: float = 0.2

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise InvalidValue("path", f"must start with / (such as /health), not {self.path!r}")
        check_at_least("status", self.status, 0)
        check_at_least("timeout_s", self.timeout_s, 0)
        check_at_least("interval_s", self.interval_s, 0)


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
    reset: Reset | None = None  # run before the replay and before each --loop pass

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidValue(
                "url", f"must be an http:// or https:// url with a host, not {self.url!r}"
            )
        try:
            port = parts.port
        except ValueError:
            raise InvalidValue("url", f"has an invalid port: {self.url!r}") from None
        check_at_least("shutdown_grace_s", self.shutdown_grace_s, 0)
        check_choice("restart", self.restart, RESTART_POLICIES)
        check_at_least("max_restarts", self.max_restarts, 0)
        check_at_least("restart_backoff_s", self.restart_backoff_s, 0)
        check_at_least("warmup_s", self.warmup_s, 0)
        if not self.command and port == 0:
            raise InvalidValue(
                "url", "port 0 (pick a free port) needs a command to start the server"
            )
        if not self.command and self.restart != "no":
            raise InvalidValue(
                "restart", "only a managed target (one with a command) can be restarted"
            )

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

    def with_command_port(self) -> TargetConfig:
        """This target with every `{port}` in the command replaced by the url's port."""
        port = str(self.port)
        return replace(self, command=tuple(arg.replace("{port}", port) for arg in self.command))

    def with_port(self, port: int) -> TargetConfig:
        """This target on `port`: the url's port and every `{port}` in the command."""
        parts = urlsplit(self.url)
        url = parts._replace(netloc=f"{parts.hostname}:{port}").geturl()
        command = tuple(arg.replace("{port}", str(port)) for arg in self.command)
        return replace(self, url=url, command=command)


def parse_target(t: Table, name: str, base: Path, env_file: bool = True) -> TargetConfig:
    """One `[targets.NAME]` table; `cwd` and `env_file` are relative to the config's folder
    (the env file is not read without `env_file`)."""
    url = t.text("url")
    if not url:
        raise t.fail("url", "missing (every target needs a url such as http://127.0.0.1:8000)")
    command = t.strings("command")
    if command:
        # `{python}` lets a config start Python servers with the interpreter shadow runs on.
        command = tuple(arg.replace("{python}", sys.executable) for arg in command)
    cwd = t.text("cwd")
    from_file = read_env_file(t, "env_file", base) if env_file else {}
    t.seen.add("env_file")
    env = {**from_file, **(t.str_map("env") or {})}
    headers = t.str_map("headers")
    health_table = t.table("health")
    health = health_table.build(
        Health,
        path=health_table.text("path"),
        status=health_table.integer("status"),
        timeout_s=health_table.number("timeout_s"),
        interval_s=health_table.number("interval_s"),
    )
    health_table.done()
    target = t.build(
        TargetConfig,
        name=name,
        url=url.rstrip("/"),
        command=command,
        cwd=str(base / cwd) if cwd else UNSET,
        env=env,
        env_remove=t.strings("env_remove"),
        headers=tuple(headers.items()) if headers else UNSET,
        health=health,
        shutdown_grace_s=t.number("shutdown_grace_s"),
        restart=t.text("restart"),
        max_restarts=t.integer("max_restarts"),
        restart_backoff_s=t.number("restart_backoff_s"),
        warmup_s=t.number("warmup_s"),
        reset=parse_reset(t.table("reset"), base) if "reset" in t.data else UNSET,
    )
    t.done()
    return target


def parse_reset(t: Table, base: Path) -> Reset:
    """`[targets.NAME.reset]`; `cwd` is relative to the config's folder."""
    command = t.strings("command")
    if command:
        command = tuple(arg.replace("{python}", sys.executable) for arg in command)
    cwd = t.text("cwd")
    headers = t.str_map("headers")
    method = t.text("method")
    reset = t.build(
        Reset,
        command=command,
        cwd=str(base / cwd) if cwd else UNSET,
        env=t.str_map("env"),
        method=method.upper() if method else UNSET,
        path=t.text("path"),
        headers=tuple(headers.items()) if headers else UNSET,
        body=t.text("body"),
        status=t.integer("status"),
        timeout_s=t.number("timeout_s"),
    )
    t.done()
    return reset
