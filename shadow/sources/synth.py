"""Synthetic traffic: request records generated from the `[synth]` config section.

Generation is a pure function of (config, seed, count): one `random.Random(seed)` drives the
choice of template and every drawn value, in a fixed order, so the same inputs give the same
records byte for byte on any machine. A variable's `pool` is drawn up front from its own
generator seeded with (seed, variable name), so adding a variable does not reshuffle another's
pool. Records are yielded one at a time and every record goes through the native reader's
`record_from_dict`, so `shadow synth | shadow run -` and `shadow run --synth N` replay exactly
the same requests, and memory stays flat whatever N is.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from shadow.config.synth import Step, SynthConfig, Template, Variable
from shadow.config.templating import render
from shadow.model import InputProblem, Item, Record
from shadow.sources.jsonl import record_from_dict

SOURCE = "synth"


def generate(config: SynthConfig, seed: int, count: int) -> Iterator[Item]:
    """`count` records (a scenario cut short at the end), lazily; the same for the same seed."""
    rng = random.Random(seed)
    variables = {v.name: v for v in config.variables}
    pools = {v.name: _fill_pool(v, seed) for v in config.variables if v.gen and v.pool > 0}
    cum_weights = list(itertools.accumulate(t.weight for t in config.templates))
    last = len(cum_weights) - 1
    line = 0
    while True:
        template = config.templates[_pick(cum_weights, rng, last)]
        values: dict[str, Any] = {name: f"{{{name}}}" for name in config.captures}
        for name in template.needs:
            values[name] = _draw(variables[name], rng, pools, values)
        lane = _lane(template, values, line + 1)
        record_vars = {name: values[name] for name in template.record_vars}
        for step in template.steps:
            if line >= count:
                return
            line += 1
            yield _record(step, values, lane, record_vars, line)


def _fill_pool(variable: Variable, seed: int) -> list[Any]:
    rng = random.Random(f"{seed}/{variable.name}")
    return [_fresh(variable, rng) for _ in range(variable.pool)]


def _draw(
    variable: Variable, rng: random.Random, pools: Mapping[str, list[Any]], values: dict[str, Any]
) -> Any:
    if not variable.gen:
        assert variable.value is not None
        return render(variable.value, values)
    pool = pools.get(variable.name)
    if pool is not None:
        return pool[rng.randrange(len(pool))]
    return _fresh(variable, rng)


def _fresh(v: Variable, rng: random.Random) -> Any:
    if v.gen == "address":
        return f"0x{rng.getrandbits(160):040x}"
    if v.gen == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if v.gen == "int":
        return rng.randint(v.low, v.high)
    if v.gen == "hex":
        return f"{v.prefix}{rng.getrandbits(8 * v.hex_bytes):0{2 * v.hex_bytes}x}"
    if v.gen == "choice":
        if v.cum_weights:
            return v.values[_pick(v.cum_weights, rng, len(v.values) - 1)]
        return v.values[rng.randrange(len(v.values))]
    return format_time(rng.randint(v.low, v.high), v.time_format)


def _pick(cum_weights: Sequence[float], rng: random.Random, last: int) -> int:
    """A weighted index; `min` because a product can round up to the total itself."""
    return min(bisect.bisect(cum_weights, rng.random() * cum_weights[-1]), last)


def format_time(epoch_ms: int, time_format: str) -> Any:
    """A timestamp as ISO 8601 UTC with milliseconds and `Z`, or epoch seconds or ms."""
    if time_format == "epoch":
        return epoch_ms // 1000
    if time_format == "epoch_ms":
        return epoch_ms
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _lane(template: Template, values: Mapping[str, Any], first_line: int) -> str | None:
    if template.lane is not None:
        lane = render(template.lane, values)
        return lane if isinstance(lane, str) else orjson.dumps(lane).decode()
    # A scenario's steps act on the same generated values, so they must run in order: its
    # lane is named after its first record's id.
    return f"synth-{first_line}" if template.scenario else None


def _record(
    step: Step, values: Mapping[str, Any], lane: str | None, record_vars: dict[str, Any], line: int
) -> Item:
    data: dict[str, Any] = {"method": step.method, "path": render(step.path, values)}
    if step.headers:
        data["headers"] = [[name, render(value, values)] for name, value in step.headers]
    if step.body is not None:
        data["body"] = render(step.body, values)
    elif step.body_text is not None:
        data["body_text"] = render(step.body_text, values)
    if step.name is not None:
        data["name"] = step.name
    data["id"] = f"synth-{line}"
    if lane is not None:
        data["lane"] = lane
    if step.auth is not None:
        data["auth"] = step.auth
    if record_vars:
        data["vars"] = record_vars
    try:
        return record_from_dict(data, SOURCE, line)
    except ValueError as exc:
        # A drawn value made the request invalid (a pool value with a newline in a header).
        return InputProblem(SOURCE, line, str(exc))


def write_jsonl(
    config: SynthConfig, seed: int, count: int, stream: IO[bytes]
) -> list[InputProblem]:
    """`shadow synth`: the records as native JSONL on `stream`; the problems are returned."""
    problems: list[InputProblem] = []
    option = orjson.OPT_APPEND_NEWLINE
    for item in generate(config, seed, count):
        if isinstance(item, Record):
            stream.write(orjson.dumps(item.to_dict(), option=option))
        else:
            problems.append(item)
    stream.flush()
    return problems
