import math
from collections import Counter

import numpy as np
import pytest
import torch

from rnnkit.core.checkpoint import load_checkpoint
from rnnkit.errors import InputFileError
from rnnkit.text.splits import Lanes
from rnnkit.training import TrainConfig, train


def unigram_entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def test_lanes_are_contiguous_and_targets_shifted():
    data = np.arange(1, 102, dtype=np.uint8)
    lanes = Lanes(data, batch_size=4, seq_length=5)
    assert lanes.lane_length == 25 and len(lanes) == 5
    x0, y0 = lanes.batch(0)
    x1, _ = lanes.batch(1)
    assert x0[:, 0].tolist() == [1, 26, 51, 76]  # each lane starts a quarter further on
    assert torch.equal(y0, x0 + 1)
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # batch i+1 continues batch i lane by lane


def test_short_run_learns_the_corpus(tmp_path, corpus):
    text = corpus[:150_000]
    (tmp_path / "s.txt").write_text(text)
    result = train(TrainConfig(input_txt=[str(tmp_path / "s.txt")], checkpoint_name=str(tmp_path / "run/ck"),
                               max_iters=150, rnn_size=64, batch_size=16, seq_length=32, checkpoint_every=0,
                               learning_rate=5e-3, progress="none"))
    # the unigram entropy (~3.3 nats) is what a model that ignores context can reach
    assert result.best_val_loss < unigram_entropy(text) - 0.6
    assert result.iteration == 150 and result.checkpoint.name == "ck_150.json"
    print("val loss", result.best_val_loss, "unigram entropy", unigram_entropy(text))


def test_init_from_continues_saved_iteration(tmp_path, small_corpus):
    base = dict(rnn_size=16, batch_size=4, seq_length=16, checkpoint_every=5, progress="none", wordvec_size=8)
    first = train(TrainConfig(input_txt=[str(small_corpus)], checkpoint_name=str(tmp_path / "a/ck"), max_iters=10, **base))
    h5, js = str(tmp_path / "a/corpus.h5"), str(tmp_path / "a/corpus.json")
    cont = train(TrainConfig(input_h5=h5, input_json=js, checkpoint_name=str(tmp_path / "b/ck"), max_iters=15,
                             init_from=str(first.checkpoint), reset_iterations=False, **base))
    assert cont.iteration == 15
    assert sorted(p.name for p in (tmp_path / "b").glob("ck_*.safetensors")) == ["ck_15.safetensors"]
    saved = load_checkpoint(first.checkpoint)
    assert saved.meta["iteration"] == 10 and any(k.startswith("optim.") for k in saved.tensors)
    reset = train(TrainConfig(input_h5=h5, input_json=js, checkpoint_name=str(tmp_path / "c/ck"), max_iters=3,
                              init_from=str(first.checkpoint), reset_iterations=True, **base))
    assert reset.iteration == 3  # the counter restarts; the weights were carried over
    w0 = load_checkpoint(first.checkpoint).prefixed("model.")["head.weight"]
    assert not torch.equal(w0, torch.zeros_like(w0))


def test_tiny_corpus_shrinks_batch_with_notice(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("Yoga\nPilates\nZumba\nTai Chi\n" * 5)
    result = train(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "r/ck"),
                               max_iters=3, rnn_size=8, progress="none"))
    assert result.iteration == 3
    assert "using --batch_size" in capsys.readouterr().err


def test_corpus_shorter_than_one_sequence_names_the_flag(tmp_path):
    (tmp_path / "t.txt").write_text("x" * 30)
    with pytest.raises(InputFileError, match="--seq_length"):
        train(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "r/ck"), max_iters=2))


@pytest.mark.parametrize("model_type", ["gru", "rnn"])
def test_other_cells_train(tmp_path, small_corpus, model_type):
    result = train(TrainConfig(input_txt=[str(small_corpus)], checkpoint_name=str(tmp_path / "r/ck"), max_iters=5,
                               model_type=model_type, rnn_size=16, batch_size=4, seq_length=16, progress="none"))
    assert result.last_val_loss is not None and math.isfinite(result.last_val_loss)


def test_resume_follows_a_moved_run_folder(tmp_path, small_corpus):
    import shutil

    from rnnkit.training import resume_config

    train(TrainConfig(input_txt=[str(small_corpus)], checkpoint_name=str(tmp_path / "a/ck"), max_iters=6,
                      checkpoint_every=3, rnn_size=8, wordvec_size=8, batch_size=2, seq_length=8, progress="none"))
    shutil.move(tmp_path / "a", tmp_path / "b")
    cfg = resume_config(str(tmp_path / "b"), {"max_iters": 9})
    result = train(cfg)
    assert result.iteration == 9
    assert (tmp_path / "b/ck_9.json").exists() and not (tmp_path / "a").exists()
