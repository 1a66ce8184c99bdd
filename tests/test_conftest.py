"""The fast loop's guard (tests/conftest.py): a test not marked e2e cannot start a process."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

MARK_IT = "starts a process: mark it @pytest.mark.e2e"


async def through_uvloop() -> None:
    await asyncio.create_subprocess_exec("true")


@pytest.mark.parametrize(
    "start",
    [
        lambda: subprocess.run(["true"], check=False),
        lambda: asyncio.run(asyncio.create_subprocess_exec("true")),
        lambda: uvloop.run(through_uvloop()),
        lambda: os.posix_spawn("/bin/true", ["true"], dict(os.environ)),
        lambda: os.system("true"),
        lambda: os.fork(),
    ],
    ids=["subprocess", "asyncio", "uvloop", "posix_spawn", "system", "fork"],
)
def test_an_unmarked_test_that_starts_a_process_fails(start: Callable[[], Any]) -> None:
    with pytest.raises(AssertionError, match=MARK_IT):
        start()


@pytest.mark.e2e
def test_an_e2e_test_may_start_one() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0
