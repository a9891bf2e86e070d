"""Crash safety, through the real CLI: SIGKILL at random moments never leaves a checkpoint that
cannot be loaded, `--resume` carries on after each kill, and Ctrl-C saves and exits cleanly.

The kill chain runs each `rnnkit train` in a child forked from one server that has already
imported torch and matplotlib: the child runs the CLI exactly as `python -m rnnkit` does,
and twelve runs cost one import instead of twelve.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import corpus_text

from rnnkit.core.checkpoint import (
    checkpoint_iteration,
    latest_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
)
from rnnkit.model.language_model import model_from_checkpoint
from rnnkit.runs.metrics import read_metrics

ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
# small enough to be quick, big enough (1.3 MB of weights and Adam state) that a write takes a while
FLAGS = ("--rnn_size", "128", "--wordvec_size", "32", "--num_layers", "1", "--batch_size", "4", "--seq_length", "16",
         "--dropout", "0.2", "--checkpoint_every", "3", "--progress", "none", "--quiet", "--threads", "1",
         "--device", "cpu")  # bit-identical resumes are a CPU promise
KILLS = 10
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork() and POSIX signals")

FORK_SERVER = r"""
import json, os, runpy, sys, traceback
import matplotlib.pyplot, rnnkit.cli.parser, rnnkit.training.trainer  # what every run imports
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(job["cwd"])
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        sys.argv = ["rnnkit", *job["argv"]]
        code = 1
        try:
            runpy.run_module("rnnkit", run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Runs:
    """Starts `rnnkit ARGS` one at a time (forked from the server); kill them by pid."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], env=ENV, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def start(self, *argv: str) -> int:
        job = {"argv": list(argv), "cwd": str(self.cwd), "stderr": str(self.cwd / "stderr.txt")}
        self.server.stdin.write(json.dumps(job) + "\n")
        self.server.stdin.flush()
        return int(self.server.stdout.readline())

    def wait(self) -> int:
        line = self.server.stdout.readline()
        assert line, "the fork server died"
        return int(line)

    def alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)  # the server reaps its children at once, so a dead one is gone
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=60)


def wait_until(condition, timeout: float = 120.0, alive=lambda: True) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        assert alive(), "rnnkit exited early"
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def latest_iteration(run: Path) -> int:
    found = latest_checkpoint(run, "ck") if run.is_dir() else None
    return checkpoint_iteration(found) if found else 0


def final_tensors(json_path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(json_path).tensors.items() if k.startswith(("model.", "optim."))}


@posix_only
def test_sigkill_at_random_moments_loses_nothing_but_the_last_steps(tmp_path):
    (tmp_path / "text.txt").write_text(corpus_text()[:20_000])
    run = tmp_path / "run"
    runs = Runs(tmp_path)
    rng = random.Random()  # random moments; a failure reports the moments used
    moments, cut_writes = [], 0
    try:
        for kill in range(KILLS):
            before = latest_iteration(run)
            pid = runs.start("train", "text.txt", "--checkpoint_name", "run/ck", *FLAGS) if kill == 0 else runs.start("train", "--resume", "run")
            alive = lambda: runs.alive(pid)  # noqa: E731
            assert wait_until(lambda: latest_iteration(run) > before, alive=alive), "no progress"
            if kill % 2:  # every other kill lands inside a checkpoint write, if the poll catches one
                writing = wait_until(lambda: any(run.glob(".ck_*.tmp")), timeout=3, alive=alive)
                moments.append("mid-write" if writing else "no write seen")
            else:
                moments.append(round(rng.uniform(0.0, 0.4), 2))
                time.sleep(moments[-1])
            cut_writes += any(run.glob(".ck_*.tmp"))
            os.kill(pid, signal.SIGKILL)  # no handler, no cleanup: as the OOM killer or a power cut
            assert runs.wait() == -signal.SIGKILL
            latest = latest_checkpoint(run, "ck")
            ckpt = load_checkpoint(latest)  # verifies the checksum
            model_from_checkpoint(ckpt)
            load_checkpoint(resolve_checkpoint(run))  # what `rnnkit sample --checkpoint run` loads: the best
            assert ckpt.meta["iteration"] == checkpoint_iteration(latest) >= before, (kill, moments)
        print(f"{KILLS} kills at {moments}; {cut_writes} cut a checkpoint write short")

        # the chain of resumes ends exactly where one uninterrupted run ends (checkpoints and
        # evaluations do not disturb training, so both save only at the end, to be quick)
        end = latest_iteration(run) + 4
        runs.start("train", "--resume", "run", "--max_iters", str(end), "--checkpoint_every", "0")
        assert runs.wait() == 0, (tmp_path / "stderr.txt").read_text()
        assert not list(run.glob(".ck_*.tmp")), "half-written checkpoint files are cleaned up on resume"
        runs.start("train", "text.txt", "--checkpoint_name", "whole/ck", *FLAGS, "--max_iters", str(end), "--checkpoint_every", "0")
        assert runs.wait() == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        runs.close()
    a, b = final_tensors(run / f"ck_{end}.json"), final_tensors(tmp_path / f"whole/ck_{end}.json")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def signal_training(tmp_path: Path, signum: int) -> tuple[int, str]:
    """Start a plain `python -m rnnkit train` process, as a terminal runs it, into tmp_path/run;
    send it `signum` a few iterations in; return its exit code and stderr."""
    (tmp_path / "text.txt").write_text(corpus_text()[:20_000])
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "text.txt", "--checkpoint_name", "run/ck", *FLAGS,
                             "--checkpoint_every", "1000"], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = tmp_path / "run" / "metrics.jsonl"
    started = wait_until(lambda: metrics.exists() and any(r.get("iteration", 0) >= 5 for r in read_metrics(metrics)),
                         alive=lambda: proc.poll() is None)
    assert started, "training did not start"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@posix_only
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    code, err = signal_training(tmp_path, signal.SIGINT)
    assert code == 130, err  # the shell's code for "stopped by Ctrl-C"
    assert "Traceback" not in err
    assert f"continue with: rnnkit train --resume {Path('run')}" in err
    run = tmp_path / "run"
    trained = max(r["iteration"] for r in read_metrics(run) if "train_loss" in r)
    latest = latest_checkpoint(run, "ck")
    assert checkpoint_iteration(latest) == trained  # saved where it stopped: no step lost
    assert load_checkpoint(latest).meta["iteration"] == trained


@pytest.mark.parametrize("dies", ["writing the weights", "before the new JSON"])
def test_a_crash_while_replacing_a_checkpoint_leaves_a_loadable_one(tmp_path, monkeypatch, dies):
    """A resumed run may write ck_5 again. Dying mid-way leaves the old ck_5 whole, or no ck_5 at
    all (the folder falls back to ck_3): never the old JSON vouching for new weights."""
    from rnnkit.core import atomic, checkpoint

    for it in (3, 5):
        checkpoint.save_checkpoint(tmp_path / f"ck_{it}.json", {"w": torch.zeros(4)}, {"iteration": it})

    def die(*args):
        raise KeyboardInterrupt

    if dies == "writing the weights":
        monkeypatch.setattr(atomic.os, "fsync", die)
    else:
        monkeypatch.setattr(checkpoint, "atomic_write_text", die)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(tmp_path / "ck_5.json", {"w": torch.ones(4)}, {"iteration": 5})
    monkeypatch.undo()
    latest = latest_checkpoint(tmp_path, "ck")
    loaded = load_checkpoint(latest)
    if dies == "writing the weights":
        assert latest.name == "ck_5.json" and torch.equal(loaded.tensors["w"], torch.zeros(4))
    else:
        assert latest.name == "ck_3.json" and loaded.meta["iteration"] == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_force_clears_the_earlier_run_so_resume_finds_the_new_one(tmp_path):
    from rnnkit.training import TrainConfig, train

    (tmp_path / "t.txt").write_text(corpus_text()[:4000])
    base = dict(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "run/ck"), rnn_size=8, wordvec_size=8,
                num_layers=1, batch_size=2, seq_length=8, progress="none", quiet=True, threads=1)
    train(TrainConfig(**base, max_iters=6, checkpoint_every=3))
    train(TrainConfig(**base, max_iters=2, checkpoint_every=0, force=True))
    assert sorted(p.name for p in (tmp_path / "run").glob("ck_*.json")) == ["ck_2.json", "ck_best.json"]
    assert sorted(p.name for p in (tmp_path / "run").glob("ck_*.safetensors")) == ["ck_2.safetensors"]
