"""A `--workers` child: `python -m shadow.run.worker`, started by the fleet (shadow.run.fleet).

It reads its settings (an ordinary attached run of one shard) as a pickle from stdin, never
from disk (they can hold secrets from the config's env file), and keeps stdin open: its end
means the parent is gone, even by SIGKILL, and the child stops as on SIGTERM. Its events go
to stdout, where the parent merges them.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading

from shadow.errors import BUG_EXIT_CODE, ShadowError
from shadow.run import run
from shadow.stdio import Console


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0 and (chunk := os.read(fd, size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _stop_when_parent_dies(fd: int) -> None:
    """The parent holds our stdin open; its end means the parent is gone: stop as on SIGTERM."""
    # The raw descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader
    # would abort the interpreter's shutdown.
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def child_main() -> int:
    """A worker: read the settings from stdin, run the shard, exit with the run's code."""
    fd = sys.stdin.fileno()
    size = int.from_bytes(_read_exactly(fd, 8), "big")
    settings, verbosity = pickle.loads(_read_exactly(fd, size))
    threading.Thread(target=_stop_when_parent_dies, args=(fd,), daemon=True).start()
    console = Console(verbosity)
    try:
        return run(settings, console)
    except ShadowError as exc:
        console.error(str(exc))
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug, as the command line reports one
        console.internal_error(exc)
        return BUG_EXIT_CODE


if __name__ == "__main__":
    sys.exit(child_main())
