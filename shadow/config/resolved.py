"""The resolved config as TOML (`shadow check --print`): the keys a user writes, every default.

Each table is written from its dataclass with the key names of the file (`status`, not the
field `compare_status`; `lane.from`, not `source`), so the output can be read, diffed and
loaded again as a config. Values that are secrets or may hold them are masked: target `env`
values, the values of credential and `[redact]` headers, and a url's userinfo. The env files' variables are named in a comment,
never shown.
"""

from __future__ import annotations

from typing import Any

import tomli_w

from shadow.config.correlate import Capture
from shadow.config.load import Config
from shadow.config.redact import mask_userinfo
from shadow.config.replay import ReplayConfig
from shadow.config.targets import Reset, TargetConfig
from shadow.model import CREDENTIAL_HEADERS, CompareRules

MASK = "***"


def _target(target: TargetConfig, hidden: frozenset[str]) -> dict[str, Any]:
    health = target.health
    out: dict[str, Any] = {"url": mask_userinfo(target.url)}
    if target.command:
        out["command"] = list(target.command)
    if target.cwd is not None:
        out["cwd"] = target.cwd
    out |= {
        "env": dict.fromkeys(target.env, MASK),
        "env_remove": list(target.env_remove),
        "headers": {k: MASK if k.lower() in hidden else v for k, v in target.headers},
        "shutdown_grace_s": target.shutdown_grace_s,
        "restart": target.restart,
        "max_restarts": target.max_restarts,
        "restart_backoff_s": target.restart_backoff_s,
        "warmup_s": target.warmup_s,
        "health": {
            "path": health.path,
            "status": health.status,
            "timeout_s": health.timeout_s,
            "interval_s": health.interval_s,
        },
    }
    if target.reset is not None:
        out["reset"] = _reset(target.reset, hidden)
    return out


def _reset(reset: Reset, hidden: frozenset[str]) -> dict[str, Any]:
    if reset.command:
        out: dict[str, Any] = {"command": list(reset.command)}
        if reset.cwd is not None:
            out["cwd"] = reset.cwd
        out["env"] = dict.fromkeys(reset.env, MASK)
    else:
        out = {
            "method": reset.method,
            "path": reset.path,
            "headers": {k: MASK if k.lower() in hidden else v for k, v in reset.headers},
            "body": reset.body,
            "status": reset.status,
        }
    out["timeout_s"] = reset.timeout_s
    return out


def _replay(replay: ReplayConfig) -> dict[str, Any]:
    lane = replay.lane
    out: dict[str, Any] = {
        "concurrency": replay.concurrency,
        "timeout_s": replay.timeout_s,
        "rate": replay.rate,
    }
    if replay.ramp is not None:
        out["ramp"] = replay.ramp.text
    out |= {
        "host_header": replay.host_header,
        "transport": replay.transport,
        "methods": list(replay.methods),
        "max_body_bytes": replay.max_body_bytes,
        "max_record_bytes": replay.max_record_bytes,
        "max_bodies_bytes": replay.max_bodies_bytes,
        "max_differences": replay.max_differences,
        "max_event_bytes": replay.max_event_bytes,
        "recorded_auth": replay.recorded_auth,
        "progress_interval_s": replay.progress_interval_s,
        "behind_warning_s": replay.behind_warning_s,
        "unresponsive_after": replay.unresponsive_after,
        "lane": {"from": lane.source}
        | ({"header": lane.header} if lane.header else {})
        | ({"pattern": lane.pattern} if lane.pattern else {}),
        "correlate": replay.correlate.mode,
        "correlate_min_length": replay.correlate.min_length,
    }
    if replay.correlate.captures:
        out["capture"] = [_capture(c) for c in replay.correlate.captures]
    return out


def _capture(capture: Capture) -> dict[str, Any]:
    out: dict[str, Any] = {"name": capture.name}
    if capture.endpoint:
        out["endpoint"] = capture.endpoint
    else:
        out |= {"method": capture.method, "path": capture.route}
    return out | ({"pointer": capture.pointer} if capture.pointer else {"header": capture.header})


def _rules(rules: CompareRules) -> dict[str, Any]:
    unordered: list[str] | dict[str, str] = list(rules.unordered)
    if rules.unordered_keys:  # the table form: pattern -> key member ("" for a plain multiset)
        unordered = dict.fromkeys(rules.unordered, "") | dict(rules.unordered_keys)
    return {
        "status": rules.compare_status,
        "ignore": list(rules.ignore),
        "unordered": unordered,
        "headers": None if rules.headers is None else list(rules.headers),
        "ignore_headers": list(rules.ignore_headers),
        "tolerance": rules.tolerance,
        "relative_tolerance": rules.relative_tolerance,
        "normalize": dict(rules.normalize),
        "ignore_whitespace": rules.ignore_whitespace,
        "expect_status": rules.expect_status,
    }


def _endpoint_rules(config: Config) -> list[dict[str, Any]]:
    out = []
    for endpoint in config.endpoints:
        item: dict[str, Any] = {
            "name": endpoint.name,
            "method": endpoint.method,
            "path": endpoint.route,
        }
        if endpoint.auth:
            item["auth"] = endpoint.auth
        for kind in ("header", "body"):
            criteria = {key: value for k, key, value in endpoint.match if k == kind}
            if criteria:
                item[f"match_{kind}"] = criteria
        names = [value for k, _, value in endpoint.match if k == "name"]
        if names:
            item["match_name"] = names[0]
        if endpoint.safe is not None:
            item["safe"] = endpoint.safe
        out.append(item | _rules(endpoint.rules))
    return out


def _plain(value: Any) -> Any:
    """TOML has no null: a None is left out; tuples become arrays."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def resolved(config: Config) -> dict[str, Any]:
    """The config as the tables of a file, with every default filled in."""
    noise = config.noise
    thresholds = config.thresholds
    data: dict[str, Any] = {}
    if config.env_file is not None:  # its values stay in it: named, never shown
        data["env_file"] = config.env_file
    if config.run_dir is not None:
        data["run_dir"] = config.run_dir
    hidden = CREDENTIAL_HEADERS | frozenset(config.redact.headers)  # as events hide them
    data["targets"] = {name: _target(t, hidden) for name, t in config.targets.items()}
    data["replay"] = _replay(config.replay)
    compare = _rules(config.compare)
    compare["headers"] = compare["headers"] or []  # none set: none compared
    data["compare"] = compare | {"endpoint": _endpoint_rules(config)}
    data["auth"] = {
        name: {
            "type": p.type,
            "header": p.header,
            "scheme": p.scheme,
            "algorithm": p.algorithm,
            "value_env": p.value_env,
            "secret_env": p.secret_env,
            "key_file": p.key_file,
            "key_id": p.key_id,
            "claims": dict(p.claims),
            "ttl_s": p.ttl_s,
        }
        for name, p in config.auth.items()
    }
    data["thresholds"] = {
        "mismatch_rate": thresholds.mismatch_rate,
        "error_rate": thresholds.error_rate,
        "input_errors": thresholds.input_errors,
        "fail_on": list(thresholds.fail_on),
        "endpoint": {
            name: {
                "mismatch_rate": lim.mismatch_rate,
                "error_rate": lim.error_rate,
                "both_failed_rate": lim.both_failed_rate,
            }
            for name, lim in thresholds.endpoints.items()
        },
        "both_failed_rate": thresholds.both_failed_rate,
    }
    data["noise"] = {
        "enabled": noise.enabled,
        "repeat_methods": list(noise.repeat_methods),
        "min_samples": noise.min_samples,
        "min_rate": noise.min_rate,
        "ratio": noise.ratio,
        "sample": noise.sample,
        "full_pairs": noise.full_pairs,
    }
    data["redact"] = {"headers": list(config.redact.headers), "paths": list(config.redact.paths)}
    if config.hooks is not None:
        data["hooks"] = {"module": config.hooks}
    if config.synth_table is not None:
        data["synth"] = config.synth_table  # as written: its templates have no defaults to add
    return _plain(data)  # type: ignore[no-any-return]


def resolved_toml(config: Config) -> str:
    """`resolved(config)` written as TOML, headed by where it came from."""
    head = f"# {config.source}, resolved (shadow check --print): every default filled in\n"
    if config.secrets:
        head += f"# env_file variables (values not shown): {', '.join(sorted(config.secrets))}\n"
    if any(t.env or (t.reset is not None and t.reset.env) for t in config.targets.values()):
        head += f"# target env values are shown as {MASK}\n"
    return head + "\n" + tomli_w.dumps(resolved(config))
