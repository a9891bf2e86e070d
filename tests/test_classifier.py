"""The event-sequence classifier: loaders, split, truncation, the order-only signal, save/load/predict."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.classify.config import TrainConfig
from rnnkit.classify.encode import UNKNOWN_ID, Encoding, truncated_spans
from rnnkit.classify.events import EventSource
from rnnkit.classify.metrics import binary_metrics, pr_auc, roc_auc
from rnnkit.classify.model import Batcher
from rnnkit.classify.predict import TrainedClassifier, predict
from rnnkit.classify.read import load_table
from rnnkit.classify.split import split_sequences
from rnnkit.classify.synth import (
    synth_sequences,
    write_synth_csv,
    write_synth_yoochoose,
)
from rnnkit.classify.train import train_classifier
from rnnkit.core.checkpoint import load_checkpoint
from rnnkit.errors import ConfigError, InputFileError, OutputExistsError, RnnkitError

TINY = dict(embedding_size=8, rnn_size=32, batch_size=32, learning_rate=1e-2, val_frac=0.2, test_frac=0.2)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def synth_source(path: Path, n: int = 400, seed: int = 0) -> EventSource:
    write_synth_csv(path, synth_sequences(n, seed=seed, min_events=4, max_events=12), seed=seed)
    return EventSource(str(path), sequence_col="session_id", order_col="timestamp")


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", "classify", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small LSTM on the order-only synthetic set, shared by the tests below."""
    folder = tmp_path_factory.mktemp("trained")
    source = synth_source(folder / "events.csv")
    cfg = TrainConfig(source, run_dir=str(folder / "run"), max_epochs=12, quiet=True, **TINY)
    return train_classifier(cfg, log=lambda *_: None), source


# ---- loaders -------------------------------------------------------------------------------
def test_generic_loader_orders_groups_and_infers_fields(tmp_path):
    path = write_csv(tmp_path / "e.csv", ["sid", "t", "page", "price", "label"], [
        ["b", "3", "home", "1.5", "0"],
        ["a", "2", "cart", "", "1"],
        ["a", "1", "home", "2", "1"],
        ["b", "10", "search", "0.5", "0"],  # 10 > 3: order is numeric, not text
        ["a", "5", "buy", "7", "1"],
    ])
    table, schema = load_table(EventSource(str(path), sequence_col="sid", order_col="t"))
    assert schema.categorical_cols == ["page"] and schema.numeric_cols == ["price"] and schema.label_col == "label"
    assert table.sequence_ids == ["b", "a"] and table.labels == ["0", "1"]
    assert table.categorical["page"] == ["home", "search", "home", "cart", "buy"]
    assert np.isnan(table.numeric["price"][3]) and table.numeric["price"][4] == 7.0
    assert table.offsets.tolist() == [0, 2, 5]

    enc = Encoding.fit(table, schema, np.array([0]), max_vocab=10)  # fit on sequence "b" only
    encoded = enc.encode(table)
    assert encoded.categorical[3, 0] == UNKNOWN_ID  # "cart" never seen in training
    assert encoded.numeric[3, 0] == 0.0  # missing -> the mean


def test_labels_from_a_separate_file(tmp_path):
    events = write_csv(tmp_path / "e.csv", ["sid", "kind"], [["x", "p"], ["y", "q"], ["z", "p"]])
    labels = write_csv(tmp_path / "l.csv", ["sid", "outcome"], [["x", "churn"], ["y", "stay"], ["nobody", "stay"]])
    table, _ = load_table(EventSource(str(events), labels=str(labels), sequence_col="sid"))
    assert table.labels == ["churn", "stay", None]  # z has no label; "nobody" has no events


def test_loader_errors_name_the_problem(tmp_path):
    path = write_csv(tmp_path / "e.csv", ["sid", "t", "kind", "label"], [["a", "1", "x", "0"]])
    with pytest.raises(InputFileError, match=r"no column 'session'.*sid, t, kind, label"):
        load_table(EventSource(str(path), sequence_col="session"))
    with pytest.raises(InputFileError, match="no such events file"):
        load_table(EventSource(str(tmp_path / "missing.csv"), sequence_col="sid"))
    nolabel = write_csv(tmp_path / "n.csv", ["sid", "kind"], [["a", "x"]])
    with pytest.raises(InputFileError, match="no labels"):
        load_table(EventSource(str(nolabel), sequence_col="sid"))


def test_yoochoose_loader_on_generated_fixture(tmp_path):
    seqs = synth_sequences(60, seed=3, min_events=3, max_events=8)
    clicks, buys = tmp_path / "yoochoose-clicks.dat", tmp_path / "yoochoose-buys.dat"
    write_synth_yoochoose(clicks, buys, seqs, seed=3)
    first = clicks.read_text().splitlines()[0].split(",")
    assert len(first) == 4 and first[1].endswith("Z") and "T" in first[1]  # session,timestamp,item,category
    assert all(len(line.split(",")) == 5 for line in buys.read_text().splitlines())

    table, schema = load_table(EventSource(str(clicks), format="yoochoose", buys=str(buys)))
    assert schema.categorical_cols == ["item", "category"] and table.sequence_ids[:3] == ["1", "2", "3"]
    assert table.labels == [str(s.label) for s in seqs]
    assert table.lengths.tolist() == [len(s.events) for s in seqs]
    gaps = table.numeric["log_seconds_since_previous"]
    assert (gaps[table.offsets[:-1]] == 0).all() and (gaps >= 0).all()


# ---- split and truncation ------------------------------------------------------------------
def test_split_never_leaks_a_sequence_and_is_seeded():
    ids = [f"s{i}" for i in range(200)]
    y = np.array([i % 4 == 0 for i in range(200)], dtype=np.int64)
    a = split_sequences(ids, y, 0.15, 0.15, seed=7)
    sets = [set(a[s].tolist()) for s in ("train", "val", "test")]
    assert sum(map(len, sets)) == 200 and set.union(*sets) == set(range(200))
    assert all(y[a[s]].min() == 0 and y[a[s]].max() == 1 for s in a)  # stratified: both classes everywhere
    b = split_sequences(ids, y, 0.15, 0.15, seed=7)
    assert all((a[s] == b[s]).all() for s in a)
    perm = np.random.default_rng(0).permutation(200)  # same ids in another file order: same split by id
    c = split_sequences([ids[i] for i in perm], y[perm], 0.15, 0.15, seed=7)
    assert {ids[perm[i]] for i in c["test"]} == {ids[i] for i in a["test"]}
    assert set(split_sequences(ids, y, 0.15, 0.15, seed=8)["test"].tolist()) != sets[2]
    with pytest.raises(RnnkitError, match="too few sequences"):
        split_sequences(ids[:6], np.array([0, 0, 0, 0, 1, 1]), 0.15, 0.15, seed=0)


def test_truncation_keeps_the_documented_end():
    offsets = np.array([0, 5, 7])
    starts, lengths = truncated_spans(offsets, 3, "keep_last")
    assert starts.tolist() == [2, 5] and lengths.tolist() == [3, 2]
    starts, lengths = truncated_spans(offsets, 3, "keep_first")
    assert starts.tolist() == [0, 5] and lengths.tolist() == [3, 2]


def test_batches_are_padded_and_lengths_packed(tmp_path):
    table, schema = load_table(synth_source(tmp_path / "e.csv", n=20))
    enc = Encoding.fit(table, schema, np.arange(20), 100).encode(table)
    cat, num, lengths = Batcher(enc, 5, "keep_last", torch.device("cpu"))(np.array([0, 1]))
    assert lengths.tolist() == [min(5, n) for n in table.lengths[:2]]
    last = enc.categorical[table.offsets[1] - 1]  # sequence 0's last event is kept
    assert (cat[0, lengths[0] - 1] == torch.from_numpy(last)).all()
    assert (cat[1, lengths[1]:] == 0).all() and (num[1, lengths[1]:] == 0).all()


def test_metrics_on_known_cases():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert pr_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx((1 + 2 / 3) / 2)
    assert roc_auc(y, np.full(4, 0.3)) == pytest.approx(0.5)
    m = binary_metrics(y, np.array([0.1, 0.6, 0.7, 0.2]))
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1} and m["accuracy"] == 0.5
    assert roc_auc(np.zeros(3, dtype=np.int64), np.arange(3.0)) is None


# ---- training ------------------------------------------------------------------------------
def test_lstm_beats_bag_of_events_on_order_only_signal(trained):
    result, _ = trained
    test = result.report["metrics"]["test"]
    assert test["lstm"]["roc_auc"] >= 0.9
    assert test["bag_of_events"]["roc_auc"] <= 0.7
    assert test["lstm"]["roc_auc"] - test["bag_of_events"]["roc_auc"] >= 0.25
    assert test["majority"]["roc_auc"] == pytest.approx(0.5)
    for name in ("report.json", "split.json", "roc.png", "classifier_best.json", "classifier_12.json"):
        assert (result.run_dir / name).is_file()


def test_class_weights_are_balanced_and_reported(trained):
    result, _ = trained
    train = result.report["sequences"]["train"]
    n, pos = train["n"], train["positives"]
    weights = result.report["class_weights"]
    assert weights["mode"] == "auto"
    assert weights["1"] == pytest.approx(n / (2 * pos)) and weights["0"] == pytest.approx(n / (2 * (n - pos)))


def test_saved_split_matches_and_does_not_leak(trained):
    result, _ = trained
    saved = json.loads((result.run_dir / "split.json").read_text())
    assert saved["seed"] == 0 and all(saved[s] == result.split_ids[s] for s in ("train", "val", "test"))
    assert not (set(saved["train"]) & set(saved["val"]) or set(saved["train"]) & set(saved["test"])
                or set(saved["val"]) & set(saved["test"]))


def test_save_load_predict_round_trip(trained):
    result, source = trained
    rows = {sid: score for sid, score, _ in predict(result.run_dir, source.events, device="cpu")}
    reloaded = np.array([rows[sid] for sid in result.split_ids["test"]])
    np.testing.assert_allclose(reloaded, result.scores["test"]["lstm"], atol=1e-6)
    clf = TrainedClassifier.load(result.run_dir, device="cpu")
    assert clf.classes == ["0", "1"] and load_checkpoint(result.run_dir).meta["kind"] == "classifier"


def test_init_from_continues_from_the_saved_epoch(tmp_path):
    source = synth_source(tmp_path / "e.csv", n=120)
    first = TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=2, quiet=True, **TINY)
    train_classifier(first, log=lambda *_: None)
    with pytest.raises(OutputExistsError):
        train_classifier(first, log=lambda *_: None)
    before = load_checkpoint(tmp_path / "run" / "classifier_2.json")
    steps = before.tensors["optim.0.step"].item()
    more = TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=3, quiet=True,
                       init_from=str(tmp_path / "run"), batch_size=32)
    result = train_classifier(more, log=lambda *_: None)
    after = load_checkpoint(tmp_path / "run" / "classifier_3.json")
    assert after.meta["epoch"] == 3 and [h["epoch"] for h in after.meta["train"]["history"]] == [1, 2, 3]
    assert after.tensors["optim.0.step"].item() == pytest.approx(steps * 1.5)  # Adam state carried on
    assert after.meta["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-2)  # the saved learning rate
    saved = json.loads((tmp_path / "run" / "split.json").read_text())
    assert all(result.split_ids[s] == saved[s] for s in ("train", "val", "test"))
    with pytest.raises(ConfigError, match="differs from the checkpoint"):
        train_classifier(TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=4, rnn_size=8,
                                     init_from=str(tmp_path / "run")), log=lambda *_: None)
    with pytest.raises(ConfigError, match="already trained 3 epochs"):
        train_classifier(TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=3,
                                     init_from=str(tmp_path / "run")), log=lambda *_: None)


def test_yoochoose_trains_end_to_end(tmp_path):
    clicks, buys = tmp_path / "c.dat", tmp_path / "b.dat"
    write_synth_yoochoose(clicks, buys, synth_sequences(80, seed=1, min_events=3, max_events=8), seed=1)
    source = EventSource(str(clicks), format="yoochoose", buys=str(buys))
    result = train_classifier(TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=1, quiet=True, **TINY),
                              log=lambda *_: None)
    assert result.report["metrics"]["test"]["lstm"]["n"] == result.report["sequences"]["test"]["n"]
    rows = predict(result.run_dir, str(clicks), device="cpu")  # no buys needed to predict
    assert len(rows) == 80 and {label for _, _, label in rows} <= {"0", "1"}


# ---- the command line ------------------------------------------------------------------------
def test_cli_synth_train_predict_eval(tmp_path):
    r = run_cli("synth", "--out", "ev.csv", "--sequences", "150", "--max_events", "10", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--events", "ev.csv", "--sequence_col", "session_id", "--order-col", "timestamp",
                "-max_epochs", "2", "--rnn_size", "16", "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bag-of-events logreg" in r.stdout and "majority class" in r.stdout and "LSTM" in r.stdout
    r = run_cli("predict", "--checkpoint", "runs/classifier", "--events", "ev.csv", "--out", "p.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "sequence_id,score,predicted_label" and len(lines) == 151
    r = run_cli("eval", "--checkpoint", "runs/classifier", "--events", "ev.csv", cwd=tmp_path)
    assert r.returncode == 0 and "ROC AUC" in r.stdout, r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--events", "ev.csv", "--sequence_col", "sess"], "no column 'sess'"),
    (["train", "--events", "nope.csv", "--sequence_col", "session_id"], "no such events file"),
    (["train", "--events", "ev.csv", "--sequence_col", "session_id", "--val_frac", "0.9"], "--val_frac"),
    (["predict", "--checkpoint", "nowhere", "--events", "ev.csv"], "no such checkpoint"),
])
def test_cli_user_errors_exit_2_with_one_line(tmp_path, args, message):
    write_csv(tmp_path / "ev.csv", ["session_id", "event", "label"], [["1", "A", "0"], ["2", "B", "1"]])
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
