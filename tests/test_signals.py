"""SIGTERM (kill, docker stop, Slurm, systemd) stops training as Ctrl-C does: it saves a
checkpoint, exits 143 and prints the command that continues the run. A second signal
stops at once and leaves every checkpoint whole."""

from __future__ import annotations

import os
import re
import shlex
import signal
import threading
from pathlib import Path

from conftest import corpus_text, run_cli
from test_crash_safety import posix_only, signal_training

from rnnkit.core.checkpoint import (
    checkpoint_iteration,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
)
from rnnkit.runs.metrics import read_metrics


def trained_iterations(run: Path) -> list[int]:
    return [r["iteration"] for r in read_metrics(run) if "train_loss" in r]


@posix_only
def test_sigterm_saves_exits_143_and_the_printed_command_resumes(tmp_path):
    code, err = signal_training(tmp_path, signal.SIGTERM)
    assert code == 143, err  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended
    assert "Traceback" not in err and "stopped by SIGTERM: saved" in err
    run = tmp_path / "run"
    stopped_at = trained_iterations(run)[-1]
    latest = latest_checkpoint(run, "ck")
    assert checkpoint_iteration(latest) == stopped_at  # saved where it stopped: no step lost
    assert load_checkpoint(latest).meta["iteration"] == stopped_at

    command = re.search(r"continue with: (rnnkit train --resume \S+)", err).group(1)
    resumed = run_cli(*shlex.split(command)[1:], "--max_iters", str(stopped_at + 3), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert trained_iterations(run) == list(range(1, stopped_at + 4))  # carried on from there, nothing redone
    assert load_checkpoint(latest_checkpoint(run, "ck")).meta["iteration"] == stopped_at + 3


@posix_only
def test_a_second_sigterm_while_saving_stops_at_once_and_leaves_checkpoints_whole(tmp_path, monkeypatch, capsys):
    from rnnkit import cli
    from rnnkit.core import atomic
    from rnnkit.training.step import Stepper

    (tmp_path / "text.txt").write_text(corpus_text()[:4000])
    monkeypatch.chdir(tmp_path)
    step, fsync = Stepper.step, atomic.os.fsync
    sent = []

    def step_then_term(self, *args, **kwargs):
        loss = step(self, *args, **kwargs)
        if self.state.iteration == 5:
            sent.append("first")
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    def term_while_writing(fd):  # the first write of the checkpoint the first SIGTERM asked for
        if sent == ["first"]:
            sent.append("second")
            os.kill(os.getpid(), signal.SIGTERM)
        return fsync(fd)

    monkeypatch.setattr(Stepper, "step", step_then_term)
    monkeypatch.setattr(atomic.os, "fsync", term_while_writing)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    code = cli.main(["train", "text.txt", "--checkpoint_name", "run/ck", "--rnn_size", "16", "--wordvec_size", "8",
                     "--num_layers", "1", "--batch_size", "2", "--seq_length", "8", "--checkpoint_every", "3",
                     "--max_iters", "50", "--progress", "none", "--quiet", "--threads", "1", "--device", "cpu"])
    monkeypatch.undo()
    assert code == 143 and sent == ["first", "second"]
    assert "stopped at once by a second SIGTERM" in capsys.readouterr().err
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers put back
    run = tmp_path / "run"
    assert [p.name for p in find_checkpoints(run, "ck")] == ["ck_3.json", "ck_best.json"]
    assert not list(run.glob("ck_5*")) and not list(run.glob(".*.tmp"))  # the cut write left nothing behind
    assert load_checkpoint(run / "ck_3.json").meta["iteration"] == 3


def test_training_in_another_thread_leaves_signal_handlers_alone(tmp_path):
    from rnnkit.training import TrainConfig, train

    (tmp_path / "t.txt").write_text(corpus_text()[:4000])
    before = signal.getsignal(signal.SIGTERM)
    results, errors = [], []

    def work():
        try:
            results.append(train(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "run/ck"),
                                             rnn_size=8, wordvec_size=8, num_layers=1, batch_size=2, seq_length=8,
                                             max_iters=2, progress="none", quiet=True, threads=1)))
        except BaseException as e:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(e)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert not errors and results[0].iteration == 2
    assert signal.getsignal(signal.SIGTERM) == before
