"""Binary classification metrics: ROC AUC, PR AUC (average precision), accuracy, confusion."""

from __future__ import annotations

import numpy as np

MODELS = {"majority": "majority class", "bag_of_events": "bag-of-events logreg", "lstm": "LSTM"}


def _ranked_counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-score, kind="stable")
    y, score = y[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(y) - 1]  # ties move together
    tp = np.cumsum(y)[last]
    return tp, last + 1 - tp


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp, fp = _ranked_counts(y, score)
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    if y.min() == y.max():
        return None
    fpr, tpr = roc_curve(y, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision: precision at each threshold weighted by the recall it adds."""
    if y.max() == 0:
        return None
    tp, fp = _ranked_counts(y, score)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * tp / (tp + fp)))


def binary_metrics(y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    pred = (score >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "accuracy": float(np.mean(pred == y)),
        "roc_auc": roc_auc(y, score),
        "pr_auc": pr_auc(y, score),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }
