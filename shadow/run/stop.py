"""Stopping a run: signal handlers only flip state, and the run reads it.

The shape is uvicorn's (`HANDLED_SIGNALS`, `handle_exit`). The first SIGINT, SIGTERM or SIGHUP
(or a reader closing stdout) stops intake: records already admitted finish under a drain
deadline. A second one forces: what is left is cancelled, and counted. The end of
`--duration` closes intake the same way without counting as an interruption. asyncio.run
turns only SIGINT into cancellation, and Docker sends SIGTERM, so all three are handled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop:
    """State flipped by signals and a closed stdout; the run reads it."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()  # a signal or a gone reader asked the run to stop
        self.forced = asyncio.Event()  # asked twice: cancel what is left
        self.closing = asyncio.Event()  # intake stops: on request, or when the duration ends
        self.reason = ""

    def request(self, reason: str) -> None:
        if self.requested.is_set():
            self.forced.set()
            return
        self.close(reason)
        self.requested.set()

    def close(self, reason: str) -> None:
        if not self.closing.is_set():
            self.reason = reason
            self.closing.set()


@contextlib.contextmanager
def capture_signals(stop: Stop) -> Iterator[None]:
    """While inside, each handled signal calls `stop.request` with the signal's name."""
    loop = asyncio.get_running_loop()
    for sig in HANDLED_SIGNALS:
        loop.add_signal_handler(sig, stop.request, signal.Signals(sig).name)
    try:
        yield
    finally:
        for sig in HANDLED_SIGNALS:
            loop.remove_signal_handler(sig)
