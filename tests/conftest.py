"""Shared fixtures: slices of the char-rnn corpus and a helper that runs the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One thread per process: on a 2-core machine, tiny models run far faster single-threaded,
# and the CLI subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def shakespeare_text() -> str:
    if not SHARED_DATA.exists():
        pytest.skip(f"corpus not found at {SHARED_DATA}")
    return SHARED_DATA.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def shakespeare() -> str:
    return shakespeare_text()


@pytest.fixture
def small_corpus(tmp_path, shakespeare) -> Path:
    """The first 100 KB of tinyshakespeare as a text file."""
    path = tmp_path / "small.txt"
    path.write_text(shakespeare[:100_000], encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`rnnkit ARGS...` as a user would run it; returns the finished process."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
    )
