"""Readers that turn request logs into Records, one module per format.

Each reader is a plain generator over one opened binary stream, yielding `Record`s and
`InputProblem`s (a record that could not be read, with where and why): `jsonl` (native),
`har`, `gor` (GoReplay) and `access` (nginx, AWS ALB). `detect` picks the reader of a file
from its name and first bytes. Reading is synchronous and streamed: `iter_inputs` hands the app
one iterator over every input, and the app pulls batches of it from a worker thread so a slow
stdin never blocks the loop.
"""

from shadow.sources.detect import FORMATS
from shadow.sources.opening import (
    AUTO,
    InputProblem,
    Item,
    UnreadableInput,
    is_stream,
    iter_inputs,
    merge_by_ts,
    open_input,
    validate_inputs,
)

__all__ = [
    "AUTO",
    "FORMATS",
    "InputProblem",
    "Item",
    "UnreadableInput",
    "is_stream",
    "iter_inputs",
    "merge_by_ts",
    "open_input",
    "validate_inputs",
]
