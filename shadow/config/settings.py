"""What one run is asked to do: the config file's settings, with the command line's over them.

`RunSettings` is built by the command line (shadow.cli) and read by the run (shadow.run); its
defaults are the command line's defaults. `Shard` names one share of a run split by lane
(`--shard I/N`, and each `--workers` child).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shadow.config.load import Config
from shadow.config.replay import TRANSPORTS, RateSpec
from shadow.errors import InvalidValue, check_at_least, check_choice

AUTO = "auto"
INPUT_FORMATS = ("jsonl", "har", "gor", "access")
EMIT = ("mismatches", "all")
MAX_WORKERS = 256  # processes on one machine: past this, split the run with --shard instead
DRAIN_MARGIN_S = 1.0  # past the request timeout, before a stopped run cancels what is left


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0-based, as Kubernetes' JOB_COMPLETION_INDEX)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"the number of shards must be at least 1, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(
                f"the shard index must be from 0 to {self.count - 1}, not {self.index}"
            )

    @property
    def text(self) -> str:
        return f"{self.index}/{self.count}"

    def split(self, part: int, parts: int) -> Shard:
        """Part `part` of `parts` of this shard, itself a shard of `count * parts`."""
        return Shard(self.index + self.count * part, self.count * parts)


WHOLE = Shard(0, 1)


def parse_shard(text: str) -> Shard:
    """`I/N` -> Shard(I, N); ValueError with a message naming what is wrong."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"expected INDEX/COUNT such as 0/4, not {text!r}")
    return Shard(int(index), int(count))


@dataclass(frozen=True, slots=True)
class RunSettings:
    config: Config
    inputs: list[str]
    emit: str = "mismatches"  # mismatches | all (a `match` event per matching exchange too)
    output: str | None = None
    run_dir: str | None = None
    limit: int | None = None
    rate: RateSpec | None = None
    speed: float | None = None  # replay the recorded timing, this many times faster
    max_wait_s: float = 60.0  # with speed: the longest idle gap kept
    loop: bool = False
    duration_s: float | None = None
    drain_s: float | None = None  # None: the request timeout plus DRAIN_MARGIN_S
    live: bool = False  # the rich live view on stderr (the caller checks it is a terminal)
    # stdout is a person's terminal: lines for people there, the events to `output` or else
    # RUN_DIR/events.ndjson (shadow.run.lifecycle)
    terminal: bool = False
    synth: int | None = None  # replay this many `[synth]` records instead of the inputs
    seed: int | None = None  # for synth; None: the config's `[synth] seed`
    input_format: str = AUTO  # one of INPUT_FORMATS, or AUTO (detected per input)
    learn_noise: str | None = None  # write the learned noise rules here (TOML)
    shard: Shard | None = None  # replay only this shard's records (shadow.replay.partition)
    workers: int = 1  # processes sharing the run (shadow.run.fleet); each child is one shard
    workers_reason: str = "the default"  # how `workers` was decided (shadow.run.sizing)
    # Exit with this, not the verdict (0 or 1), when a signal or a closed output stopped the
    # run before its input ended: a partial run is no verdict (a Kubernetes shard retried).
    interrupted_exit_code: int | None = None
    # Exit with this, not 1, when only request errors failed the thresholds (retry them).
    errors_exit_code: int | None = None
    metrics: tuple[str, int] | None = None  # serve Prometheus metrics on (host, port)
    # Compare the candidate with the primary's answers the capture recorded (none is sent to
    # a primary; the noise cannot be calibrated): shadow.sources.answers.
    recorded: bool = False
    transport: str | None = None  # --transport: over the config's `[replay] transport`

    def __post_init__(self) -> None:
        check_choice("emit", self.emit, EMIT)
        if self.transport is not None:
            check_choice("transport", self.transport, TRANSPORTS)
        check_choice("input_format", self.input_format, (AUTO, *INPUT_FORMATS))
        check_at_least("max_wait_s", self.max_wait_s, 0)
        check_at_least("workers", self.workers, 1)
        if self.workers > MAX_WORKERS:
            raise InvalidValue("workers", f"must be at most {MAX_WORKERS}, not {self.workers}")
        for name in ("limit", "speed", "duration_s", "drain_s", "synth", "seed"):
            value = getattr(self, name)
            if value is not None:
                check_at_least(name, value, 0)

    @property
    def drain_deadline_s(self) -> float:
        """How long in-flight requests get to finish once a run is asked to stop."""
        if self.drain_s is not None:
            return self.drain_s
        return self.config.replay.timeout_s + DRAIN_MARGIN_S

    @property
    def seed_used(self) -> int | None:
        """The `--synth` seed: `--seed`, else the config's `[synth] seed`."""
        if self.seed is not None or self.config.synth is None:
            return self.seed
        return self.config.synth.seed

    def source_names(self) -> list[str]:
        """What the run reads, as `run_started` lists it."""
        if self.synth is not None and self.config.synth is not None:
            return [f"synth:{self.synth}@{self.seed_used}"]
        return ["<stdin>" if path == "-" else path for path in self.inputs]

    @property
    def transport_requested(self) -> str:
        """`--transport`, else `[replay] transport` (shadow.replay.transports chooses)."""
        return self.transport or self.config.replay.transport

    def describe(self) -> dict[str, Any]:
        """The settings `run_started` reports."""
        replay = self.config.replay
        return {
            "concurrency": replay.concurrency,
            "timeout_s": replay.timeout_s,
            "rate": self.rate.text if self.rate else None,
            "speed": self.speed,
            "max_wait_s": self.max_wait_s if self.speed else None,
            "loop": self.loop,
            "duration_s": self.duration_s,
            "progress_interval_s": replay.progress_interval_s,
            "limit": self.limit,
            "emit": self.emit,
            "lanes": replay.lane.source,
            "host_header": replay.host_header,
            "shard": self.shard.text if self.shard else None,
            "workers": self.workers,
            "workers_reason": self.workers_reason,
        }
