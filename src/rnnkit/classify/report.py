"""What a run shows: the side-by-side metrics table and the ROC plot."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_bytes
from .metrics import MODELS, roc_auc, roc_curve


def fmt_score(x: float | None) -> str:
    return f"{x:8.3f}" if x is not None else "     n/a"


def format_metrics(metrics: dict[str, dict[str, dict]], classes: list[str]) -> str:
    """The side-by-side table, then the LSTM's confusion matrix per split."""
    lines = [f"{'split':<6} {'model':<22} {'accuracy':>8} {'ROC AUC':>8} {'PR AUC':>8}   n (positive)"]
    for split, models in metrics.items():
        for name, m in models.items():
            lines.append(
                f"{split:<6} {MODELS[name]:<22} {fmt_score(m['accuracy'])} {fmt_score(m['roc_auc'])} {fmt_score(m['pr_auc'])}"
                f"   {m['n']} ({m['positives']})"
            )
    width = max(8, *(len(c) + 5 for c in classes))
    for split, models in metrics.items():
        c = models["lstm"]["confusion"]
        lines += [
            "",
            f"LSTM confusion on {split} (rows: true class, columns: predicted; positive = {classes[1]!r}):",
            " " * width + "".join(f"{'pred ' + k:>{width}}" for k in classes),
            f"{'true ' + classes[0]:<{width}}{c['tn']:>{width}}{c['fp']:>{width}}",
            f"{'true ' + classes[1]:<{width}}{c['fn']:>{width}}{c['tp']:>{width}}",
        ]
    return "\n".join(lines)


def plot_roc(y_by_split: dict[str, np.ndarray], scores: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """One panel per split, the three models' ROC curves in each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splits = [s for s in y_by_split if roc_auc(y_by_split[s], scores[s]["lstm"]) is not None]
    if not splits:
        return
    fig = Figure(figsize=(5.2 * len(splits), 4.8))
    FigureCanvasAgg(fig)
    style = {"lstm": dict(color="C0", lw=2), "bag_of_events": dict(color="C1", lw=1.6),
             "majority": dict(color="gray", lw=1, ls="--")}
    titles = {"val": "validation", "test": "test", "eval": "evaluation"}
    for k, split in enumerate(splits):
        ax = fig.add_subplot(1, len(splits), k + 1)
        y = y_by_split[split]
        for name in ("lstm", "bag_of_events", "majority"):
            fpr, tpr = roc_curve(y, scores[split][name])
            ax.plot(fpr, tpr, label=f"{MODELS[name]} (AUC {roc_auc(y, scores[split][name]):.3f})", **style[name])
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate", ylabel="true positive rate",
               title=f"ROC, {titles.get(split, split)} (n={len(y)}, {int(y.sum())} positive)")
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
