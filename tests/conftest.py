"""Fixtures, and the rules that keep the suite fast and deterministic.

- Only `e2e` tests start processes. A test that starts one (shadow itself, a server under
  test, curl) is marked `@pytest.mark.e2e`; `pytest -m "not e2e"` runs the rest, in-process,
  in seconds. The rule is enforced: an unmarked test that starts a process fails, naming the
  marker it needs.
- Property tests are derandomized (the same examples on every run and machine) and have no
  per-example deadline: a deadline is a timed assertion, and the suite runs on shared
  machines, two tests at a time.
"""

from __future__ import annotations

import gc
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, settings

from tests.support import fake_pair_running

settings.register_profile(
    "shadow", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shadow")


@pytest.fixture(autouse=True)
def _only_e2e_tests_start_processes(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("e2e") is not None:
        yield
        # A process object a test let go of (a transport, a Popen) warns when it is
        # collected: collect it now, so the warning belongs to this test (and to its marks),
        # not to whichever test runs when the collector next gets round to it.
        gc.collect()
        return
    nodeid = request.node.nodeid

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{nodeid} starts a process: mark it @pytest.mark.e2e")

    # Every way a process starts here: subprocess (and asyncio's loop, which uses it),
    # uvloop's loop (libuv spawns on its own), and os's own calls.
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(uvloop.Loop, "subprocess_exec", refuse)
    monkeypatch.setattr(uvloop.Loop, "subprocess_shell", refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        monkeypatch.setattr(os, name, refuse)
    yield


@pytest.fixture
def tag(tmp_path: Path) -> str:
    """A string to put on the command line of every process a test starts, to find them."""
    return f"shadowtest-{tmp_path.name}-{os.getpid()}"


@pytest.fixture
def fake_pair(tag: str) -> Iterator[tuple[str, str]]:
    """A primary and a candidate fake server, attached-mode style (started by the test)."""
    with fake_pair_running(tag) as urls:
        yield urls
