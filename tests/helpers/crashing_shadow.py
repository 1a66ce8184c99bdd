"""Start a managed server, print its pids, then crash the loop without stopping anything.

Run as `python crashing_shadow.py FAKE_SERVER RUN_DIR`; the supervisor's atexit hook is what
must kill the server's process group when this interpreter exits.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp

from shadow.config.targets import Health, TargetConfig
from shadow.servers.managed import ManagedServer


class Quiet:
    def server_ready(self, target: str, url: str, pid: int | None, startup_ms: float) -> None:
        pass

    def server_exited(
        self, target: str, returncode: int | None, expected: bool, log_tail: list[str]
    ) -> None:
        pass


async def main(fake_server: str, run_dir: Path) -> None:
    target = TargetConfig(
        name="primary",
        url="http://127.0.0.1:0",
        command=(
            sys.executable,
            fake_server,
            "--port",
            "{port}",
            "--ignore-term",
            "--grandchild",
            "ignore",
        ),
        health=Health(timeout_s=10.0, interval_s=0.05),
    )
    server = ManagedServer(target, run_dir, Quiet())
    await server.start()
    async with aiohttp.ClientSession() as session:
        await server.wait_ready(session)
    (grandchild,) = [
        m for line in server.log_tail() if (m := re.fullmatch(r"grandchild (\d+)", line))
    ]
    print(server.pid, grandchild.group(1), flush=True)
    raise RuntimeError("crash with servers up")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
