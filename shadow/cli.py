"""Command line: argv -> settings -> app -> exit code. The only module that reads argv.

Exit codes (SPEC §3): 0 no mismatch or error beyond the thresholds, 1 beyond them, 2 usage,
config or input problem before any replay, 3 a managed server failed to start or died.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from shadow import __version__, app
from shadow.config import Config, attach_config, check_targets, load, replace_targets
from shadow.errors import ShadowError, UsageError
from shadow.sink import Console


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="TOML config file")
    p.add_argument("--primary", metavar="URL", help="attach to a running primary at URL")
    p.add_argument("--candidate", metavar="URL", help="attach to a running candidate at URL")
    p.add_argument("--concurrency", type=_positive_int, help="requests in flight at once")
    p.add_argument(
        "--rate",
        type=_non_negative,
        default=0.0,
        help="records started per second (default: as fast as allowed)",
    )
    p.add_argument("--timeout", type=_non_negative, metavar="S", help="per request, seconds")
    p.add_argument("--limit", type=_positive_int, metavar="N", help="replay at most N records")
    p.add_argument(
        "--emit",
        choices=("mismatches", "all"),
        default="mismatches",
        help="which exchanges become events (default: mismatches and errors)",
    )
    p.add_argument("--output", metavar="FILE", help="write events to FILE instead of stdout")
    p.add_argument("--run-dir", metavar="DIR", help="server logs and artefacts")
    p.add_argument("-q", "--quiet", action="count", default=0, help="less on stderr")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadow",
        description="Replay requests to a primary and a candidate server, compare the answers, "
        "and stream every difference as one JSON line on stdout.",
    )
    parser.add_argument("--version", action="version", version=f"shadow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="replay logs to both targets and compare")
    run.add_argument("logs", nargs="*", metavar="LOG", help="JSONL logs (.gz too), '-' for stdin")
    run.add_argument("--format", choices=("jsonl",), default="jsonl", help="input format")
    _add_run_options(run)
    demo = commands.add_parser("demo", help="run the bundled legacy-vs-rewrite example")
    _add_run_options(demo)
    check = commands.add_parser("check", help="validate a config and print it resolved")
    check.add_argument("-c", "--config", required=True, help="TOML config file")
    return parser


def demo_file(name: str) -> Path:
    """A bundled demo file: package data when installed, the checkout's copy otherwise."""
    packaged = resources.files("shadow.demo") / "data" / name
    if packaged.is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[1]
    for folder in ("config", "replay_logs"):
        candidate = checkout / folder / name
        if candidate.is_file():
            return candidate
    raise UsageError(f"the bundled demo file {name} is missing from this installation")


def resolve_config(args: argparse.Namespace) -> Config:
    urls = {"primary": args.primary, "candidate": args.candidate}
    if args.config:
        config = load(args.config)
        config = replace_targets(config, urls)
    elif args.primary or args.candidate:
        config = attach_config(urls)
    else:
        raise UsageError("give a config (-c FILE) or --primary URL and --candidate URL")
    check_targets(config)
    replay = config.replay
    if args.concurrency is not None:
        replay = dataclasses.replace(replay, concurrency=args.concurrency)
    if args.timeout is not None:
        replay = dataclasses.replace(replay, timeout_s=args.timeout)
    return dataclasses.replace(config, replay=replay)


def command_run(args: argparse.Namespace, logs: list[str], console: Console) -> int:
    config = resolve_config(args)
    if not logs:
        raise UsageError("no log given (a path, several, or '-' for stdin)")
    settings = app.RunSettings(
        config=config,
        inputs=logs,
        emit=args.emit,
        output=args.output,
        run_dir=args.run_dir,
        limit=args.limit,
        rate=args.rate or config.replay.rate,
    )
    return app.run(settings, console)


def command_check(args: argparse.Namespace) -> int:
    config = load(args.config)
    sys.stdout.buffer.write(
        orjson.dumps(describe(config), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )
    return 0


def describe(config: Config) -> dict[str, Any]:
    """The resolved config as JSON-able data; env values and secrets masked."""
    out: dict[str, Any] = {"source": config.source, "targets": {}}
    for name, target in config.targets.items():
        data = dataclasses.asdict(target)
        data["env"] = dict.fromkeys(target.env, "***")
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
    out["secrets_from_env_file"] = sorted(config.secrets)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))
    try:
        if args.command == "run":
            return command_run(args, args.logs, console)
        if args.command == "demo":
            if not args.config:
                args.config = str(demo_file("demo.toml"))
            return command_run(args, [str(demo_file("passport-demo.jsonl"))], console)
        return command_check(args)
    except ShadowError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
