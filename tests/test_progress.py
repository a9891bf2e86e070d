"""What training prints: the live bar, torch-rnn's plain lines, and nothing with --quiet."""

from __future__ import annotations

import math
import re

from conftest import run_cli

from rnnkit.core.progress import SMOOTHING_ITERS, Progress
from rnnkit.runs.metrics import read_metrics
from rnnkit.training import TrainConfig

TINY = ["--rnn_size", "16", "--num_layers", "1", "--batch_size", "4", "--seq_length", "16", "--threads", "1"]


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(input_h5="unused.h5", input_json="unused.json", **kw)


def _last_bar_line(err: str) -> str:
    return [line for line in re.split(r"[\r\n]", err) if line.startswith("train")][-1]


def test_bar_shows_iterations_epoch_losses_speed_and_eta(capsys):
    p = Progress(_cfg(progress="bar"), total=10, batches_per_epoch=4)
    for i in range(1, 8):
        p.update(i, i / 4, 4.0 - 0.1 * i, 5000.0, 0.1 * i)
    p.validation(7, 3.25, None)
    p.update(8, 2.0, 3.2, 6000.0, 0.8)
    p.close()
    line = _last_bar_line(capsys.readouterr().err)
    assert "8/10" in line
    assert "epoch=2.00" in line
    assert f"loss={p.smoothed:.3f}" in line and p.smoothed != 3.2  # smoothed, not the last raw loss
    assert "val=3.250" in line
    assert "tok/s=6,000" in line
    assert re.search(r"\d\d:\d\d<\d\d:\d\d", line)  # elapsed < ETA


def test_bar_with_time_budget_counts_seconds_and_shows_iteration(capsys):
    p = Progress(_cfg(progress="bar", time_budget=30.0), total=None, batches_per_epoch=100)
    p.update(250, 2.5, 2.0, 1000.0, 12.7)
    p.close()
    line = _last_bar_line(capsys.readouterr().err)
    assert "12/30s" in line
    assert "i=250" in line


def test_smoothing_is_per_iteration_whatever_print_every_is():
    p = Progress(_cfg(progress="none"), total=100, batches_per_epoch=10)
    assert p.smooth(1, 4.0) == 4.0
    # SMOOTHING_ITERS iterations later the average has moved 1 - 1/e of the way
    expected = 4.0 * math.exp(-1) + 2.0 * (1 - math.exp(-1))
    assert math.isclose(p.smooth(1 + SMOOTHING_ITERS, 2.0), expected)


def test_lines_every_print_every_when_not_a_terminal(tmp_path, corpus):
    text = tmp_path / "t.txt"
    text.write_text(corpus[:20_000])
    r = run_cli("train", text, "--checkpoint_name", tmp_path / "run" / "checkpoint", "--max_iters", "12",
                "--print_every", "4", "--checkpoint_every", "0", *TINY)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("Epoch")]
    assert [int(re.search(r"i = (\d+) / 12,", line).group(1)) for line in lines] == [1, 4, 8, 12]
    assert "val_loss" in r.stdout
    assert "\r" not in r.stdout + r.stderr  # no bar redraws in a log


def test_quiet_prints_no_progress_but_still_logs_metrics(tmp_path, corpus):
    text = tmp_path / "t.txt"
    text.write_text(corpus[:20_000])
    r = run_cli("train", text, "--checkpoint_name", tmp_path / "run" / "checkpoint", "--max_iters", "12",
                "--print_every", "4", "--checkpoint_every", "0", "--quiet", *TINY)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "Epoch" not in r.stderr and "val_loss" not in r.stderr and "\r" not in r.stderr
    logged = [m["iteration"] for m in read_metrics(tmp_path / "run") if "train_loss" in m]
    assert logged == [1, 4, 8, 12]
