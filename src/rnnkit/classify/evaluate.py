"""After training: the best epoch's LSTM and both baselines side by side on validation and
test, into report.json, roc.png (two classes) and confusion.png."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_text
from .baseline import BagOfEvents, majority_probabilities
from .model import Batcher, EventLSTM, lstm_logits, softmax
from .plots import plot_confusion, plot_roc
from .prepare import PreparedData
from .scores import MODELS, class_scores
from .split import SPLITS


@dataclass
class Baselines:
    prior: np.ndarray  # class frequencies of the training split
    bag: BagOfEvents
    seconds: float  # fitting the bag of events


def probabilities(model: EventLSTM, baselines: Baselines, batcher: Batcher, idx: np.ndarray) -> dict[str, np.ndarray]:
    """(n, K) class probabilities of each model for the sequences idx."""
    return {"majority": majority_probabilities(baselines.prior, len(idx)),
            "bag_of_events": baselines.bag.probabilities(batcher, idx),
            "lstm": softmax(lstm_logits(model, batcher, idx))}


def score_splits(model: EventLSTM, baselines: Baselines, batcher: Batcher, data: PreparedData):
    """Probabilities and metrics per split (val, and test where there is one) and model."""
    splits = [s for s in ("val", "test") if len(data.split[s])]
    proba = {s: probabilities(model, baselines, batcher, data.split[s]) for s in splits}
    metrics = {s: {m: class_scores(data.y[data.split[s]], proba[s][m], data.classes) for m in MODELS} for s in splits}
    return proba, metrics


def write_report(folder: Path, data: PreparedData, metrics: dict, proba: dict, facts: dict) -> dict:
    """report.json (metrics, counts, class weights, history: `facts` holds the run's side), and the plots."""
    classes, y, split = data.classes, data.y, data.split
    counts = {s: {"n": len(split[s]), "per_class": np.bincount(y[split[s]], minlength=len(classes)).tolist()} for s in SPLITS}
    if len(classes) == 2:
        for s in SPLITS:
            counts[s]["positives"] = counts[s]["per_class"][1]
    report = {"classes": classes, **({"positive_class": classes[1], "threshold": 0.5} if len(classes) == 2 else {}),
              "decision": "positive iff its probability >= 0.5" if len(classes) == 2 else "the most probable class",
              **facts, "sequences": {**counts, "unlabelled_left_out": data.unlabelled}, "metrics": metrics}
    report["reading_notes"] = data.table.notes  # bad rows left out, say
    atomic_write_text(folder / "report.json", json.dumps(report, indent=1))
    if len(classes) == 2:
        plot_roc({s: y[split[s]] for s in proba}, proba, folder / "roc.png")
    plot_confusion(metrics, classes, folder / "confusion.png")
    return report
