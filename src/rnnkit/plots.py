"""loss.png: training and validation loss (and learning rate) against iterations."""

from __future__ import annotations

from pathlib import Path

from .metrics import read_metrics


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    train = [(r["iteration"], r["train_loss"]) for r in records if "train_loss" in r]
    val = [(r["iteration"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    lrs = [(r["iteration"], r["lr"]) for r in records if "lr" in r]
    if not train and not val:
        return None
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue", alpha=0.8, linewidth=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss", color="tab:orange")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(f"{run_dir.name or run_dir.resolve().name}: loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if lrs:
        ax_lr.plot(*zip(*lrs), color="tab:green")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("iteration")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out) if out else run_dir / "loss.png"
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
