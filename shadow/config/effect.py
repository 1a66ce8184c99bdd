"""Keys a valid config sets that cannot take effect, each named, for `shadow check` to warn of.

A key is judged by its value against its default (a default set explicitly changes nothing),
and by what the rest of the config does with it: a `[noise]` setting when calibration is off,
an `env` on a target shadow does not start, an `ignore_headers` where no header is compared,
a rule under a path that is ignored anyway. Each warning names the key as the file does.
"""

from __future__ import annotations

from collections.abc import Iterator

from shadow.config.load import Config
from shadow.config.rules import EndpointRule
from shadow.config.targets import TargetConfig
from shadow.config.verdict import NoiseConfig
from shadow.model import CompareRules

# Keys of a target that only a started server uses.
_MANAGED_ONLY = (
    "cwd",
    "env",
    "env_remove",
    "shutdown_grace_s",
    "max_restarts",
    "restart_backoff_s",
)


def ineffective(config: Config) -> list[str]:
    """`key: why it cannot take effect`, for every such key of `config`."""
    return [
        *_noise(config),
        *_targets(config),
        *_headers(config),
        *_rules_under_ignore("compare", config.compare),
        *(
            line
            for i, rule in enumerate(config.endpoints)
            for line in _rules_under_ignore(f"compare.endpoint[{i}]", rule.rules)
        ),
        *_endpoints(config.endpoints),
        *_verdict(config),
    ]


def _changed(value: object, default: object, name: str) -> bool:
    return bool(getattr(value, name) != getattr(default, name))


def _noise(config: Config) -> Iterator[str]:
    noise, default = config.noise, NoiseConfig()
    tuning = ("repeat_methods", "min_samples", "min_rate", "ratio", "sample", "full_pairs")
    if noise.enabled is False:
        for name in tuning:
            if _changed(noise, default, name):
                yield f"noise.{name}: calibration is off (noise.enabled = false)"
        if "secondary" in config.targets:
            yield (
                "targets.secondary: calibration is off (noise.enabled = false), "
                "so the secondary is never sent a request"
            )
    elif "secondary" in config.targets and _changed(noise, default, "repeat_methods"):
        yield (
            "noise.repeat_methods: a secondary is configured, so records are sent to it "
            "and none is repeated to the primary"
        )


def _targets(config: Config) -> Iterator[str]:
    for name, target in config.targets.items():
        if target.managed:
            continue
        default = TargetConfig(name, target.url)
        for key in _MANAGED_ONLY:
            if _changed(target, default, key):
                yield (
                    f"targets.{name}.{key}: the target is attached (no command), "
                    "so shadow never starts it"
                )


def _headers(config: Config) -> Iterator[str]:
    compared = config.compare.headers or any(e.rules.headers for e in config.endpoints)
    if compared:
        return
    if config.compare.ignore_headers:
        yield "compare.ignore_headers: no header is compared (no headers list is set)"
    for i, rule in enumerate(config.endpoints):
        if rule.rules.ignore_headers:
            yield (
                f"compare.endpoint[{i}].ignore_headers: no header is compared "
                "(no headers list is set)"
            )


def _rules_under_ignore(prefix: str, rules: CompareRules) -> Iterator[str]:
    """Normalizers and unordered paths at or below a path `ignore` drops: never applied."""
    ignored = [p for p in rules.ignore if "*" not in p]
    keyed = [pattern for pattern, _ in rules.unordered_keys]
    for key, patterns in (
        ("normalize", [pattern for pattern, _ in rules.normalize]),
        ("unordered", [*rules.unordered, *keyed]),
    ):
        for pattern in patterns:
            hidden = next(
                (i for i in ignored if pattern == i or pattern.startswith(i.rstrip("/") + "/")),
                None,
            )
            if hidden is not None:
                yield f"{prefix}.{key}.{pattern}: the path is ignored ({prefix}.ignore {hidden})"


def _endpoints(endpoints: tuple[EndpointRule, ...]) -> Iterator[str]:
    """A later block for the same method and route adds its rules; its name and auth lose to
    the first's. An expected status below 400 never counts as a failure anyway."""
    first: dict[tuple[str, str], int] = {}
    for i, rule in enumerate(endpoints):
        key = (rule.method, rule.route)
        if rule.rules.expect_status is not None and rule.rules.expect_status < 400:
            yield (
                f"compare.endpoint[{i}].expect_status: {rule.rules.expect_status} is not an "
                "error, and only errors (>= 400) are kept out of both_failed"
            )
        if key not in first:
            first[key] = i
            continue
        earlier = endpoints[first[key]]
        where = f"compare.endpoint[{first[key]}] matches the same method and route first"
        default_name = rule.route if rule.method == "*" else f"{rule.method} {rule.route}"
        if rule.name != earlier.name and rule.name != default_name:
            yield f"compare.endpoint[{i}].name: {where} and names the endpoint"
        if rule.auth is not None and rule.auth != earlier.auth and earlier.auth is not None:
            yield f"compare.endpoint[{i}].auth: {where} and gives its auth profile"


def _verdict(config: Config) -> Iterator[str]:
    if not config.compare.compare_status and "status" in config.thresholds.fail_on:
        yield ("thresholds.fail_on: status differences are never found (compare.status = false)")
    if config.secrets and not config.auth:
        yield "env_file: no [auth] profile reads a secret from it"
