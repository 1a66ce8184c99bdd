"""Stopping a run: signal handlers only flip state, and the run reads it.

The shape is uvicorn's (`HANDLED_SIGNALS`, `handle_exit`). The first SIGINT, SIGTERM or SIGHUP
(or a reader closing stdout) stops intake: records already admitted finish under a drain
deadline. A second one forces: what is left is cancelled, and counted. The end of
`--duration` closes intake the same way without counting as an interruption. asyncio.run
turns only SIGINT into cancellation, and Docker sends SIGTERM, so all three are handled here.

Every other signal whose default is to end the process, and that someone or something sends
from outside (SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGIO, SIGPWR,
SIGSTKFLT, the real-time signals), stops the run the same way: killed outright, shadow would
write no summary. SIGPIPE and SIGXFSZ stay ignored, as Python sets them: a write that fails
is reported as an error instead. The fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
SIGTRAP, SIGSYS) keep their default: they mean the process itself cannot be trusted to go on;
it dies, and the servers' keepers end them (shadow.servers.keeper).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

_NAMED = (
    *("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM"),
    *("SIGPROF", "SIGXCPU", "SIGIO", "SIGPWR", "SIGSTKFLT"),
)
_REALTIME = (
    tuple(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)) if hasattr(signal, "SIGRTMIN") else ()
)
# What this platform has of them (SIGPWR and SIGSTKFLT are Linux's).
HANDLED_SIGNALS: tuple[int, ...] = (
    *(getattr(signal, name) for name in _NAMED if hasattr(signal, name)),
    *_REALTIME,
)


def signal_name(signum: int) -> str:
    """`SIGUSR1`; a real-time signal as `SIGRTMIN+N` (the enum names only a few)."""
    if signum in _REALTIME and signum != signal.SIGRTMIN and signum != signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    return signal.Signals(signum).name


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
        loop.add_signal_handler(sig, stop.request, signal_name(sig))
    try:
        yield
    finally:
        for sig in HANDLED_SIGNALS:
            loop.remove_signal_handler(sig)
