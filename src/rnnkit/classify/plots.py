"""The run's pictures: roc.png (two classes: the three models' ROC curves per split) and
confusion.png (the LSTM's confusion matrix per split, each row as shares of its true class)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from ..core.atomic import atomic_write_bytes
from .scores import MODELS, confusion_array, roc_auc

TITLES = {"val": "validation", "test": "test", "eval": "evaluation"}
LABEL_CLASSES_UP_TO = 20  # tick labels and counts in the cells


def _figure(panels: int, width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * panels, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def plot_roc(y_by_split: dict[str, np.ndarray], proba: dict[str, dict[str, np.ndarray]], path: Path) -> bool:
    """Two classes only; False where no split holds both."""
    splits = [s for s in y_by_split if roc_auc(y_by_split[s], proba[s]["lstm"][:, 1]) is not None]
    if not splits:
        return False
    fig = _figure(len(splits), 5.2, 4.8)
    style = {"lstm": dict(color="C0", lw=2), "bag_of_events": dict(color="C1", lw=1.6),
             "majority": dict(color="gray", lw=1, ls="--")}
    for k, split in enumerate(splits):
        ax = fig.add_subplot(1, len(splits), k + 1)
        y = y_by_split[split]
        for name in ("lstm", "bag_of_events", "majority"):
            score = proba[split][name][:, 1]
            fpr, tpr, _ = roc_curve(y, score)
            ax.plot(fpr, tpr, label=f"{MODELS[name]} (AUC {roc_auc(y, score):.3f})", **style[name])
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate", ylabel="true positive rate",
               title=f"ROC, {TITLES.get(split, split)} (n={len(y)}, {int(y.sum())} positive)")
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    _save(fig, path)
    return True


def plot_confusion(metrics: dict[str, dict[str, dict]], classes: list[str], path: Path) -> None:
    k = len(classes)
    fig = _figure(len(metrics), 5.6 if k <= LABEL_CLASSES_UP_TO else 6.4, 5.2)
    for n, (split, models) in enumerate(metrics.items()):
        counts = confusion_array(models["lstm"]["confusion_matrix"], k)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax = fig.add_subplot(1, len(metrics), n + 1)
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        if k <= LABEL_CLASSES_UP_TO:
            ax.set_xticks(range(k), classes, rotation=90 if max(map(len, classes)) > 3 else 0, fontsize=8)
            ax.set_yticks(range(k), classes, fontsize=8)
            for i, j in zip(*np.nonzero(counts)):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.5 else "black")
        ax.set(xlabel="predicted class", ylabel="true class",
               title=f"LSTM, {TITLES.get(split, split)} (accuracy {models['lstm']['accuracy']:.3f})")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    _save(fig, path)
