"""The layering of docs/design.md: no module imports one above it (function-level imports too).

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``: a ``layers`` contract over
the subpackages of ``cfglab`` and a ``forbidden`` one keeping the theory free of simulation).
import-linter builds the import graph of the ``cfglab`` under test (the one imported here).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cfglab

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_points_down_the_layers():
    src = str(Path(cfglab.__file__).resolve().parents[1])  # the tree whose cfglab is tested
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    run = subprocess.run(
        [sys.executable, "-c", code, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    report = run.stdout[run.stdout.find("Contracts"):] + run.stderr
    assert run.returncode == 0, report
    assert "2 kept, 0 broken" in report, report
