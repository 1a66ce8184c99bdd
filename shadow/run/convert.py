"""`shadow convert` and `shadow synth`: records read or generated, written as native JSONL.

Both write to a binary stdout and nothing else there; problems go to stderr. A reader that
closes stdout early (`| head`) is not an error: the command stops and exits 0.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

import orjson

from shadow.config.replay import ReplayConfig
from shadow.config.synth import SynthConfig
from shadow.config.table import default_of
from shadow.model import InputProblem, UnreadableInput
from shadow.sources import synth
from shadow.sources.clobber import check_outputs
from shadow.sources.opening import iter_inputs, validate_inputs
from shadow.stdio import Console, point_at_devnull


def convert(
    paths: list[str],
    fmt: str,
    console: Console,
    out: BinaryIO | None = None,
    keep: bool = False,
) -> int:
    """Every record of `paths` as native JSONL on `out` (stdout), each unreadable record on
    stderr; exit 1 if there were any, 2 (raised) if a log cannot be read at all.
    `keep` keeps the answer a capture recorded as the record's `response`."""
    validate_inputs(paths, fmt)
    check_outputs(paths, {}, sys.stdout.fileno() if out is None else None)
    out = out if out is not None else sys.stdout.buffer
    converted = problems = 0
    unreadable = False
    try:
        max_bytes = default_of(ReplayConfig, "max_record_bytes")
        for item in iter_inputs(paths, max_bytes, fmt, answers=keep):
            if isinstance(item, InputProblem):
                problems += 1
                unreadable = unreadable or isinstance(item, UnreadableInput)
                where = f"{item.source}:{item.line}" if item.line else item.source
                console.error(f"{where}: {item.message}")
                continue
            out.write(
                orjson.dumps(item.to_dict(keep_response=keep), option=orjson.OPT_APPEND_NEWLINE)
            )
            converted += 1
        out.flush()
    except BrokenPipeError:
        point_at_devnull(out.fileno())
        return 0
    console.info(f"{converted} records converted, {problems} could not be read")
    if unreadable:
        return 2
    return 1 if problems else 0


def write_synth(
    config: SynthConfig, seed: int, count: int, console: Console, out: BinaryIO | None = None
) -> int:
    """`count` records of `[synth]` as native JSONL on `out` (stdout); 1 if some were bad."""
    out = out if out is not None else sys.stdout.buffer
    try:
        problems = synth.write_jsonl(config, seed, count, out)
    except BrokenPipeError:
        point_at_devnull(out.fileno())
        return 0
    for problem in problems:
        console.error(f"synth record {problem.line}: {problem.message}")
    return 1 if problems else 0
