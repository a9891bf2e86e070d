"""How well class probabilities match the true classes, by scikit-learn's metrics: accuracy,
macro and weighted F1, per-class precision / recall / support, the confusion matrix,
one-vs-rest macro ROC AUC, top-5 accuracy where K > 5; with two classes also PR AUC and
the 2x2 confusion by name, as rnnkit 0.1 reported them."""

from __future__ import annotations

import numpy as np
import scipy.stats
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

MODELS = {"majority": "majority class", "bag_of_events": "bag-of-events logreg", "lstm": "LSTM"}
TOP_K = 5
FULL_CONFUSION_UP_TO = 100  # classes; beyond, report.json lists the non-zero cells


def predicted_classes(proba: np.ndarray) -> np.ndarray:
    """Two classes: the positive one where its probability is >= 0.5; more: the most probable."""
    if proba.shape[1] == 2:
        return (proba[:, 1] >= 0.5).astype(np.int64)
    return proba.argmax(axis=1)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Binary ROC AUC; None where y holds one class only."""
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None


def pr_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision of the positive class; None without positives."""
    return float(average_precision_score(y, score)) if y.sum() > 0 else None


def roc_auc_ovr(y: np.ndarray, proba: np.ndarray) -> float | None:
    """Mean one-vs-rest ROC AUC over the classes this split holds (and lacks somewhere).

    Each class's AUC is the Mann-Whitney U of its column (ties count half), which is what
    roc_auc_score gives class by class; one ranking of the whole matrix instead of K calls,
    because with 1500 classes those took 8.7 s per model and split."""
    n, k = proba.shape
    counts = np.bincount(y, minlength=k)
    held = (counts > 0) & (counts < n)
    if not held.any():
        return None
    ranks = scipy.stats.rankdata(proba, axis=0)  # ties get their average rank
    rank_sums = np.bincount(y, weights=ranks[np.arange(n), y], minlength=k)[held]
    positives = counts[held]
    return float(np.mean((rank_sums - positives * (positives + 1) / 2) / (positives * (n - positives))))


def class_scores(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    k, pred = len(classes), predicted_classes(proba)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=np.arange(k), zero_division=0)
    out = {
        "n": len(y),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, average="weighted", zero_division=0)),
        "roc_auc": roc_auc(y, proba[:, 1]) if k == 2 else roc_auc_ovr(y, proba),
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion_matrix": confusion_cells(confusion_matrix(y, pred, labels=np.arange(k))),
    }
    if k > TOP_K:
        out[f"top_{TOP_K}_accuracy"] = float(top_k_accuracy_score(y, proba, k=TOP_K, labels=np.arange(k)))
    if k == 2:
        (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[0, 1]).tolist()
        out.update(positives=int(y.sum()), pr_auc=pr_auc(y, proba[:, 1]),
                   confusion={"tn": tn, "fp": fp, "fn": fn, "tp": tp})
    return out


def confusion_cells(matrix: np.ndarray) -> list[list[int]] | dict[str, list[int]]:
    """Rows: true class, columns: predicted. Many classes: only the non-zero cells."""
    if len(matrix) <= FULL_CONFUSION_UP_TO:
        return matrix.tolist()
    true, pred = np.nonzero(matrix)
    return {"true": true.tolist(), "predicted": pred.tolist(), "count": matrix[true, pred].tolist()}


def confusion_array(cells: list[list[int]] | dict[str, list[int]], k: int) -> np.ndarray:
    if isinstance(cells, list):
        return np.asarray(cells, dtype=np.int64).reshape(k, k)
    out = np.zeros((k, k), dtype=np.int64)
    out[cells["true"], cells["predicted"]] = cells["count"]
    return out
