"""Shared fixtures: a corpus the suite builds itself, a helper that runs the real CLI, and
the skip policy (CI fails on a skip it is meant to run; a local run says how to run them)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

# One thread per process: on a 2-core machine, tiny models run far faster single-threaded,
# and the CLI subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from rnnkit.text.stdlib import stdlib_text  # noqa: E402

# Skips that are right even in CI: the machine lacks hardware the test is about.
SKIPS_ALLOWED_IN_CI = ("CUDA", "GPU")
BROWSER_INSTALL = "bash .ci/install-browser"


@functools.cache
def corpus_text() -> str:
    """About 1.2 MB of this Python's standard-library source: running text with a ~100-character
    vocabulary, the same on every machine with the same Python, and nothing from outside the repository."""
    return stdlib_text(1_200_000)


@pytest.fixture(scope="session")
def corpus() -> str:
    return corpus_text()


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """The first 100 KB of the corpus as a text file."""
    path = tmp_path / "small.txt"
    path.write_text(corpus_text()[:100_000], encoding="utf-8")
    return path


def train_briefly(folder: Path, text: str, **overrides):
    """A small model trained for a moment on `text` (folder/train.txt, run in folder/run), enough
    for its hidden state to carry context; returns rnnkit.train's result."""
    from rnnkit.training import TrainConfig, train

    (folder / "train.txt").write_text(text, encoding="utf-8")
    settings = dict(max_iters=120, rnn_size=48, wordvec_size=16, batch_size=16, seq_length=32,
                    learning_rate=5e-3, checkpoint_every=0, progress="none", quiet=True)
    settings.update(overrides)
    return train(TrainConfig(input_txt=[str(folder / "train.txt")], checkpoint_name=str(folder / "run/ck"), **settings))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`rnnkit ARGS...` as a user would run it; returns the finished process."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
    )


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (helpers_browser.py), one per test module."""
    from helpers_browser import launch
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            yield browser
        finally:
            browser.close()


def poison_loss(monkeypatch, iterations) -> None:
    """NaN losses at these iterations, as an overflow would give (so the gradients are NaN too)."""
    from rnnkit.training.step import Stepper

    real, at = Stepper.loss_of, frozenset(iterations)

    def loss_of(self, logits, y):
        loss = real(self, logits, y)
        return loss * float("nan") if self.state.iteration in at else loss

    monkeypatch.setattr(Stepper, "loss_of", loss_of)


def _skip_reason(report) -> str:
    return str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    unexpected = [r for r in reporter.stats.get("skipped", [])
                  if not any(word in _skip_reason(r) for word in SKIPS_ALLOWED_IN_CI)]
    if unexpected:
        for r in unexpected:
            reporter.write_line(f"CI runs every test: {r.nodeid} skipped ({_skip_reason(r)})", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    browser = [r for r in skipped if BROWSER_INSTALL in _skip_reason(r)]
    others = len(skipped) - len(browser)
    if browser:
        print(f"{len(browser)} browser test(s) skipped: install headless Chromium with `{BROWSER_INSTALL}`, then run make test again")
    if others:
        print(f"{others} other test(s) skipped (see the skip list above): CI allows only those that need a GPU")
