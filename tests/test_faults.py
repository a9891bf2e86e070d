"""Numerical faults: a non-finite step is skipped and logged; repeats roll back or stop; no NaN is saved.

conftest's `poison_loss` makes the loss NaN at the iterations named, the way an overflow
would, so the gradients are NaN too.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import corpus_text, poison_loss

from rnnkit.core.checkpoint import find_checkpoints, latest_checkpoint, load_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.runs.metrics import read_metrics
from rnnkit.training import TrainConfig, Trainer, prepare_run, train


@pytest.fixture
def corpus(tmp_path):
    from rnnkit.text.corpus import preprocess

    (tmp_path / "t.txt").write_text(corpus_text()[:4000])
    preprocess(input_txt=[str(tmp_path / "t.txt")], output_h5=str(tmp_path / "c.h5"), output_json=str(tmp_path / "c.json"), quiet=True)
    return tmp_path


def config(tmp_path, run: str, **overrides) -> TrainConfig:
    options = dict(
        input_h5=str(tmp_path / "c.h5"), input_json=str(tmp_path / "c.json"), checkpoint_name=str(tmp_path / run / "ck"),
        rnn_size=16, wordvec_size=8, num_layers=1, batch_size=4, seq_length=16, checkpoint_every=0,
        progress="none", quiet=True, threads=1, device="cpu",
    )
    return TrainConfig(**{**options, **overrides})


def all_finite(run_dir) -> bool:
    return all(
        torch.isfinite(t).all()
        for p in find_checkpoints(run_dir)
        for t in load_checkpoint(p).tensors.values()
        if t.is_floating_point()
    )


def test_a_faulty_step_is_skipped_and_logged(corpus, monkeypatch):
    before = train(config(corpus, "before", max_iters=4))
    poison_loss(monkeypatch, (5,))
    faulty = train(config(corpus, "faulty", max_iters=5))
    # the update at iteration 5 never happened: weights and optimizer are those after iteration 4
    a, b = load_checkpoint(before.checkpoint).tensors, load_checkpoint(faulty.checkpoint).tensors
    for k in a:
        if k.startswith(("model.", "optim.")):
            assert torch.equal(a[k], b[k]), k
    records = read_metrics(corpus / "faulty")
    assert {"iteration": 5, "event": "nonfinite", "lr_scale": 1.0} in records
    assert not any(r.get("iteration") == 5 and "train_loss" in r for r in records)
    assert faulty.stopped == "finished" and all_finite(corpus / "faulty")


def test_repeated_faults_restore_the_last_checkpoint_with_a_lower_learning_rate(corpus, monkeypatch, capsys):
    poison_loss(monkeypatch, (11, 12, 13))
    result = train(config(corpus, "run", max_iters=20, checkpoint_every=10, learning_rate=0.004))
    records = read_metrics(corpus / "run")
    assert {"iteration": 13, "event": "restored", "checkpoint": "ck_10.json", "lr_scale": 0.5} in records
    lr_after = [r["lr"] for r in records if r.get("iteration", 0) > 13 and "lr" in r]
    assert lr_after and all(math.isclose(lr, 0.002) for lr in lr_after)
    assert result.iteration == 20 and all_finite(corpus / "run")
    assert load_checkpoint(result.checkpoint).meta["train_state"]["lr_scale"] == 0.5  # a resume keeps it
    assert "restored ck_10.json" in capsys.readouterr().err


def test_faults_before_any_checkpoint_stop_with_a_clear_message(corpus, monkeypatch):
    poison_loss(monkeypatch, (3, 4, 5))
    with pytest.raises(RnnkitError, match=r"training diverged.*lower --learning_rate"):
        train(config(corpus, "run", max_iters=20, checkpoint_every=10))
    assert find_checkpoints(corpus / "run") == []  # nothing from the diverged steps was saved


def test_faults_that_keep_coming_stop_after_a_few_recoveries(corpus, monkeypatch):
    poison_loss(monkeypatch, tuple(range(6, 61)))
    with pytest.raises(RnnkitError, match="training diverged"):
        train(config(corpus, "run", max_iters=60, checkpoint_every=5))
    records = read_metrics(corpus / "run")
    assert sum(r.get("event") == "restored" for r in records) == 3
    assert latest_checkpoint(corpus / "run").name == "ck_5.json" and all_finite(corpus / "run")


def test_non_finite_weights_are_never_saved(corpus, capsys):
    cfg = prepare_run(config(corpus, "run", max_iters=2))
    trainer = Trainer(cfg)
    with torch.no_grad():
        trainer.model.head.bias[0] = float("nan")
    assert trainer.save(val_loss=None) is None
    assert find_checkpoints(corpus / "run") == []
    assert "not finite" in capsys.readouterr().err


def test_a_non_finite_validation_loss_does_not_crash_the_checkpoint(corpus, monkeypatch):
    monkeypatch.setattr(Trainer, "evaluate", lambda self: float("inf"))
    result = train(config(corpus, "run", max_iters=3))
    meta = load_checkpoint(result.checkpoint).meta
    assert meta["iteration"] == 3 and meta["val_loss"] is None
