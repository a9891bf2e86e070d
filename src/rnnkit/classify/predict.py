"""A trained classifier: load it from a run folder, score new events, evaluate on labelled ones."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, InputFileError
from .baseline import BagOfEvents
from .config import pick_device
from .encode import Encoding
from .events import EventTable
from .labels import encode_labels
from .metrics import MODELS, binary_metrics
from .model import Batcher, EventLSTM, ModelConfig, lstm_logits, sigmoid
from .read import load_table, source_for
from .run_dir import load_classifier_checkpoint


@dataclass
class TrainedClassifier:
    model: EventLSTM
    bag: BagOfEvents
    encoding: Encoding
    classes: list[str]
    prior: float
    max_length: int
    truncate: str
    device: torch.device
    path: Path

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "auto") -> "TrainedClassifier":
        ckpt = load_classifier_checkpoint(checkpoint)
        meta, dev = ckpt.meta, pick_device(device)
        try:
            model = EventLSTM(ModelConfig(**meta["model"])).to(dev)
            model.load_state_dict(ckpt.prefixed("model."))
            encoding = Encoding.from_meta(meta["data"]["encoding"])
            bag = BagOfEvents(encoding.vocab_sizes, len(encoding.schema.numeric_cols))
            bag.load_state_dict(ckpt.prefixed("bag."))
        except (KeyError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt.path} is an incomplete classifier checkpoint ({e}); retrain it") from None
        return cls(model, bag, encoding, meta["data"]["classes"], meta["train"]["prior"],
                   meta["data"]["max_length"], meta["data"]["truncate"], dev, ckpt.path)

    def read(self, events: str, labels: str | None = None, buys: str | None = None,
             need_labels: bool = False) -> EventTable:
        table, _ = load_table(source_for(self.encoding.schema, events, labels, buys), need_labels=need_labels)
        return table

    def scores(self, table: EventTable) -> dict[str, np.ndarray]:
        """Positive-class scores of every sequence, for the LSTM and both baselines."""
        batcher = Batcher(self.encoding.encode(table), self.max_length, self.truncate, self.device)
        idx = np.arange(len(table.sequence_ids))
        return {"majority": np.full(len(idx), self.prior),
                "bag_of_events": self.bag.scores(batcher, idx),
                "lstm": sigmoid(lstm_logits(self.model, batcher, idx))}


def predict(checkpoint: str | Path, events: str, device: str = "auto") -> list[tuple[str, float, str]]:
    """(sequence id, positive-class score, predicted label) per sequence, in file order."""
    clf = TrainedClassifier.load(checkpoint, device)
    table = clf.read(events)
    scores = clf.scores(table)["lstm"]
    return [(sid, float(s), clf.classes[int(s >= 0.5)]) for sid, s in zip(table.sequence_ids, scores)]


def write_predictions(rows: list[tuple[str, float, str]], out) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["sequence_id", "score", "predicted_label"])
    w.writerows((sid, f"{score:.6f}", label) for sid, score, label in rows)


def evaluate(checkpoint: str | Path, events: str, labels: str | None = None, buys: str | None = None,
             device: str = "auto") -> dict:
    """Metrics of the LSTM and both baselines on a labelled file (every sequence in it)."""
    clf = TrainedClassifier.load(checkpoint, device)
    table = clf.read(events, labels, buys, need_labels=True)
    if table.labels is None:
        raise InputFileError(f"{events} has no labels; give --labels (or --buys for YOOCHOOSE)")
    y = encode_labels(table.labels, clf.classes)
    unknown = sorted({v for v, t in zip(table.labels, y) if t < 0 and v is not None})
    if unknown:
        raise InputFileError(f"{events} has labels the model never saw ({', '.join(map(repr, unknown[:3]))}); "
                             f"it knows {clf.classes[0]!r} and {clf.classes[1]!r}")
    keep = np.flatnonzero(y >= 0)
    if not len(keep):
        raise InputFileError(f"no labels: no sequence in {events} has a label")
    table, y = table.subset(keep), y[keep]
    scores = clf.scores(table)
    return {"checkpoint": str(clf.path), "classes": clf.classes,
            "metrics": {"eval": {m: binary_metrics(y, scores[m]) for m in MODELS}},
            "y": y, "scores": scores}
