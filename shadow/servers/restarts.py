"""Restarting a managed server that died mid-run (`restart = "on-failure"`), and the gap it left.

The dead server's whole group is KILLed first (a surviving child could hold the port), then it
is started again after a backoff that doubles with each restart and health-checked, while the
run goes on: records due meanwhile are not sent to it (the pipeline asks `down`), and the time it
was down is counted. A restart that does not come up counts as one; once `max_restarts` are
used up, the supervisor ends the run as for any death.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from shadow.errors import ServerExitedError, ShadowError
from shadow.servers.managed import ManagedServer


class Restarts:
    """The restarts of a run's managed servers."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        on_ready: Callable[[ManagedServer], None],
        on_failed: Callable[[ServerExitedError], None],
    ) -> None:
        self._session = session
        self._on_ready = on_ready
        self._on_failed = on_failed
        self.count: dict[str, int] = {}
        self.down: dict[str, float] = {}  # target -> loop time it went down, while restarting
        self._down_s: dict[str, float] = {}  # target -> time down before the current gap
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def take(self, server: ManagedServer) -> bool:
        """Restart `server` if its policy allows (True), or leave its death to the caller."""
        name, target = server.name, server.target
        if name in self._tasks and not self._tasks[name].done():
            return True  # died while restarting: that restart's health check reports it
        if target.restart != "on-failure" or self.count.get(name, 0) >= target.max_restarts:
            return False
        self.down[name] = asyncio.get_running_loop().time()
        self._tasks[name] = asyncio.create_task(self._restart(server), name=f"restart-{name}")
        return True

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per restarted target: `restarts`, and `down_s`, the seconds it was down."""
        now = asyncio.get_running_loop().time()
        return {
            name: {
                "restarts": count,
                "down_s": round(self._down_s.get(name, 0.0) + now - self.down.get(name, now), 3),
            }
            for name, count in sorted(self.count.items())
        }

    async def _restart(self, server: ManagedServer) -> None:
        name, target = server.name, server.target
        while True:
            attempt = self.count.get(name, 0) + 1
            self.count[name] = attempt
            await asyncio.sleep(target.restart_backoff_s * 2 ** (attempt - 1))
            try:
                await server.restart(self._session)
                break
            except ShadowError as exc:
                if attempt >= target.max_restarts:
                    message = f"could not be restarted ({exc}); max_restarts = {attempt} used up"
                    self._on_failed(ServerExitedError(name, message, server.log_tail()))
                    return
        now = asyncio.get_running_loop().time()
        self._down_s[name] = self._down_s.get(name, 0.0) + now - self.down.pop(name)
        self._on_ready(server)
