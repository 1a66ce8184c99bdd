"""The command line's shape: every command, its options, their help, examples and exit codes
(one argparse parser, which `shadow completion` also turns into shell scripts). Reading the
values it parses into settings is shadow.config.flags; running a command is shadow.cli."""

from __future__ import annotations

import argparse
from typing import Any

from shadow import __version__
from shadow.config import flags
from shadow.config.replay import MAX_CONCURRENCY, TRANSPORTS, ReplayConfig
from shadow.config.settings import AUTO, EMIT, INPUT_FORMATS, RunSettings
from shadow.config.table import default_of
from shadow.config.targets import Health

# What `--help` says after the options: examples and exit codes, per command.
EXIT_CODES = """\
exit codes:
  0    no mismatch or error beyond the [thresholds]
  1    mismatches or errors beyond the thresholds (the run's verdict)
  2    a usage, config or input problem, found before any replay
  3    a target never became ready, or a managed server died
  70   a bug in shadow (please report it, with the traceback)
  130  interrupted before the run could stop cleanly"""

EXAMPLES = {
    "run": """\
examples:
  shadow run --primary http://127.0.0.1:8002 --candidate http://127.0.0.1:3000 traffic.jsonl
  shadow run -c shadow.toml traffic.jsonl.gz --rate 50 --concurrency 32
  shadow run -c shadow.toml --loop --duration 2h --rate 10:200:10m access.log
  shadow run -c shadow.toml traffic.har | jq -c 'select(.event == "mismatch")'

On a terminal, each mismatch prints as a line for people and the events go to
RUN_DIR/events.ndjson; --json (or --output -) keeps NDJSON on the terminal.""",
    "demo": """\
examples:
  shadow demo              the bundled legacy service and its rewrite: two seeded bugs
  shadow demo --json | jq -c 'select(.event == "mismatch") | .diffs'""",
    "check": """\
examples:
  shadow check -c shadow.toml            one line: config OK, or what to fix
  shadow check -c shadow.toml --print    the config with every default, secrets masked""",
    "report": """\
examples:
  shadow report shadow-runs/*/events.ndjson
  shadow report events.ndjson --html report.html
  shadow run -c shadow.toml traffic.jsonl | shadow report -""",
    "convert": """\
examples:
  shadow convert session.har > traffic.jsonl
  shadow convert --format access /var/log/nginx/access.log.gz | head""",
    "synth": """\
examples:
  shadow synth -c shadow.toml --count 1000 --seed 7 > synthetic.jsonl""",
    "schema": """\
examples:
  shadow schema events > events.schema.json
  shadow schema config > config.schema.json""",
    "completion": """\
examples:
  shadow completion bash > ~/.local/share/bash-completion/completions/shadow
  shadow completion zsh > ~/.zfunc/_shadow    (with ~/.zfunc on fpath)""",
}

# What exit codes a command that replays nothing can give.
SIMPLE_EXIT_CODES = """\
exit codes:
  0    done
  2    a usage, config or input problem
  70   a bug in shadow"""


def epilog(command: str) -> str:
    codes = EXIT_CODES if command in ("run", "demo") else SIMPLE_EXIT_CODES
    return f"{EXAMPLES[command]}\n\n{codes}"


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="TOML config file")
    p.add_argument("--primary", metavar="URL", help="attach to a running primary at URL")
    p.add_argument("--candidate", metavar="URL", help="attach to a running candidate at URL")
    p.add_argument(
        "--secondary",
        metavar="URL",
        help="attach to a second copy of the primary at URL, to measure noise against",
    )
    p.add_argument(
        "--learn-noise",
        metavar="FILE",
        help="calibrate, and write the learned noise rules to FILE (TOML, to review)",
    )
    p.add_argument(
        "--no-calibration",
        action="store_true",
        help="do not measure noise (as [noise] enabled = false): no request is repeated",
    )
    p.add_argument(
        "--concurrency",
        type=flags.concurrency,
        metavar="N",
        help=f"requests in flight at once, at most {MAX_CONCURRENCY} "
        f"(default: [replay] concurrency, {default_of(ReplayConfig, 'concurrency')})",
    )
    _add_pacing_options(p)
    p.add_argument(
        "--timeout",
        type=flags.timeout,
        metavar="S",
        help="per request, seconds, above 0 "
        f"(default: [replay] timeout_s, {default_of(ReplayConfig, 'timeout_s'):g})",
    )
    p.add_argument(
        "--health-timeout",
        type=flags.non_negative,
        metavar="S",
        help="how long each target gets to pass its health check, seconds "
        f"(default: each target's health.timeout_s, {default_of(Health, 'timeout_s'):g})",
    )
    p.add_argument("--limit", type=flags.positive_int, metavar="N", help="replay at most N records")
    p.add_argument(
        "--transport",
        choices=TRANSPORTS,
        help="the HTTP client: auto picks httptools when every target is plain http://, "
        "else aiohttp (default: [replay] transport, auto)",
    )
    p.add_argument(
        "--emit",
        choices=EMIT,
        help="which exchanges become events (default: mismatches and errors)",
    )
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write events to FILE ('-': stdout; default: stdout, or RUN_DIR/events.ndjson "
        "when stdout is a terminal)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="NDJSON events on stdout even when it is a terminal (as on a pipe or file)",
    )
    p.add_argument(
        "--run-dir",
        metavar="DIR",
        help="server logs and artefacts (default: the config's run_dir, else shadow-runs/RUN_ID)",
    )
    p.add_argument(
        "--interrupted-exit-code",
        type=flags.exit_code,
        metavar="N",
        help="exit N instead of the verdict (0 or 1) when stopped before the input ended",
    )
    p.add_argument(
        "--errors-exit-code",
        type=flags.exit_code,
        metavar="N",
        help="exit N instead of 1 when the run failed only on request errors (timeouts, "
        "refused connections...), not on a difference: worth a retry",
    )
    p.add_argument(
        "--metrics",
        type=flags.address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics during the run",
    )
    p.add_argument("--recorded", action="store_true", help="compare with the capture's answers")
    _add_scale_options(p)
    p.add_argument(
        "-q", "--quiet", action="count", default=0, help="only errors on stderr (no summary)"
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more on stderr: a line per exchange, each health probe's cause, tokens minted",
    )


def _add_scale_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        type=flags.shard,
        metavar="I/N",
        help="replay only shard I (from 0) of N, records split by lane (one of N machines)",
    )
    p.add_argument(
        "--workers",
        type=flags.workers,
        metavar="N",
        help="replay with N processes on this machine, records split by lane (default: the "
        "CPUs usable, at most 8, when every target is attached on another host; else 1)",
    )


def _add_pacing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rate",
        type=flags.rate,
        metavar="R|FROM:TO:DURATION",
        help="records started per second, or a ramp such as 10:200:5m "
        "(default: as fast as allowed)",
    )
    p.add_argument(
        "--speed",
        type=flags.positive,
        metavar="X",
        help="replay the recorded timing (ts) sped up X times",
    )
    p.add_argument(
        "--max-wait",
        type=flags.duration,
        metavar="DURATION",
        help="with --speed, the longest idle gap kept "
        f"(default {default_of(RunSettings, 'max_wait_s'):g}s)",
    )
    p.add_argument("--loop", action="store_true", help="restart the logs until --duration ends")
    p.add_argument(
        "--duration",
        type=flags.duration,
        metavar="DURATION",
        help="end the run after 30s, 10m, 2h...",
    )
    p.add_argument(
        "--progress-interval",
        type=flags.non_negative,
        metavar="S",
        help="seconds between progress events "
        f"(default {default_of(ReplayConfig, 'progress_interval_s'):g}; 0: none)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadow",
        description="Replay requests to a primary and a candidate server, compare the answers, "
        "and stream every difference as one JSON line on stdout (on a terminal: a line for "
        "people, the events in the run dir).",
        epilog="`shadow COMMAND --help` for each command's options and examples.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shadow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = _command(commands, "run", "replay logs to both targets and compare")
    run.add_argument(
        "logs", nargs="*", metavar="LOG", help="logs (JSONL, HAR, .gor, access; .gz too), '-' stdin"
    )
    _add_format_option(run)
    _add_run_options(run)
    _add_synth_commands(commands, run)
    _add_convert_command(commands)
    demo = _command(commands, "demo", "run the bundled legacy-vs-rewrite example")
    _add_run_options(demo)
    check = _command(commands, "check", "validate a config, its secrets and keys, as a run would")
    check.add_argument("-c", "--config", required=True, help="TOML config file")
    check.add_argument(
        "--print",
        action="store_true",
        help="print the resolved config as TOML (every default, secrets masked)",
    )
    schema = _command(commands, "schema", "print the JSON Schema of the events or the config")
    schema.add_argument("which", choices=SCHEMAS, help="events (stdout's lines) or config (TOML)")
    report = _command(commands, "report", "summarise event files: text, JSON or HTML")
    report.add_argument(
        "events", nargs="+", metavar="EVENTS", help="event files (.gz too), '-' for stdin"
    )
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    completion = _command(commands, "completion", "print a shell completion script")
    completion.add_argument("shell", choices=COMPLETION_SHELLS, help="the shell to complete in")
    return parser


COMPLETION_SHELLS = ("bash", "zsh", "tcsh")


def _command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its examples and exit codes."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=epilog(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _add_synth_commands(commands: Any, run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--synth", type=flags.positive_int, metavar="N", help="replay N records made from [synth]"
    )
    run.add_argument(
        "--seed", type=flags.seed, metavar="S", help="--synth seed (default: [synth] seed)"
    )
    synth_cmd = _command(commands, "synth", "write [synth] records as JSONL to stdout")
    synth_cmd.add_argument("-c", "--config", required=True, help="TOML config with [synth]")
    synth_cmd.add_argument("--count", type=flags.positive_int, metavar="N", help="records to write")
    synth_cmd.add_argument("--seed", type=flags.seed, metavar="S", help="same seed, same output")
    synth_cmd.add_argument("-q", "--quiet", action="count", default=0, help="less on stderr")


def _add_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=(AUTO, *INPUT_FORMATS),
        help="input format (default: detected from each log's name and first bytes)",
    )


def _add_convert_command(commands: Any) -> None:
    convert = _command(commands, "convert", "write any supported log as JSONL to stdout")
    convert.add_argument(
        "logs", nargs="+", metavar="LOG", help="logs (HAR, .gor, access, JSONL; .gz too), '-' stdin"
    )
    _add_format_option(convert)
    convert.add_argument("--keep-responses", action="store_true", help="keep recorded answers")
    convert.add_argument("-q", "--quiet", action="count", default=0, help="less on stderr")


SCHEMAS = ("events", "config")
