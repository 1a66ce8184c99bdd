"""One timer for every request's deadline, instead of a timer handle per request.

Every request of a run has the same timeout, so deadlines fall in the order requests start:
the live ones are kept in insertion order, the first is always the earliest, and a single
`loop.call_at` waits for it. A request that ends leaves the set in O(1) and cancels nothing;
when the timer fires it expires what is due and sets itself for the next live deadline, so it
fires about once per timeout however many requests go by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Deadline:
    """One request's deadline; `on_expire` is called once if it passes before `done`."""

    __slots__ = ("at", "on_expire")

    def __init__(self, at: float, on_expire: Callable[[], None]) -> None:
        self.at = at
        self.on_expire = on_expire


class Deadlines:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._live: dict[Deadline, None] = {}  # in deadline order (one timeout for all)
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, on_expire: Callable[[], None]) -> Deadline:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = Deadline(loop.time() + self.timeout_s, on_expire)
        self._live[deadline] = None
        if self._timer is None:
            self._timer = loop.call_at(deadline.at, self._sweep)
        return deadline

    def done(self, deadline: Deadline) -> None:
        self._live.pop(deadline, None)

    def _sweep(self) -> None:
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        live = self._live
        while live:
            first = next(iter(live))
            if first.at > now:
                self._timer = self._loop.call_at(first.at, self._sweep)
                return
            del live[first]
            first.on_expire()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._live.clear()
