"""The package's shape: the plain modules at its top, and the import contract that keeps the
pipeline's direction (pyproject.toml [tool.importlinter]), which must catch a violation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CYCLES = "No import cycle between any two modules or packages"
LAYERS = "Layers: cli, then run and report, then the stages, then compare, config, the values"


def test_the_top_level_holds_four_plain_modules_besides_the_dunders() -> None:
    modules = sorted(p.name for p in (ROOT / "shadow").glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "cli.py", "errors.py", "model.py", "stdio.py"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("module", "added", "contract"),
    [
        (  # a cycle through an import inside a function
            "config/targets.py",
            "def _late():\n    from shadow.config import load\n",
            CYCLES,
        ),
        (  # a cycle through an import for the type checker only
            "servers/managed.py",
            "if TYPE_CHECKING:\n    from shadow.servers.supervisor import Supervisor\n",
            CYCLES,
        ),
        (
            "compare/diff.py",
            "def _emit():\n    from shadow.events import sink\n",
            LAYERS,
        ),
        (
            "cli.py",
            "from shadow.sources import jsonl\n",
            "Only run imports the stages: the command line reaches them through run",
        ),
        (
            "compare/pointers.py",
            "import time\n",
            "compare is pure: no asyncio, no network, process or file module, nor time or random",
        ),
    ],
)
def test_the_import_contract_catches_a_violation(
    tmp_path: Path, module: str, added: str, contract: str
) -> None:
    shutil.copytree(
        ROOT / "shadow", tmp_path / "shadow", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    planted = tmp_path / "shadow" / module
    text = planted.read_text()
    if "TYPE_CHECKING" in added and "import TYPE_CHECKING" not in text:
        added = "from typing import TYPE_CHECKING\n" + added
    planted.write_text(f"{text}\n{added}")
    linted = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert f"{contract} BROKEN" in " ".join(linted.stdout.split()), linted.stdout
