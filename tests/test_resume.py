"""Exact resume: a run stopped at K and resumed ends bit for bit where the same run left alone ends.

Dropout is on, so the resumed run needs the saved RNG states; K falls inside an epoch, so
it needs the carried hidden state; N is in the next epoch, past a learning-rate decay.
The controls at the end show the comparison is sharp enough to notice a lost part.
"""

from __future__ import annotations

import pytest
import torch

from conftest import shakespeare_text
from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.training import TrainConfig, resume_config, train

K, N = 23, 60  # 49 batches per epoch with the settings below


def config(tmp_path, run: str, max_iters: int, model_type: str) -> TrainConfig:
    return TrainConfig(
        input_h5=str(tmp_path / "c.h5"), input_json=str(tmp_path / "c.json"), checkpoint_name=str(tmp_path / run / "ck"),
        model_type=model_type, rnn_size=16, wordvec_size=8, num_layers=2, dropout=0.3, batch_size=4, seq_length=16,
        max_iters=max_iters, lr_decay_every=1, lr_decay_factor=0.5, checkpoint_every=0, progress="none", quiet=True,
        threads=1, seed=7, device="cpu",  # bit-identical is a CPU promise
    )


@pytest.fixture
def corpus(tmp_path):
    from rnnkit.corpus import preprocess

    (tmp_path / "t.txt").write_text(shakespeare_text()[:4000])
    preprocess(input_txt=[str(tmp_path / "t.txt")], output_h5=str(tmp_path / "c.h5"), output_json=str(tmp_path / "c.json"), quiet=True)
    return tmp_path


def final_state(result) -> dict[str, torch.Tensor]:
    """Weights and optimizer state of the last checkpoint."""
    t = load_checkpoint(result.checkpoint).tensors
    return {k: v for k, v in t.items() if k.startswith(("model.", "optim."))}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"differ: {differing}"


@pytest.mark.parametrize("model_type", ["lstm", "gru"])
def test_interrupted_run_ends_bit_identical(corpus, model_type):
    whole = train(config(corpus, "whole", N, model_type))
    part = train(config(corpus, "part", K, model_type))
    assert part.iteration == K and whole.iteration == N
    assert load_checkpoint(part.checkpoint).prefixed("hidden.")  # the carried state is saved
    resumed = train(resume_config(str(corpus / "part"), {"max_iters": N}))  # what --resume RUN_DIR does
    assert resumed.iteration == N
    assert_bit_identical(final_state(whole), final_state(resumed))
    # the training loss history carries on where it stopped, with no gap and no repeats
    from rnnkit.metrics import read_metrics

    iters = [r["iteration"] for r in read_metrics(corpus / "part") if "train_loss" in r]
    assert iters == list(range(1, N + 1))


@pytest.mark.parametrize("lose", ["hidden state", "torch rng state"])
def test_resume_without_a_saved_part_diverges(corpus, lose):
    """Control: with one part of the state replaced in the checkpoint, the weights differ."""
    whole = train(config(corpus, "whole", N, "lstm"))
    part = train(config(corpus, "part", K, "lstm"))
    ckpt = load_checkpoint(part.checkpoint)
    meta = {k: v for k, v in ckpt.meta.items() if not k.startswith(("format", "weights_"))}
    if lose == "hidden state":
        tensors = {k: v for k, v in ckpt.tensors.items() if not k.startswith("hidden.")}
    else:  # dropout masks drawn from another point of the stream
        tensors = dict(ckpt.tensors, **{"rng.torch": torch.Generator().manual_seed(1).get_state()})
    save_checkpoint(part.checkpoint, tensors, meta)
    resumed = train(resume_config(str(corpus / "part"), {"max_iters": N}))
    a, b = final_state(whole), final_state(resumed)
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("model."))
