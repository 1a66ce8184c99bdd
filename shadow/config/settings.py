"""What one run is asked to do, as decided by the command line, and where its events go."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from shadow.config.load import Config
from shadow.errors import UsageError
from shadow.replay.pacing import RateSpec
from shadow.replay.partition import Shard


@dataclass(frozen=True, slots=True)
class RunSettings:
    config: Config
    inputs: list[str]
    emit: str = "mismatches"
    output: str | None = None
    run_dir: str | None = None
    limit: int | None = None
    rate: RateSpec | None = None
    speed: float | None = None  # replay the recorded timing, this many times faster
    max_wait_s: float = 60.0  # with speed: the longest idle gap kept
    loop: bool = False
    duration_s: float | None = None
    drain_s: float | None = None
    live: bool = False  # the rich live view on stderr (the caller checks it is a terminal)
    synth: int | None = None  # replay this many `[synth]` records instead of the inputs
    seed: int | None = None  # for synth; None: the config's `[synth] seed`
    input_format: str = "auto"  # jsonl, har, gor, access, or auto (detected per input)
    learn_noise: str | None = None  # write the learned noise rules here (TOML)
    shard: Shard | None = None  # replay only this shard's records (shadow.replay.partition)
    workers: int = 1  # processes sharing the run (shadow.run.fleet); each child is one shard


@contextlib.contextmanager
def events_output(path: str | None) -> Iterator[IO[bytes] | None]:
    """The `--output` file opened for events (None: stdout); a usage error if it cannot be."""
    if not path:
        yield None
        return
    try:
        stream = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None
    try:
        yield stream
    finally:
        with contextlib.suppress(OSError):  # a full disk fails the final flush too
            stream.close()
