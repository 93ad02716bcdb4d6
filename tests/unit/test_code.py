"""The code's shape, checked by the tools the field uses: ruff (lint and import order), mypy (types) and
import-linter (the layers of pyproject.toml's [tool.importlinter]: a lower layer never imports a higher one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_finds_nothing():
    done = _run(str(BIN / "ruff"), "check", "--output-format", "concise", "alertd", "tests", "bench", "clients",
                "scripts")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing():
    done = _run(str(BIN / "mypy"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_lower_layer_imports_a_higher_one():
    done = _run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0 and "0 broken" in done.stdout, done.stdout + done.stderr
