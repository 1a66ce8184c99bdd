"""Resets: each target put back in its known state before the replay and before each `--loop`
pass (`[targets.NAME.reset]`), so a stateful run starts from equal states and can be repeated.

A command reset is a child in its own session: its output is kept (the last lines name what
failed), and on its deadline, on cancellation, and after it exits, whatever is left of its
process group is killed and waited for, so a reset never leaves a process behind (a command
that starts a daemon and returns would). An HTTP reset is one request to the target: its
method, path, headers and body as configured, nothing else. Either kind failing, or missing
its deadline, ends the run with a ResetError (exit 3, as a target that cannot be used): a
comparison of targets that may not be in the same state proves nothing. Each reset is a
`reset` event; what failed is said on stderr, where the run's scrubber masks the secrets of
the reset's env and headers like every other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping

import aiohttp

from shadow.config.targets import Reset, TargetConfig
from shadow.errors import ResetError
from shadow.events.sink import Sink
from shadow.servers.procgroup import signal_group, wait_group_gone

OUTPUT_TAIL_LINES = 10  # of a failed command, on stderr
OUTPUT_KEPT_BYTES = 1 << 16  # of a command's output, for its tail
REAPED_WITHIN_S = 5.0  # for a killed group to be gone


class Resetter:
    """Runs the resets of a run's targets, one target after the other, each once per call."""

    def __init__(
        self, targets: Mapping[str, TargetConfig], session: aiohttp.ClientSession, sink: Sink
    ) -> None:
        self.targets = {name: t for name, t in targets.items() if t.reset is not None}
        self.session = session
        self.sink = sink
        self.passes = 0  # how many times every target was reset

    def __bool__(self) -> bool:
        return bool(self.targets)

    async def reset_all(self) -> None:
        """Reset every target that has a reset; ResetError for the first that fails."""
        for name, target in self.targets.items():
            reset = target.reset
            assert reset is not None
            started = time.monotonic()
            try:
                if reset.command:
                    await run_command(name, reset)
                else:
                    await self._request(name, target.url, reset)
            except ResetError:
                self.sink.reset(name, reset.kind, time.monotonic() - started, ok=False)
                raise
            self.sink.reset(name, reset.kind, time.monotonic() - started, ok=True)
        self.passes += 1

    async def _request(self, name: str, base_url: str, reset: Reset) -> None:
        what = f"reset {reset.method} {reset.path}"
        try:
            async with self.session.request(
                reset.method,
                base_url + reset.path,
                headers=dict(reset.headers),
                data=reset.body.encode("utf-8") if reset.body else None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=reset.timeout_s),
            ) as resp:
                body = await resp.read()
        except TimeoutError:
            raise ResetError(name, f"{what}: no answer within {reset.timeout_s:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise ResetError(name, f"{what}: {type(exc).__name__}: {exc}") from None
        ok = resp.status == reset.status if reset.status else 200 <= resp.status < 300
        if not ok:
            expected = reset.status or "2xx"
            excerpt = body[:200].decode("utf-8", "replace").strip()
            raise ResetError(
                name,
                f"{what}: answered {resp.status}, expected {expected}"
                + (f": {excerpt}" if excerpt else ""),
            )


async def run_command(name: str, reset: Reset) -> None:
    """Run the reset command to its end within `timeout_s`; ResetError if it fails."""
    argv = reset.command
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=reset.cwd,
            env={**os.environ, **reset.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        problem = exc.strerror or exc
        raise ResetError(name, f"reset command {argv[0]!r} cannot start: {problem}") from None
    assert proc.stdout is not None
    output = bytearray()
    try:
        await asyncio.wait_for(_drain(proc.stdout, output), reset.timeout_s)
        await proc.wait()
    except TimeoutError:
        raise ResetError(
            name,
            f"reset command {argv[0]!r} did not finish within {reset.timeout_s:g}s (killed)",
            _tail(output),
        ) from None
    finally:
        await _reap(proc)
    if proc.returncode != 0:
        raise ResetError(
            name, f"reset command {argv[0]!r} exited with {proc.returncode}", _tail(output)
        )


async def _drain(stream: asyncio.StreamReader, output: bytearray) -> None:
    """Read the command's output to its end, keeping only its last OUTPUT_KEPT_BYTES."""
    while chunk := await stream.read(1 << 14):
        output += chunk
        if len(output) > OUTPUT_KEPT_BYTES:
            del output[: len(output) - OUTPUT_KEPT_BYTES]


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill what is left of the command's group and wait for it, also when cancelled (then
    the cancellation goes on once the group is gone)."""
    signal_group(proc.pid, signal.SIGKILL)
    deadline = asyncio.get_running_loop().time() + REAPED_WITHIN_S
    reaping = asyncio.ensure_future(_gone(proc, deadline))
    try:
        await asyncio.shield(reaping)
    except asyncio.CancelledError:
        await reaping
        raise


async def _gone(proc: asyncio.subprocess.Process, deadline: float) -> None:
    await proc.wait()
    await wait_group_gone(proc.pid, deadline)


def _tail(output: bytearray) -> list[str]:
    lines = bytes(output).decode("utf-8", "replace").splitlines()
    return lines[-OUTPUT_TAIL_LINES:]
