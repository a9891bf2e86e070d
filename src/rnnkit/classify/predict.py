"""A trained classifier: load it from a run folder, predict new sequences, score a labelled file."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from ..core.device import resolve_device
from ..errors import CheckpointError, ConfigError, InputFileError
from .baseline import BagOfEvents
from .checkpoint import load_classifier_checkpoint
from .encode import Encoding
from .evaluate import Baselines, probabilities
from .events import EventTable
from .labels import encode_labels
from .model import Batcher, EventLSTM, ModelConfig
from .read import load_table, source_for
from .scores import MODELS, class_scores, predicted_classes


@dataclass
class TrainedClassifier:
    model: EventLSTM
    baselines: Baselines
    encoding: Encoding
    classes: list[str]
    max_length: int
    truncate: str
    device: torch.device
    path: Path

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "auto", gpu: int | None = None) -> TrainedClassifier:
        ckpt = load_classifier_checkpoint(checkpoint)
        meta, dev = ckpt.meta, resolve_device(device, gpu)
        try:
            model = EventLSTM(ModelConfig(**meta["model"])).to(dev)
            model.load_state_dict(ckpt.prefixed("model."))
            encoding = Encoding.from_meta(meta["data"]["encoding"])
            classes = meta["data"]["classes"]
            bag = BagOfEvents.from_tensors(ckpt.tensors, encoding.vocab_sizes, len(classes))
        except (KeyError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt.path} is an incomplete classifier checkpoint ({e}); retrain it") from None
        return cls(model, Baselines(np.asarray(meta["train"]["prior"]), bag, 0.0), encoding, classes,
                   meta["data"]["max_length"], meta["data"]["truncate"], dev, ckpt.path)

    def read(self, events: str, labels: str | None = None, buys: str | None = None, need_labels: bool = False,
             skip_bad_rows: bool = False) -> EventTable:
        src = source_for(self.encoding.schema, events, labels, buys, skip_bad_rows)
        table, _ = load_table(src, need_labels=need_labels)
        return table

    def probabilities(self, table: EventTable) -> dict[str, np.ndarray]:
        """(n, K) class probabilities of every sequence, for the LSTM and both baselines."""
        batcher = Batcher(self.encoding.encode(table), self.max_length, self.truncate, self.device)
        return probabilities(self.model, self.baselines, batcher, np.arange(len(table.sequence_ids)))


@dataclass
class Predictions:
    sequence_ids: list[str]
    probabilities: np.ndarray  # (n, K), the LSTM's
    classes: list[str]
    notes: list[str]  # what reading left out

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in predicted_classes(self.probabilities)]


def predict(checkpoint: str | Path, events: str, device: str = "auto", gpu: int | None = None,
            skip_bad_rows: bool = False) -> Predictions:
    """The LSTM's class probabilities for every sequence, in order of first appearance."""
    clf = TrainedClassifier.load(checkpoint, device, gpu)
    table = clf.read(events, skip_bad_rows=skip_bad_rows)
    return Predictions(table.sequence_ids, clf.probabilities(table)["lstm"], clf.classes, table.notes)


def write_predictions(p: Predictions, out: TextIO, top_k: int | None = None) -> None:
    """Two classes: sequence_id,score,predicted_label (score: the positive class's probability),
    as rnnkit 0.1 wrote. More: sequence_id,predicted_label,p_<class>... for every class, or with
    top_k, label_1,p_1,...,label_k,p_k (most probable first)."""
    w = csv.writer(out, lineterminator="\n")
    labels, proba = p.labels, p.probabilities
    if top_k is not None:
        k = min(top_k, len(p.classes))
        best = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        w.writerow(["sequence_id", "predicted_label"] + [f"{x}_{i}" for i in range(1, k + 1) for x in ("label", "p")])
        for sid, label, row, top in zip(p.sequence_ids, labels, proba, best):
            w.writerow([sid, label] + [v for c in top for v in (p.classes[c], f"{row[c]:.6f}")])
    elif len(p.classes) == 2:
        w.writerow(["sequence_id", "score", "predicted_label"])
        w.writerows((sid, f"{row[1]:.6f}", label) for sid, row, label in zip(p.sequence_ids, proba, labels))
    else:
        w.writerow(["sequence_id", "predicted_label"] + [f"p_{c}" for c in p.classes])
        w.writerows([sid, label, *(f"{x:.6f}" for x in row)] for sid, label, row in zip(p.sequence_ids, labels, proba))


def evaluate(checkpoint: str | Path, events: str, labels: str | None = None, buys: str | None = None,
             device: str = "auto", gpu: int | None = None, skip_bad_rows: bool = False) -> dict:
    """Metrics of the LSTM and both baselines on a labelled file (every labelled sequence in it)."""
    clf = TrainedClassifier.load(checkpoint, device, gpu)
    table = clf.read(events, labels, buys, need_labels=True, skip_bad_rows=skip_bad_rows)
    if table.labels is None:
        raise InputFileError(f"{events} has no labels; give --labels (or --buys for YOOCHOOSE)")
    y = encode_labels(table.labels, clf.classes)
    unknown = sorted({v for v, t in zip(table.labels, y) if t < 0 and v is not None})
    if unknown:
        known = ", ".join(map(repr, clf.classes[:6])) + (", ..." if len(clf.classes) > 6 else "")
        raise InputFileError(f"{events} has labels the model never saw ({', '.join(map(repr, unknown[:3]))}); "
                             f"it knows {known}")
    keep = np.flatnonzero(y >= 0)
    if not len(keep):
        raise InputFileError(f"no labels: no sequence in {events} has a label")
    table, y = table.subset(keep), y[keep]
    proba = clf.probabilities(table)
    return {"checkpoint": str(clf.path), "classes": clf.classes, "notes": table.notes,
            "metrics": {"eval": {m: class_scores(y, proba[m], clf.classes) for m in MODELS}},
            "y": y, "probabilities": proba}


def check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top_k must be a positive whole number, got {top_k}")
