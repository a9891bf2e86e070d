"""The event-sequence classifier: loaders, split, truncation, the order-only signal, save/load/predict."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from rnnkit.classify import csv_head
from rnnkit.classify.config import TrainConfig
from rnnkit.classify.encode import UNKNOWN_ID, Encoding, truncated_spans
from rnnkit.classify.events import EventSource
from rnnkit.classify.group import group_rows
from rnnkit.classify.labels import encode_labels, find_classes
from rnnkit.classify.model import Batcher, class_weights_for
from rnnkit.classify.predict import TrainedClassifier, predict
from rnnkit.classify.read import load_table
from rnnkit.classify.scores import class_scores, pr_auc, roc_auc, roc_auc_ovr
from rnnkit.classify.split import split_sequences
from rnnkit.classify.synth import (
    synth_k_sequences,
    synth_sequences,
    write_synth_csv,
    write_synth_yoochoose,
)
from rnnkit.classify.train import train_classifier
from rnnkit.core.checkpoint import latest_checkpoint, load_checkpoint
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
    assert table.categorical["page"].tolist() == ["home", "search", "home", "cart", "buy"]
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
    score = np.array([0.1, 0.6, 0.7, 0.2])
    m = class_scores(y, np.column_stack([1 - score, score]), ["0", "1"])
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
    for name in ("report.json", "split.json", "roc.png", "confusion.png", "classifier_best.json", "metrics.jsonl",
                 "loss.png", "config.json"):
        assert (result.run_dir / name).is_file()
    assert load_checkpoint(latest_checkpoint(result.run_dir)).meta["epoch"] == 12


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
    p = predict(result.run_dir, source.events, device="cpu")
    rows = dict(zip(p.sequence_ids, p.probabilities[:, 1]))
    reloaded = np.array([rows[sid] for sid in result.split_ids["test"]])
    np.testing.assert_allclose(reloaded, result.probabilities["test"]["lstm"][:, 1], atol=1e-6)
    clf = TrainedClassifier.load(result.run_dir, device="cpu")
    assert clf.classes == ["0", "1"] and load_checkpoint(result.run_dir).meta["kind"] == "classifier"


def test_init_from_continues_from_the_saved_epoch(tmp_path):
    source = synth_source(tmp_path / "e.csv", n=120)
    first = TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=2, quiet=True, **TINY)
    train_classifier(first, log=lambda *_: None)
    with pytest.raises(OutputExistsError):
        train_classifier(first, log=lambda *_: None)
    before = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert before.meta["epoch"] == 2
    steps = before.tensors["optim.0.step"].item()
    more = TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=3, quiet=True,
                       init_from=str(tmp_path / "run"), batch_size=32)
    result = train_classifier(more, log=lambda *_: None)
    after = load_checkpoint(latest_checkpoint(tmp_path / "run"))
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
    p = predict(result.run_dir, str(clicks), device="cpu")  # no buys needed to predict
    assert len(p.sequence_ids) == 80 and set(p.labels) <= {"0", "1"}


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


# ---- K classes -------------------------------------------------------------------------------
def test_classes_of_any_text_or_number():
    assert find_classes(["stay", "churn", "upgrade", None, "stay"]) == ["churn", "stay", "upgrade"]
    assert find_classes(["10", "2", "1", "2"]) == ["1", "2", "10"]  # whole numbers sort as numbers
    assert find_classes(["yes", "no", "no"]) == ["no", "yes"]  # two classes: [negative, positive] as before
    assert find_classes(["b", "a", "a"]) == ["a", "b"]  # the rarer class is positive
    with pytest.raises(ConfigError, match="--positive_label is for two classes"):
        find_classes(["a", "b", "c"], positive="a")
    assert encode_labels(["upgrade", None, "nope", "churn"], ["churn", "stay", "upgrade"]).tolist() == [2, -1, -1, 0]


def test_k_class_split_is_stratified_and_rare_classes_train_only():
    ids = [f"s{i}" for i in range(300)]
    y = np.array([i % 3 for i in range(298)] + [3, 3])  # class 3: two sequences
    split = split_sequences(ids, y, 0.2, 0.2, seed=1)
    for s in ("val", "test"):
        assert set(y[split[s]].tolist()) == {0, 1, 2}
    assert set(y[split["train"]].tolist()) == {0, 1, 2, 3}
    assert sum(len(v) for v in split.values()) == 300


def test_k_class_scores_and_weights():
    y = np.array([0, 1, 2, 2, 1, 0, 2, 2])
    proba = np.eye(3)[[0, 1, 2, 1, 1, 2, 2, 2]] * 0.7 + 0.1
    m = class_scores(y, proba, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(6 / 8) and m["per_class"]["c"]["support"] == 4
    assert m["per_class"]["c"]["recall"] == pytest.approx(3 / 4) and m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 2, 0], [0, 1, 3]]
    assert 0 < m["macro_f1"] < 1 and 0.5 < m["roc_auc"] <= 1 and "top_5_accuracy" not in m
    seven = class_scores(np.arange(7), np.full((7, 7), 1 / 7), [str(i) for i in range(7)])
    assert "top_5_accuracy" in seven and seven["roc_auc"] == pytest.approx(0.5)
    rng = np.random.default_rng(5)  # one ranking of the matrix equals roc_auc_score class by class, ties too
    y, proba = rng.integers(0, 6, 300), rng.integers(0, 9, (300, 6)) / 8
    per_class = [roc_auc_score(y == c, proba[:, c]) for c in range(6)]
    assert roc_auc_ovr(y, proba) == pytest.approx(np.mean(per_class), abs=1e-12)
    weights = class_weights_for(np.array([0, 0, 0, 1, 2, 2]), "auto", 4)
    np.testing.assert_allclose(weights, [6 / 12, 6 / 4, 6 / 8, 0.0])


def test_k_class_synth_is_order_only():
    seqs = synth_k_sequences(200, 5, seed=2)
    assert {s.label for s in seqs} == {"A", "B", "C", "D", "E"}
    for s in seqs:
        signals = [e for e in s.events if e in "ABCDE"]
        assert sorted(signals) == list("ABCDE") and signals[0] == s.label  # each once; the first is the label
    with pytest.raises(ConfigError, match="--min_events"):
        synth_k_sequences(10, 8, min_events=5)


def test_k_class_round_trip_train_predict_eval(tmp_path):
    r = run_cli("synth", "--out", "k.csv", "--classes", "4", "--sequences", "240", "--seed", "3", cwd=tmp_path)
    assert r.returncode == 0 and "which of the events A, B, C, D comes first" in r.stdout, r.stderr
    r = run_cli("train", "--events", "k.csv", "--sequence_col", "session_id", "--order_col", "timestamp",
                "--max_epochs", "2", "--rnn_size", "16", "--gpu", "-1", "--checkpoint_name", "out/clf", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "4 classes" in r.stdout and "macro F1" in r.stdout and "LSTM per class on test" in r.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["classes"] == ["A", "B", "C", "D"]
    lstm = report["metrics"]["test"]["lstm"]
    assert len(lstm["confusion_matrix"]) == 4 and set(lstm["per_class"]) == {"A", "B", "C", "D"}
    assert {"accuracy", "macro_f1", "weighted_f1", "roc_auc"} <= set(lstm)
    for name in ("clf_best.json", "confusion.png", "loss.png", "metrics.jsonl", "split.json", "config.json"):
        assert (tmp_path / "out" / name).is_file(), name
    assert not (tmp_path / "out" / "roc.png").exists()  # ROC curves are drawn for two classes

    r = run_cli("predict", "--checkpoint", "out", "--events", "k.csv", "--out", "p.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader((tmp_path / "p.csv").open()))
    assert rows[0] == ["sequence_id", "predicted_label", "p_A", "p_B", "p_C", "p_D"] and len(rows) == 241
    for row in rows[1:]:
        p = np.array(row[2:], dtype=float)
        assert p.sum() == pytest.approx(1, abs=1e-5) and row[1] == "ABCD"[int(p.argmax())]
    r = run_cli("predict", "--checkpoint", "out", "--events", "k.csv", "--top_k", "2", cwd=tmp_path)
    top = list(csv.reader(r.stdout.splitlines()))
    assert top[0] == ["sequence_id", "predicted_label", "label_1", "p_1", "label_2", "p_2"]
    assert all(t[1] == t[2] and float(t[3]) >= float(t[5]) for t in top[1:])
    r = run_cli("eval", "--checkpoint", "out", "--events", "k.csv", "--report", "e.json", cwd=tmp_path)
    assert r.returncode == 0 and "bag-of-events logreg" in r.stdout and "LSTM per class on eval" in r.stdout, r.stderr
    assert json.loads((tmp_path / "e.json").read_text())["metrics"]["eval"]["lstm"]["n"] == 240


def test_string_labels_train_and_predict(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(90):
        label = ("churn", "stay", "upgrade")[s % 3]
        rows += [[f"user-{s}", t, ("open", "pay", "quit")[(s + t) % 3], label] for t in range(3 + s % 4)]
    path = write_csv(tmp_path / "e.csv", ["user", "t", "action", "outcome"], [rows[i] for i in rng.permutation(len(rows))])
    source = EventSource(str(path), sequence_col="user", order_col="t", label_col="outcome")
    result = train_classifier(TrainConfig(source, run_dir=str(tmp_path / "run"), max_epochs=1, quiet=True, **TINY),
                              log=lambda *_: None)
    assert result.report["classes"] == ["churn", "stay", "upgrade"]
    p = predict(result.run_dir, str(path), device="cpu")
    assert set(p.labels) <= {"churn", "stay", "upgrade"} and p.probabilities.shape == (90, 3)


# ---- the generic reader: typed columns in blocks, bad rows -----------------------------------------
HEADER = ["sid", "t", "kind", "value", "label"]


def test_group_rows_matches_a_stable_lexsort():
    rng = np.random.default_rng(4)
    seq = rng.integers(0, 50, 2000).astype(np.int32)
    for key in (None, np.sort(rng.random(2000)), rng.integers(0, 5, 2000).astype(float)):
        perm, offsets = group_rows(seq, 50, key)
        expected = np.lexsort((key, seq)) if key is not None else np.argsort(seq, kind="stable")
        assert perm.tolist() == expected.tolist()
        assert offsets.tolist() == [0, *np.cumsum(np.bincount(seq, minlength=50)).tolist()]
    assert group_rows(np.sort(seq), 50, None)[0] is None  # already grouped: no permutation


def test_reader_matches_pythons_csv_on_odd_text(tmp_path):
    """Quotes, a line break inside quotes, spaces, a BOM, NA and blank lines read as csv.reader does."""
    text = ('\ufeffsid,t,kind,value,label\r\n"a", 2 ,"multi\nline",NA,x\r\n\r\n'
            'b,1, home ,1.5,y\n a ,1,"q,uoted", 2 ,x\nb,3,home,,y\n')
    path = tmp_path / "e.csv"
    path.write_text(text, encoding="utf-8")
    table, schema = load_table(EventSource(str(path), sequence_col="sid", order_col="t"))
    assert schema.numeric_cols == ["value"] and schema.categorical_cols == ["kind"]
    assert table.sequence_ids == ["a", "b"] and table.labels == ["x", "y"]
    assert table.categorical["kind"].tolist() == ["q,uoted", "multi\nline", "home", "home"]
    np.testing.assert_array_equal(table.numeric["value"], [2.0, np.nan, 1.5, np.nan])


def test_ids_and_orders_of_every_kind(tmp_path):
    rows = [["7", "2014-04-07T10:00:02Z", "x", "0"], ["12", "2014-04-07T09:00:00Z", "y", "1"],
            ["7", "2014-04-07T10:00:01Z", "z", "0"]]
    path = write_csv(tmp_path / "e.csv", ["sid", "when", "kind", "label"], rows)
    table, _ = load_table(EventSource(str(path), sequence_col="sid", order_col="when"))
    assert table.sequence_ids == ["7", "12"] and table.categorical["kind"].tolist() == ["z", "x", "y"]
    path = write_csv(tmp_path / "f.csv", ["sid", "kind", "label"], [["007", "x", "0"], ["7", "y", "1"]])
    table, _ = load_table(EventSource(str(path), sequence_col="sid"))
    assert table.sequence_ids == ["007", "7"]  # ids that do not read back as the same number stay text


def test_fast_and_checked_reads_agree(tmp_path, monkeypatch):
    """A value pyarrow's converter refuses (' 2.5') sends the read down the checked path: same table."""
    rows = [[f"s{i % 7}", str(i), "abc"[i % 3], f"{i / 4}", str(i % 7 % 2)] for i in range(60)]
    plain = write_csv(tmp_path / "plain.csv", HEADER, rows)
    rows[40][3] = f" {rows[40][3]} "
    spaced = write_csv(tmp_path / "spaced.csv", HEADER, rows)
    monkeypatch.setattr(csv_head, "BLOCK", 256)  # several blocks
    monkeypatch.setattr(csv_head, "SAMPLE", 256)
    a, _ = load_table(EventSource(str(plain), sequence_col="sid", order_col="t"))
    b, _ = load_table(EventSource(str(spaced), sequence_col="sid", order_col="t"))
    assert a.sequence_ids == b.sequence_ids and a.offsets.tolist() == b.offsets.tolist() and a.labels == b.labels
    assert a.categorical["kind"].tolist() == b.categorical["kind"].tolist()
    np.testing.assert_array_equal(a.numeric["value"], b.numeric["value"])


GOOD_ROWS = [["a", "1", "x", "0.5", "0"], ["b", "2", "y", "1.5", "1"], ["a", "3", "y", "2.5", "0"], ["b", "4", "x", "3", "1"]]
BAD_ROWS = {  # row -> the start of its one-line message (the row is line 6: header, 4 good rows, then it)
    "wrong number of fields": (["a", "5", "x"], "line 6 has 3 fields but the header has 5"),
    "no sequence id": (["", "5", "x", "1", "0"], "line 6: column 'sid' is empty; every event needs one"),
    "no order value": (["a", "", "x", "1", "0"], "line 6: column 't' is empty; every event needs one"),
    "not a number": (["a", "5", "x", "abc", "0"], "line 6: column 'value' holds 'abc', not a number"),
    "label changes": (["a", "5", "x", "1", "1"], "line 6: sequence a changes its label in column 'label' from '0' to '1'"),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_each_bad_row_is_named_or_skipped(tmp_path, monkeypatch, kind):
    bad, message = BAD_ROWS[kind]
    path = write_csv(tmp_path / "e.csv", HEADER, GOOD_ROWS + [bad] + [["c", "6", "x", "1", "1"]])
    monkeypatch.setattr(csv_head, "SAMPLE", 64)  # 'value' holds numbers in the rows sampled, as in a large file
    monkeypatch.setattr(csv_head, "BLOCK", 64)
    source = EventSource(str(path), sequence_col="sid", order_col="t")
    with pytest.raises(InputFileError) as e:
        load_table(source)
    assert str(e.value).startswith(f"{path} {message}") and str(e.value).endswith("pass --skip_bad_rows to leave such rows out")
    assert "\n" not in str(e.value)
    source.skip_bad_rows = True
    table, _ = load_table(source)
    assert table.sequence_ids == ["a", "b", "c"] and table.lengths.tolist() == [2, 2, 1]
    assert table.numeric["value"].tolist() == [0.5, 2.5, 1.5, 3.0, 1.0] and table.labels == ["0", "1", "1"]
    assert len(table.notes) == 1 and table.notes[0].startswith(f"left out 1 bad rows of {path}")


def test_bad_row_lines_count_quoted_line_breaks_and_blank_lines(tmp_path):
    text = 'sid,t,kind,label\na,1,"two\nlines",0\n\nb,2,x,1\n,3,x,1\n'
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(InputFileError, match=r"e.csv line 6: column 'sid' is empty"):
        load_table(EventSource(str(path), sequence_col="sid", order_col="t"))


def test_cli_skip_bad_rows_reports_a_count(tmp_path):
    rows = [[str(s), str(t), "ab"[(s + t) % 2], str(s % 2)] for s in range(40) for t in range(4)]
    write_csv(tmp_path / "e.csv", ["sid", "t", "kind", "label"], rows + [["", "1", "a", "0"], ["3", "9", "a"]])
    args = ("train", "--events", "e.csv", "--sequence_col", "sid", "--order_col", "t", "--max_epochs", "1",
            "--rnn_size", "8", "--device", "cpu")
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and "line 163 has 3 fields but the header has 4" in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()  # nothing written
    r = run_cli(*args, "--skip_bad_rows", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "left out 2 bad rows of e.csv (1 wrong number of fields, 1 rows with no sequence id)" in r.stdout


# ---- one interface with rnnkit train: flags, run folder, Ctrl-C ------------------------------------
def test_cli_train_flags_time_budget_and_resume(tmp_path):
    synth_source(tmp_path / "ev.csv", n=300)
    common = ("--events", "ev.csv", "--sequence_col", "session_id", "--order_col", "timestamp", "--rnn_size", "8")
    r = run_cli("train", *common, "--checkpoint_name", "cv/clf", "--time_budget", "2s", "--max_epochs", "1000",
                "--gpu", "-1", "--print_every", "1", "--batch_size", "16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "cv" / "report.json").read_text())
    assert report["stopped"] == "time_budget" and report["seconds"]["lstm"] < 30
    records = [json.loads(line) for line in (tmp_path / "cv" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["iteration"] == 1 and "train_loss" in records[0] and any("val_loss" in x for x in records)
    assert (tmp_path / "cv" / "loss.png").is_file() and "Epoch " in r.stdout  # torch-rnn's progress lines
    first = load_checkpoint(latest_checkpoint(tmp_path / "cv")).meta
    r = run_cli("train", "--resume", "cv", "--time_budget", "4s", cwd=tmp_path)
    assert r.returncode == 0 and "continuing from" in r.stdout, r.stderr
    after = load_checkpoint(latest_checkpoint(tmp_path / "cv")).meta
    assert after["iteration"] > first["iteration"] and after["options"]["batch_size"] == 16  # its own flags
    r = run_cli("train", *common, "--checkpoint_name", "cv/clf", cwd=tmp_path)
    assert r.returncode == 2 and "--resume cv" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--checkpoint_name", "a/clf", "--run_dir", "b"], "is not in --run_dir b"),
    (["--device", "tpu"], "--device 'tpu' is unknown"),
    (["--resume", "nowhere"], "nowhere"),
    (["--time_budget", "soon"], "--time_budget 'soon'"),
])
def test_cli_train_flag_mistakes_exit_2(tmp_path, args, message):
    write_csv(tmp_path / "ev.csv", ["session_id", "event", "label"], [["1", "A", "0"], ["2", "B", "1"]])
    r = run_cli("train", "--events", "ev.csv", "--sequence_col", "session_id", *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_cli_gpu_flag_without_a_gpu(tmp_path):
    synth_source(tmp_path / "ev.csv", n=60)
    r = run_cli("train", "--events", "ev.csv", "--sequence_col", "session_id", "--gpu", "0", cwd=tmp_path)
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_stop_signal_saves_a_checkpoint_and_resume_continues(tmp_path, sig, code, said):
    synth_source(tmp_path / "ev.csv", n=3000)
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "classify", "train", "--events", "ev.csv", "--sequence_col",
                             "session_id", "--order_col", "timestamp", "--rnn_size", "32", "--batch_size", "8",
                             "--max_epochs", "100", "--device", "cpu"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 240
    while not (tmp_path / "runs" / "classifier" / "metrics.jsonl").is_file() or \
            not (tmp_path / "runs" / "classifier" / "metrics.jsonl").read_text():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    assert f"{said}: saved runs/classifier/classifier_" in err and "--resume runs/classifier" in err
    assert "Traceback" not in err
    saved = load_checkpoint(latest_checkpoint(tmp_path / "runs" / "classifier"))
    assert saved.meta["train"]["epoch_batches"] > 0 and saved.meta["val_loss"] is None  # mid-epoch, as it stood
    assert not (tmp_path / "runs" / "classifier" / "report.json").exists()
    r = run_cli("train", "--resume", "runs/classifier", "--max_epochs", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    done = load_checkpoint(latest_checkpoint(tmp_path / "runs" / "classifier")).meta
    train_n = len(json.loads((tmp_path / "runs" / "classifier" / "split.json").read_text())["train"])
    assert done["epoch"] == 1 and done["iteration"] == -(-train_n // 8) > saved.meta["iteration"]  # the rest of epoch 1
    assert [h["epoch"] for h in done["train"]["history"]] == [1]
    logged = [json.loads(x)["iteration"] for x in (tmp_path / "runs" / "classifier" / "metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(logged) and (tmp_path / "runs" / "classifier" / "report.json").is_file()
