"""torchrun with 2 CPU processes (gloo): the same training as 1 process with twice the batch.

Each rank takes B of the 2B lanes and DDP averages the gradients, so the loss curve of
`torchrun --nproc_per_node 2 ... --batch_size B` must follow that of one process with
--batch_size 2B up to float summation order. Tolerance: 1e-4 relative.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import poison_loss, run_cli

from rnnkit.runs.metrics import read_metrics
from rnnkit.training import TrainConfig, resume_config, train

B = 4  # lanes per rank
TOLERANCE = 1e-4
MODEL = dict(rnn_size=32, wordvec_size=16, num_layers=2, seq_length=32, dropout=0.0, seed=7, threads=1)
FLAGS = [x for k, v in MODEL.items() for x in (f"--{k}", str(v))]


def torchrun(nproc: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "rnnkit", "train", *args, "--progress", "none", "--print_every", "1"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=240, env=env)


def curve(run_dir: Path, key: str, iterations: range) -> list[float]:
    by_iter = {r["iteration"]: r[key] for r in read_metrics(run_dir) if key in r}
    return [by_iter[i] for i in iterations]


def assert_close(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert abs(x - y) <= TOLERANCE * abs(y), f"entry {i}: {x} vs {y}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus):
    """One process with 2B lanes to iteration 30; two ranks with B lanes to 20, then resumed to 30."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "small.txt").write_text(corpus[:100_000], encoding="utf-8")
    common = dict(input_txt=[str(root / "small.txt")], checkpoint_every=10, print_every=1, progress="none", **MODEL)
    train(TrainConfig(checkpoint_name=str(root / "one/ck"), batch_size=2 * B, max_iters=30, **common))
    first = torchrun(2, "small.txt", "--checkpoint_name", "two/ck", "--batch_size", str(B), "--max_iters", "20",
                     "--checkpoint_every", "10", *FLAGS, cwd=root)
    assert first.returncode == 0, first.stderr[-3000:]
    for copy in ("two_at_20", "half"):  # for the resumes with one process
        shutil.copytree(root / "two", root / copy)
    resumed = torchrun(2, "--resume", "two", "--max_iters", "30", cwd=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return root, first, resumed


def test_two_ranks_follow_the_one_process_curve(runs):
    root, first, _ = runs
    assert_close(curve(root / "two", "train_loss", range(1, 21)), curve(root / "one", "train_loss", range(1, 21)))
    assert_close(curve(root / "two", "val_loss", range(10, 21, 10)), curve(root / "one", "val_loss", range(10, 21, 10)))
    assert first.stderr.count("done: 20 iterations") == 1  # only rank 0 reports


def test_resume_with_the_same_ranks_continues_exactly(runs):
    root, _, resumed = runs
    # the carried hidden state of all 2B lanes and each rank's RNG went through the checkpoint
    assert_close(curve(root / "two", "train_loss", range(21, 31)), curve(root / "one", "train_loss", range(21, 31)))
    assert_close(curve(root / "two", "val_loss", [30]), curve(root / "one", "val_loss", [30]))
    assert "note:" not in resumed.stderr


def test_checkpoint_samples_in_one_process(runs):
    root, _, _ = runs
    out = run_cli("sample", "--checkpoint", root / "two", "--length", "80", "--seed", "1", "--start_text", "ROMEO:")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ROMEO:") and len(out.stdout.rstrip("\n")) >= 80


def test_resume_with_another_number_of_ranks(runs, capsys):
    root, _, _ = runs
    # one process with all 2B lanes: the same lanes, so the hidden state carries and the curve continues
    same = train(resume_config(str(root / "two_at_20/ck_20.json"),
                               {"checkpoint_name": str(root / "two_at_20/ck"), "batch_size": 2 * B, "max_iters": 25}))
    assert same.iteration == 25
    assert "hidden state carried over" in capsys.readouterr().err
    assert_close(curve(root / "two_at_20", "train_loss", range(21, 26)), curve(root / "one", "train_loss", range(21, 26)))
    # one process keeping --batch_size B: other lanes, so they start from a zero state
    half = train(resume_config(str(root / "half/ck_20.json"), {"checkpoint_name": str(root / "half/ck"), "max_iters": 23}))
    assert half.iteration == 23 and half.last_val_loss is not None
    assert "hidden state reset" in capsys.readouterr().err


# ---- the GPU / multi-rank loop, run on the CPU: the loss is read only when logging ----------
SMALL = dict(rnn_size=16, wordvec_size=8, num_layers=1, batch_size=4, seq_length=16, print_every=5,
             checkpoint_every=10, max_iters=20, progress="none", quiet=True, threads=1)


def small_run(tmp_path: Path, corpus: Path, name: str, **overrides):
    cfg = TrainConfig(input_txt=[str(corpus)], checkpoint_name=str(tmp_path / name / "ck"), **{**SMALL, **overrides})
    return train(cfg), read_metrics(tmp_path / name)


@pytest.fixture
def deferred(monkeypatch):
    import rnnkit.training.trainer

    monkeypatch.setattr(rnnkit.training.trainer, "SYNC_EACH_STEP", ())


def weights(result) -> dict:
    from rnnkit.core.checkpoint import load_checkpoint

    return {k: v for k, v in load_checkpoint(result.checkpoint).tensors.items() if k.startswith(("model.", "optim."))}


def test_deferred_reads_keep_the_curve_and_skip_the_same_faulty_update(tmp_path, small_corpus, monkeypatch):
    poison_loss(monkeypatch, (7,))
    each_step, each_records = small_run(tmp_path, small_corpus, "each")
    import rnnkit.training.trainer

    monkeypatch.setattr(rnnkit.training.trainer, "SYNC_EACH_STEP", ())
    deferred, deferred_records = small_run(tmp_path, small_corpus, "deferred")
    losses = lambda records: [(r["iteration"], r.get("train_loss"), r.get("val_loss")) for r in records if "event" not in r]  # noqa: E731
    assert losses(deferred_records) == losses(each_records)
    a, b = weights(each_step), weights(deferred)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the update of iteration 7 was skipped on the device
    assert {"iteration": 7, "event": "nonfinite", "lr_scale": 1.0} in each_records
    assert {"iteration": 10, "event": "nonfinite", "lr_scale": 1.0} in deferred_records  # read at the next log


def test_deferred_reads_count_faults_in_a_row_and_recover(tmp_path, small_corpus, deferred, capsys, monkeypatch):
    poison_loss(monkeypatch, (12, 13, 14))
    result, records = small_run(tmp_path, small_corpus, "run")
    assert {"iteration": 15, "event": "nonfinite", "lr_scale": 1.0, "count": 3} in records
    assert {"iteration": 15, "event": "restored", "checkpoint": "ck_10.json", "lr_scale": 0.5} in records
    assert result.iteration == 20 and "3 times up to iteration 15" in capsys.readouterr().err


def test_the_gradient_scaler_branch_skips_a_nan_loss_on_the_device(tmp_path, small_corpus, monkeypatch):
    """The branch a GPU with mixed precision takes, run here with PyTorch's CPU GradScaler."""
    from rnnkit.training import Trainer, prepare_run

    poison_loss(monkeypatch, (3,))
    cfg = prepare_run(TrainConfig(input_txt=[str(small_corpus)], checkpoint_name=str(tmp_path / "run/ck"),
                                  **{**SMALL, "max_iters": 5}))
    trainer = Trainer(cfg)
    stepper = trainer.stepper
    stepper.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    changed = []
    for i in range(5):
        before = trainer.model.head.weight.clone()
        trainer.state.iteration += 1
        stepper.step(*trainer.data.train.batch(i), lr=2e-3)
        changed.append(not torch.equal(before, trainer.model.head.weight))
    assert changed == [True, True, False, True, True]
    assert int(stepper.skipped) == 1 and stepper.scaler.get_scale() == 2.0**15  # counted once; the scale backed off
