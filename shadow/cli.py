"""Command line: argv -> settings -> a command -> exit code. The only module that reads argv.

Exit codes (README "Exit codes"): 0 no mismatch or error beyond the thresholds, 1 beyond them,
2 usage, config or input problem before any replay, 3 a target never became ready or a managed
server died, 130 interrupted before a run could stop cleanly, 70 a bug in shadow (see
shadow.errors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from shadow.config import flags
from shadow.config.arguments import build_parser
from shadow.config.effect import ineffective
from shadow.config.load import (
    Config,
    check_targets,
    load,
)
from shadow.config.resolved import resolved_toml
from shadow.config.settings import (
    AUTO,
    RunSettings,
)
from shadow.config.synth import SynthConfig
from shadow.errors import (
    BUG_EXIT_CODE,
    INTERRUPTED_EXIT_CODE,
    ConfigError,
    ShadowError,
    UsageError,
)
from shadow.run import check_config, run
from shadow.run.convert import convert, write_synth
from shadow.run.sizing import size_workers
from shadow.stdio import Console, reopen_closed_streams, same_terminal


def command_completion(shell: str) -> int:
    """`shadow completion SHELL`: the script shtab writes from this very parser."""
    import shtab  # loaded only for this command

    sys.stdout.write(shtab.complete(build_parser(), shell=shell))
    return 0


def demo_file(name: str) -> Path:
    """A bundled demo file: package data when installed, the checkout's copy otherwise."""
    from importlib import resources  # not loaded by `shadow run`

    packaged = resources.files("shadow.demo") / "data" / name
    if packaged.is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[1]
    for folder in ("config", "replay_logs"):
        candidate = checkout / folder / name
        if candidate.is_file():
            return candidate
    raise UsageError(f"the bundled demo file {name} is missing from this installation")


def command_run(args: argparse.Namespace, logs: list[str], console: Console) -> int:
    config = flags.resolve_config(args)
    synth_count = getattr(args, "synth", None)
    if synth_count is not None:
        if logs:
            raise UsageError("--synth replays generated records: give it or logs, not both")
        require_synth(config)
    elif not logs:
        raise UsageError("no log given (a path, several, or '-' for stdin)")
    given = {  # a flag left out is not passed: RunSettings holds the defaults
        "input_format": getattr(args, "format", None),
        "synth": synth_count,
        "seed": getattr(args, "seed", None),
        "emit": args.emit,
        "output": args.output,
        "run_dir": args.run_dir,
        "limit": args.limit,
        "rate": flags.resolve_rate(args, config),
        "speed": args.speed,
        "max_wait_s": args.max_wait,
        "loop": args.loop,
        "duration_s": args.duration,
        "live": args.quiet == 0 and sys.stderr.isatty() and not same_terminal(1, 2),
        "terminal": not args.json and args.output != "-" and sys.stdout.isatty(),
        "learn_noise": _learn_noise_path(args.learn_noise),
        "shard": args.shard,
        "interrupted_exit_code": args.interrupted_exit_code,
        "errors_exit_code": args.errors_exit_code,
        "metrics": args.metrics,
        "recorded": args.recorded or None,
        "transport": args.transport,
    }
    settings = RunSettings(
        config=config,
        inputs=logs,
        **{name: value for name, value in given.items() if value is not None},
    )
    settings = size_workers(settings, args.workers)
    return run(settings, console, terminal_headline)


def terminal_headline(events_path: str) -> str:
    """What closes a run on a terminal: the text report's top, read from the run's events."""
    from shadow import report  # loaded only when a person watches the run
    from shadow.report.text import render_headline

    return render_headline(report.aggregate_files([events_path]).data)


def _learn_noise_path(path: str | None) -> str | None:
    """--learn-noise FILE, checked before the run rather than after it."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"--learn-noise {path}: the folder {Path(path).parent} does not exist")
    return path


def require_synth(config: Config) -> SynthConfig:
    if config.synth is None:
        raise ConfigError(config.source, "synth", "missing (a [synth] section with templates)")
    return config.synth


def command_synth(args: argparse.Namespace, console: Console) -> int:
    """`shadow synth`: native JSONL on stdout; a reader closing it early is not an error."""
    synth_config = require_synth(load(args.config, env_files=False))
    seed = synth_config.seed if args.seed is None else args.seed
    count = synth_config.count if args.count is None else args.count
    return write_synth(synth_config, seed, count, console)


def command_check(args: argparse.Namespace, console: Console) -> int:
    """`shadow check`: the config read, its secrets and keys loaded as a run loads them; a
    warning on stderr for every key that cannot take effect."""
    config = load(args.config)
    check_targets(config)
    summary = check_config(config)
    if args.print:
        sys.stdout.write(resolved_toml(config))
    else:
        sys.stdout.write(f"config OK: {config.source}: {summary}\n")
    for line in ineffective(config):
        console.warning(f"{config.source}: {line}")
    return 0


def command_schema(which: str) -> int:
    """`shadow schema events|config`: the JSON Schema shipped in the package."""
    from importlib import resources

    schema = resources.files("shadow") / "schemas" / f"{which}.schema.json"
    sys.stdout.buffer.write(schema.read_bytes())
    return 0


def command_report(args: argparse.Namespace) -> int:
    from shadow import report  # the report's modules load only for this command

    return report.report(args.events, args.html, args.json, sys.stdout.buffer)


def main(argv: Sequence[str] | None = None) -> int:
    reopen_closed_streams()
    console = Console()
    try:
        args = build_parser().parse_args(argv)  # a usage error exits 2 here (SystemExit)
        console = Console(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))
        if args.command == "run":
            return command_run(args, args.logs, console)
        if args.command == "demo":
            if not args.config:
                args.config = str(demo_file("demo.toml"))
            return command_run(args, [str(demo_file("passport-demo.jsonl"))], console)
        if args.command == "report":
            return command_report(args)
        if args.command == "convert":
            return convert(args.logs, args.format or AUTO, console, keep=args.keep_responses)
        if args.command == "synth":
            return command_synth(args, console)
        if args.command == "schema":
            return command_schema(args.which)
        if args.command == "completion":
            return command_completion(args.shell)
        return command_check(args, console)
    except ShadowError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted")
        return INTERRUPTED_EXIT_CODE
    except Exception as exc:  # noqa: BLE001 - a bug: say so, and never as a verdict
        console.internal_error(exc)
        return BUG_EXIT_CODE
