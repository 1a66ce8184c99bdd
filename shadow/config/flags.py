"""Command-line values: each flag's text to its value, checked as the config's keys are,
and the flags laid over the config they override.

argparse calls the converters as `type=`; an ArgumentTypeError becomes a usage error (exit 2)
naming the flag. Numbers must be finite (`nan` and `inf` are refused, as in the config), and
the bounds are the config's own (MAX_CONCURRENCY, MAX_WORKERS, no zero timeout).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from shadow.config.load import (
    Config,
    attach_config,
    check_targets,
    load,
    replace_targets,
    with_health_timeout,
)
from shadow.config.replay import (
    MAX_CONCURRENCY,
    NO_ZERO_TIMEOUT,
    RateSpec,
    parse_duration,
    parse_rate,
)
from shadow.config.settings import MAX_WORKERS, Shard, parse_shard
from shadow.errors import ConfigError, UsageError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def concurrency(text: str) -> int:
    value = positive_int(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CONCURRENCY}, not {value}")
    return value


def workers(text: str) -> int:
    value = positive_int(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, not {value}")
    return value


def timeout(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}{NO_ZERO_TIMEOUT}")
    return value


def number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def non_negative(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def exit_code(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be an exit code from 1 to 255, not {value}")
    return value


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 0.0.0.0:9100, not {text!r}")
    return host.strip("[]"), int(port)


def shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rate(text: str) -> RateSpec:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def positive(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def resolve_config(args: argparse.Namespace) -> Config:
    """The config `-c` names (or one attaching to the urls given), with the flags that
    override its keys laid over it."""
    urls = {"primary": args.primary, "candidate": args.candidate, "secondary": args.secondary}
    if args.config:
        config = load(args.config)
        config = replace_targets(config, urls)
    elif args.primary or args.candidate or args.secondary:
        config = attach_config(urls)
    else:
        raise UsageError("give a config (-c FILE) or --primary URL and --candidate URL")
    if getattr(args, "recorded", False):
        config = recorded_config(config, args)
    else:
        check_targets(config)
    if args.health_timeout is not None:
        config = with_health_timeout(config, args.health_timeout)
    replay = config.replay
    if args.concurrency is not None:
        replay = dataclasses.replace(replay, concurrency=args.concurrency)
    if args.timeout is not None:
        replay = dataclasses.replace(replay, timeout_s=args.timeout)
    if args.progress_interval is not None:
        replay = dataclasses.replace(replay, progress_interval_s=args.progress_interval)
    noise = config.noise
    if args.no_calibration:
        if args.learn_noise:
            raise UsageError("--learn-noise calibrates: it cannot go with --no-calibration")
        noise = dataclasses.replace(noise, enabled=False)
    return dataclasses.replace(config, replay=replay, noise=noise)


def recorded_config(config: Config, args: argparse.Namespace) -> Config:
    """`--recorded`: the candidate alone is sent to (a primary or secondary in the config is
    not started), and nothing is calibrated: there is no second answer of the primary."""
    if args.learn_noise:
        raise UsageError("--learn-noise calibrates against the primary: not with --recorded")
    if args.primary or args.secondary:
        raise UsageError("--recorded compares with the capture's answers: no --primary/--secondary")
    if getattr(args, "synth", None) is not None:
        raise UsageError("--recorded compares with a capture's answers: --synth records have none")
    if "candidate" not in config.targets:
        raise ConfigError(config.source, "targets.candidate", "missing (a url is required)")
    return dataclasses.replace(
        config,
        targets={"candidate": config.targets["candidate"]},
        noise=dataclasses.replace(config.noise, enabled=False),
    )


def resolve_rate(args: argparse.Namespace, config: Config) -> RateSpec | None:
    """--rate over the config's rate or ramp; --speed excludes both."""
    if args.speed is not None:
        if args.rate is not None:
            raise UsageError("--rate and --speed exclude each other (pace by rate or by ts)")
        return None
    if args.rate is not None:
        return args.rate  # type: ignore[no-any-return]
    if config.replay.ramp is not None:
        return config.replay.ramp
    if config.replay.rate > 0:
        return RateSpec(config.replay.rate, config.replay.rate)
    return None
