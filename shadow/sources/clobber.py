"""Refusing, before anything is opened for writing, an output that is one of the inputs.

Opening `--output` truncates it; if it is the log about to be read, the records are gone
before the first one is read. The same holds for any file shadow writes (the learned noise
rules, an HTML report) and for stdout redirected onto an input. A pipe given twice is read by
two readers that split its lines between them, so it is refused too; a regular file given
twice is only replayed twice, which is allowed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence

from shadow.errors import UsageError

STDIN = "-"


def _identity(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino, info.st_mode


def check_outputs(
    inputs: Sequence[str], outputs: Mapping[str, str | None], stdout_fd: int | None = None
) -> None:
    """UsageError (exit 2) naming both when an output (by option name) is an input, when
    stdout (`stdout_fd`) is an input file, or when a pipe or stdin is given twice."""
    seen: dict[tuple[int, int], str] = {}
    for path in inputs:
        found = _identity(path) if path != STDIN else None
        if found is None:
            continue
        dev, ino, mode = found
        earlier = seen.get((dev, ino))
        if earlier is not None and not stat.S_ISREG(mode):
            raise UsageError(
                f"{path}: given twice ({earlier}), but it is a pipe or device, read only once: "
                "each reading would take records from the other"
            )
        seen[(dev, ino)] = path
    for option, output in outputs.items():
        found = _identity(output) if output else None
        if found is not None and found[:2] in seen:
            raise UsageError(
                f"{option} {output} is the input {seen[found[:2]]}: writing there would destroy "
                "it before it is read"
            )
    if stdout_fd is None:
        return
    try:
        info = os.fstat(stdout_fd)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) in seen:
        raise UsageError(
            f"stdout is the input {seen[(info.st_dev, info.st_ino)]}: events written there "
            "would be read back as records; write them elsewhere (--output FILE)"
        )
