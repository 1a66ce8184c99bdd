"""The report tests' one shared preparation."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _matplotlib_font_cache() -> None:
    """The first import of matplotlib on a machine lists its fonts with `fc-list`, a process:
    done once here, before a test that may not start processes draws a plot."""
    import matplotlib.font_manager  # noqa: F401
