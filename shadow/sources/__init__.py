"""Readers that turn request logs into Records, one module per format.

Each reader is a plain generator over one opened binary stream, yielding `Record`s and
`InputProblem`s (a record that could not be read, with where and why): `jsonl` (native),
`har`, `gor` (GoReplay) and `access` (nginx, AWS ALB); `synth` generates records from the
config's `[synth]` section instead. `detect` picks the reader of a file from its name and first
bytes, and `opening` opens inputs (files, gzip, stdin) and chains their records into one
iterator, which the run pulls in batches from a worker thread so a slow stdin never blocks the
loop.
"""
