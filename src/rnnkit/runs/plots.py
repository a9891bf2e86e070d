"""loss.png: training and validation loss (and learning rate) against iterations.

Everything drawn comes from metrics.jsonl through `loss_series`, so the picture and the
record cannot disagree. Raw train losses are noisy, so they are drawn faintly under an
exponential average; validation losses are points joined by a line, the best one starred.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import read_metrics

Point = tuple[int, float]
SMOOTH_FROM = 30  # fewer logged train losses are drawn as they are


@dataclass
class LossSeries:
    train: list[Point] = field(default_factory=list)
    train_smoothed: list[Point] = field(default_factory=list)
    val: list[Point] = field(default_factory=list)
    lr: list[Point] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # iterations whose update was not finite
    epochs_per_iteration: float | None = None

    @property
    def best_val(self) -> Point | None:
        return min(self.val, key=lambda p: p[1]) if self.val else None


def smooth(points: list[Point], window: float) -> list[Point]:
    """Exponential average run forwards then backwards, so the curve does not lag behind the
    losses (a lagging train curve would sit above validation and hide overfitting)."""
    def one_way(pts: list[Point]) -> list[Point]:
        out: list[Point] = []
        for it, y in pts:
            if out:
                keep = math.exp(-abs(it - out[-1][0]) / window)
                y = keep * out[-1][1] + (1 - keep) * y
            out.append((it, y))
        return out

    return one_way(one_way(points)[::-1])[::-1]


def loss_series(records: list[dict[str, Any]]) -> LossSeries:
    s = LossSeries()
    for r in records:
        it = r.get("iteration")
        if it is None:
            continue
        if _finite(r.get("train_loss")):
            s.train.append((it, r["train_loss"]))
        if _finite(r.get("val_loss")):
            s.val.append((it, r["val_loss"]))
        if _finite(r.get("lr")):
            s.lr.append((it, r["lr"]))
        if r.get("event") == "nonfinite":
            s.skipped.append(it)
        if s.epochs_per_iteration is None and it > 0 and _finite(r.get("epoch")) and r["epoch"] > 0:
            s.epochs_per_iteration = r["epoch"] / it
    if len(s.train) >= SMOOTH_FROM:
        s.train_smoothed = smooth(s.train, window=max(1.0, (s.train[-1][0] - s.train[0][0]) / 100))
    return s


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def run_title(run_dir: Path) -> str:
    name = run_dir.resolve().name
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return name
    parts = [f"{cfg.get('model_type', '?')} {cfg.get('num_layers', '?')}x{cfg.get('rnn_size', '?')}",
             f"lr {cfg.get('learning_rate', '?'):g}" if isinstance(cfg.get("learning_rate"), float) else None,
             f"dropout {cfg['dropout']:g}" if cfg.get("dropout") else None,
             f"weight decay {cfg['weight_decay']:g}" if cfg.get("weight_decay") else None,
             f"batch {cfg.get('batch_size')}x{cfg.get('seq_length')}",
             f"{cfg['time_budget']:g}s budget" if cfg.get("time_budget") else None]
    return f"{name}: " + ", ".join(p for p in parts if p)


def draw_run(series: LossSeries, title: str):
    """The figure for one run (matplotlib Figure; axes[0] is the loss, axes[1] the learning rate)."""
    import matplotlib.ticker

    fig = new_figure((8, 6))
    ax, ax_lr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if series.train:
        faint = 0.3 if series.train_smoothed else 0.9
        ax.plot(*zip(*series.train), color="tab:blue", alpha=faint, linewidth=0.8, label="train (each logged batch)")
    if series.train_smoothed:
        ax.plot(*zip(*series.train_smoothed), color="tab:blue", linewidth=1.8, label="train (smoothed)")
    if series.val:
        ax.plot(*zip(*series.val), "o-", color="tab:orange", markersize=4, linewidth=1.5, label="validation")
        it, best = series.best_val
        ax.plot([it], [best], "*", color="tab:red", markersize=14, zorder=5, label=f"best validation {best:.3f} (i = {it})")
    for i, it in enumerate(series.skipped):
        ax.axvline(it, color="tab:red", linestyle=":", linewidth=1, label="skipped update (not finite)" if i == 0 else None)
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if series.epochs_per_iteration:
        k = series.epochs_per_iteration
        top = ax.secondary_xaxis("top", functions=(lambda i: i * k, lambda e: e / k))
        top.set_xlabel("epoch", fontsize=9)
    if series.lr:
        ax_lr.plot(*zip(*series.lr), color="tab:green", linewidth=1.2)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("iteration")
    ax_lr.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.2g}"))
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def new_figure(size: tuple[float, float]):
    """A Figure drawn by Agg, outside pyplot: drawing in a training run or a notebook never
    changes the caller's backend nor keeps figures open in pyplot's list."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out: Path, dpi: int = 100) -> Path:
    """Write through a temporary file so a reader never sees half a PNG."""
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    tmp.replace(out)
    return out


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """Draw RUN_DIR/metrics.jsonl into RUN_DIR/loss.png (or `out`); None when nothing is logged yet."""
    run_dir = Path(run_dir)
    series = loss_series(read_metrics(run_dir))
    if not series.train and not series.val:
        return None
    return save_figure(draw_run(series, run_title(run_dir)), Path(out) if out else run_dir / "loss.png")


def draw_overlay(curves: list[list[tuple[int, float, float]]], labels: list[str]):
    """Validation curves (iteration, seconds, loss) of several runs: by iteration, and by time."""
    ncol = 1 if len(labels) <= 3 or max(map(len, labels)) > 60 else 2
    rows = math.ceil(len(labels) / ncol)
    fig = new_figure((11, 4.4 + 0.22 * rows))
    by_iter, by_time = fig.subplots(1, 2, sharey=True)
    longest = max((c[-1][1] for c in curves if c), default=0.0)
    unit, scale = ("minutes", 60.0) if longest > 180 else ("seconds", 1.0)
    for i, (curve, label) in enumerate(zip(curves, labels)):
        if not curve:
            continue
        color = f"C{i % 10}"
        its, secs, losses = zip(*curve)
        best = losses.index(min(losses))
        label = label if len(label) <= 100 else label[:99] + "…"
        by_iter.plot(its, losses, "o-", color=color, markersize=3, linewidth=1.4, label=label)
        by_time.plot([s / scale for s in secs], losses, "o-", color=color, markersize=3, linewidth=1.4)
        by_iter.plot([its[best]], [losses[best]], "*", color=color, markersize=12)
        by_time.plot([secs[best] / scale], [losses[best]], "*", color=color, markersize=12)
    by_iter.set_xlabel("iteration")
    by_time.set_xlabel(f"training time ({unit})")
    by_iter.set_ylabel("validation loss (nats per token)")
    by_iter.set_title("validation loss by iteration", fontsize=10)
    by_time.set_title("validation loss by training time (star: best)", fontsize=10)
    for ax in (by_iter, by_time):
        ax.grid(alpha=0.3)
    legend_height = (0.22 * rows + 0.15) / fig.get_figheight()
    fig.legend(loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height, 1, 1))
    return fig


def plot_run_titled(run_dir: str | Path, title: str, loss_label: str = "loss (nats per token)",
                    out: str | Path | None = None) -> Path | None:
    """plot_run for a run whose config.json is not a language model's (the event classifier):
    the title and the loss axis's label given; None when nothing is logged yet."""
    run_dir = Path(run_dir)
    series = loss_series(read_metrics(run_dir))
    if not series.train and not series.val:
        return None
    fig = draw_run(series, title)
    fig.axes[0].set_ylabel(loss_label)
    return save_figure(fig, Path(out) if out else run_dir / "loss.png")
