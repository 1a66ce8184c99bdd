"""Readers that turn request logs into Records, one module per format.

Each reader is a plain generator over one opened binary stream, yielding `Record`s and
`InputProblem`s (a record that could not be read, with where and why). Reading is
synchronous and streamed: `open_inputs` hands the app one merged iterator over every input,
and the app pulls batches of it from a worker thread so a slow stdin never blocks the loop.
"""

from shadow.sources.base import InputProblem, Item, iter_inputs, open_input, validate_inputs

__all__ = ["InputProblem", "Item", "iter_inputs", "open_input", "validate_inputs"]
