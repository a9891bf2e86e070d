"""rnnkit 0.1's binary classifier checkpoints (git 7bf44b5 to 4e2d9dc: a one-output sigmoid head
and a torch bag-of-events): predict and eval read them and give the probabilities 0.1 gave;
continuing their training is refused in one line."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.classify.encode import Encoding
from rnnkit.classify.events import EventSource, ranges
from rnnkit.classify.model import Batcher, EventLSTM, ModelConfig, lstm_logits
from rnnkit.classify.predict import TrainedClassifier
from rnnkit.classify.read import load_table
from rnnkit.cli import main
from rnnkit.core.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.errors import CheckpointError

MAX_LENGTH, PRIOR = 6, 0.3  # sequences of up to 10 events: some are truncated


def write_events(path: Path, categorical: list[str] | None, n: int = 40, seed: int = 0) -> EventSource:
    """Two categorical fields (the baseline averages over them) and a numeric one."""
    rng = np.random.default_rng(seed)
    rows = [(sid, t, rng.choice(list("ABCD")), rng.choice(["home", "cart", "help"]), round(float(rng.normal()), 3),
             sid % 2) for sid in range(1, n + 1) for t in range(int(rng.integers(2, 11)))]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("sid", "t", "event", "page", "value", "label"), *rows])
    return EventSource(str(path), sequence_col="sid", order_col="t", categorical_cols=categorical)


def old_bag_probability(bag: dict[str, torch.Tensor], batcher: Batcher, idx: np.ndarray) -> np.ndarray:
    """0.1's BagOfEvents.inputs and forward, then sigmoid (git show 4e2d9dc:src/rnnkit/classify/baseline.py)."""
    lengths = batcher.lengths[idx]
    rows = torch.from_numpy(ranges(batcher.starts[idx], lengths))
    n_cols = batcher.cat.shape[1]
    flat = (batcher.cat[rows].long() + bag["bag.column_offsets"][:n_cols]).reshape(-1)
    bag_offsets = torch.from_numpy((np.cumsum(lengths) - lengths) * n_cols)
    segment = torch.from_numpy(np.repeat(np.arange(len(idx)), lengths))
    num_sum = torch.zeros(len(idx), batcher.num.shape[1]).index_add_(0, segment, batcher.num[rows])
    length = torch.from_numpy(lengths).float()[:, None]
    dense = torch.cat([num_sum / length, torch.log1p(length)], dim=1)
    logit = F.linear(dense, bag["bag.dense.weight"], bag["bag.dense.bias"]).squeeze(-1)
    if flat.numel():  # no categorical fields: numeric means and length only
        logit = logit + F.embedding_bag(flat, bag["bag.values.weight"], bag_offsets, mode="mean").squeeze(-1)
    return torch.sigmoid(logit).double().numpy()


@pytest.fixture(params=[None, []], ids=["two_fields", "no_categorical_field"])
def old_run(tmp_path, request):
    """A 0.1 run folder (its key names, shapes and JSON as 4e2d9dc's train.py wrote them) and the
    probabilities 0.1 gave for its events: sigmoid of the one logit, of the bag, and the prior."""
    source = write_events(tmp_path / "events.csv", categorical=request.param)
    table, schema = load_table(source, need_labels=True)
    encoding = Encoding.fit(table, schema, np.arange(len(table.sequence_ids)), max_vocab=50_000)
    torch.manual_seed(0)
    model_cfg = ModelConfig(encoding.vocab_sizes, len(schema.numeric_cols), embedding_size=4, rnn_size=8, num_classes=1)
    old_lstm = EventLSTM(model_cfg)  # embeddings, lstm and a head of one output: 0.1's module names and shapes
    vocab = encoding.vocab_sizes
    bag = {"bag.column_offsets": torch.tensor([0, *np.cumsum(vocab)[:-1]], dtype=torch.long),
           "bag.values.weight": torch.randn(max(1, sum(vocab)), 1),  # 0.1 kept one row where there was no field
           "bag.dense.weight": torch.randn(1, len(schema.numeric_cols) + 1),
           "bag.dense.bias": torch.randn(1)}
    meta = {
        "kind": "classifier", "epoch": 3, "model": {k: v for k, v in asdict(model_cfg).items() if k != "num_classes"},
        "data": {"encoding": encoding.to_meta(), "classes": ["0", "1"], "max_length": MAX_LENGTH, "truncate": "keep_last",
                 "max_vocab": 50_000},
        "split": {"seed": 0, "val_frac": 0.15, "test_frac": 0.15, "rule": "", "file": "split.json", "counts": {}},
        "train": {"options": {"batch_size": 64, "learning_rate": 0.002, "grad_clip": 5.0, "class_weights": "auto",
                              "max_epochs": 3, "seed": 0},
                  "class_weights": [1.0, 1.0], "prior": PRIOR, "history": [], "best_val_loss": 0.6, "best_epoch": 3},
        "optimizer": {"param_groups": [], "scalars": {}},
    }
    run = tmp_path / "run"
    run.mkdir()
    tensors = {**{f"model.{k}": v for k, v in old_lstm.state_dict().items()}, **bag}
    weights = save_checkpoint(run / "classifier_3.json", tensors, meta).with_suffix(".safetensors")
    save_checkpoint(run / "classifier_best.json", tensors, meta, weights_path=weights)
    batcher = Batcher(encoding.encode(table), MAX_LENGTH, "keep_last", torch.device("cpu"))
    idx = np.arange(len(table.sequence_ids))
    expected = {"lstm": torch.sigmoid(torch.from_numpy(lstm_logits(old_lstm, batcher, idx)[:, 0])).double().numpy(),
                "bag_of_events": old_bag_probability(bag, batcher, idx), "majority": np.full(len(idx), PRIOR)}
    return run, source, table.sequence_ids, expected


def test_a_0_1_checkpoint_predicts_what_0_1_predicted(old_run):
    run, source, _, expected = old_run
    clf = TrainedClassifier.load(run, device="cpu")
    proba = clf.probabilities(clf.read(source.events))
    assert clf.classes == ["0", "1"] and clf.max_length == MAX_LENGTH and clf.encoding.schema.numeric_cols == ["value"]
    assert clf.encoding.schema.categorical_cols in (["event", "page"], [])
    for name, positive in expected.items():
        assert proba[name].shape == (len(positive), 2), name
        np.testing.assert_allclose(proba[name][:, 1], positive, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(proba[name].sum(axis=1), 1.0, atol=1e-9, err_msg=name)
    assert not np.allclose(expected["lstm"], expected["lstm"][0])  # the weights, not a constant, decide


def test_cli_predict_and_eval_read_a_0_1_run(old_run, tmp_path, capsys):
    run, source, ids, expected = old_run
    out = tmp_path / "p.csv"
    assert main(["classify", "predict", "--checkpoint", str(run), "--events", source.events, "--out", str(out),
                 "--device", "cpu"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["sequence_id", "score", "predicted_label"]  # the columns 0.1 wrote
    scores = {sid: float(score) for sid, score, _ in rows[1:]}
    np.testing.assert_allclose([scores[sid] for sid in ids], expected["lstm"], atol=2e-6)
    assert all(label == ("1" if float(score) >= 0.5 else "0") for _, score, label in rows[1:])
    assert main(["classify", "eval", "--checkpoint", str(run), "--events", source.events]) == 0
    assert "ROC AUC" in capsys.readouterr().out


@pytest.mark.parametrize("how", [["--resume", "{run}"], ["--events", "{events}", "--sequence_col", "sid",
                                                          "--init_from", "{run}", "--max_epochs", "5"]])
def test_continuing_a_0_1_run_is_refused_in_one_line(old_run, capsys, how):
    run, source, _, _ = old_run
    argv = [a.format(run=run, events=source.events) for a in how]
    assert main(["classify", "train", *argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "is a classifier of rnnkit 0.1: predict and eval read it" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == ["classifier_3.json", "classifier_3.safetensors",
                                                    "classifier_best.json"]  # nothing written


def test_an_incomplete_0_1_checkpoint_is_named(old_run):
    run, _, _, _ = old_run
    ckpt = load_checkpoint(run / "classifier_3.json")
    del ckpt.tensors["bag.dense.bias"]
    save_checkpoint(run / "classifier_3.json", ckpt.tensors, ckpt.meta)
    (run / "classifier_best.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete rnnkit 0.1 classifier checkpoint"):
        TrainedClassifier.load(run, device="cpu")
