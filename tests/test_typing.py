"""The package is typed: `py.typed` ships, and `mypy syndicate` (settings in pyproject.toml) finds
no error, so the API that `__all__` promises is checked as the CLI uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import syndicate

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_says_it_is_typed():
    assert (Path(syndicate.__file__).parent / "py.typed").is_file()


def test_every_public_name_is_there():
    missing = [name for name in syndicate.__all__ if not hasattr(syndicate, name)]
    assert missing == []


def test_mypy_finds_no_error():
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--no-error-summary", "syndicate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
