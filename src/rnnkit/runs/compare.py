"""`rnnkit compare RUN_DIR...`: what differs between runs, and how well each one did.

Everything comes from the run folders: config.json (the flags) and metrics.jsonl (the
losses, iterations, time and speed). A folder that holds run folders (a sweep) stands
for all of them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.options import fields_where
from ..errors import InputFileError
from ..training.config import TrainConfig
from .metrics import METRICS_FILE, read_metrics

# Options that name files or change only what is printed are never "the difference" between
# runs: TrainConfig's fields declared with compared=False.
NOT_COMPARED = set(fields_where(TrainConfig, "compared", False))


@dataclass
class RunSummary:
    run_dir: Path
    name: str
    config: dict[str, Any]
    best_val_loss: float | None
    best_iteration: int | None
    iterations: int
    seconds: float  # training time, from the last record
    tokens_per_s: float | None  # median of the logged speeds after the first (warm-up) one
    val_curve: list[tuple[int, float, float]] = field(default_factory=list)  # (iteration, seconds, val_loss)

    @property
    def data(self) -> str:
        """What the run trained on: the text files its vocabulary JSON was built from (so a
        sweep's shared corpus and a run's own copy of the same text count as the same data)."""
        try:
            sources = json.loads(Path(self.config["input_json"]).read_text()).get("rnnkit_sources")
        except (KeyError, TypeError, OSError, ValueError):
            sources = None
        files = sources or self.config.get("input_txt")
        return ", ".join(files) if files else str(self.config.get("input_h5"))


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders named, or found one level below a named folder (a sweep's output)."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if (p / METRICS_FILE).is_file():
            runs.append(p)
        elif p.is_dir() and (inner := sorted(d for d in p.iterdir() if (d / METRICS_FILE).is_file())):
            runs.extend(inner)
        else:
            raise InputFileError(f"{p} is not a run folder (no {METRICS_FILE}); give folders that rnnkit train wrote")
    return runs


def summarize(run_dir: Path, name: str | None = None) -> RunSummary:
    records = read_metrics(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    val = [(r["iteration"], r.get("time", 0.0), r["val_loss"]) for r in records if r.get("val_loss") is not None]
    best = min(val, key=lambda v: v[2]) if val else None
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    return RunSummary(
        run_dir=run_dir,
        name=name or run_dir.name,
        config=config,
        best_val_loss=best[2] if best else None,
        best_iteration=best[0] if best else None,
        iterations=max((r.get("iteration", 0) for r in records), default=0),
        seconds=max((r.get("time", 0.0) for r in records), default=0.0),
        tokens_per_s=statistics.median(speeds[1:] or speeds) if speeds else None,
        val_curve=val,
    )


def compare_runs(run_dirs: list[str | Path]) -> list[RunSummary]:
    runs = find_runs(run_dirs)
    if not runs:
        raise InputFileError("give at least one run folder to compare")
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # the same folder name in several places: tell them apart by path
        names = [str(r) for r in runs]
    return [summarize(r, n) for r, n in zip(runs, names)]


def differing_options(runs: list[RunSummary]) -> list[str]:
    """Option names whose values are not the same in every run (data first, if it differs)."""
    keys = sorted({k for r in runs for k in r.config} - NOT_COMPARED)
    out = [k for k in keys if len({json.dumps(r.config.get(k), sort_keys=True) for r in runs}) > 1]
    if len({r.data for r in runs}) > 1:
        out.insert(0, "data")
    return out


def best_run(runs: list[RunSummary]) -> RunSummary | None:
    scored = [r for r in runs if r.best_val_loss is not None]
    return min(scored, key=lambda r: r.best_val_loss) if scored else None


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_table(runs: list[RunSummary]) -> str:
    """A plain-text table: run, the options that differ, best val loss (and where), iterations, time, speed."""
    options = differing_options(runs)
    best = best_run(runs)
    header = ["run", *options, "best val", "at iter", "iters", "time", "tok/s"]
    rows = []
    for r in runs:
        values = [r.data if k == "data" else r.config.get(k) for k in options]
        rows.append([
            r.name + (" *" if r is best else ""), *map(_cell, values),
            f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-",
            _cell(r.best_iteration), str(r.iterations), _duration(r.seconds),
            f"{r.tokens_per_s:,.0f}" if r.tokens_per_s is not None else "-",
        ])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = set(range(1 + len(options), len(header)))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    if best is not None:
        out.append(f"* best validation loss: {best.name}")
    return "\n".join(out)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def plot_overlay(runs: list[RunSummary], out: str | Path = "compare.png") -> Path:
    """Validation loss of every run, against iterations (left) and training time (right)."""
    from .plots import draw_overlay, save_figure

    options = differing_options(runs)
    labels = []
    for r in runs:
        diff = ", ".join(f"{k}={r.data if k == 'data' else _cell(r.config.get(k))}" for k in options)
        named = all(f"{k}=" in r.name for k in options)  # a sweep's folder names already say it
        labels.append(r.name if named or not diff else f"{r.name} ({diff})")
    curves = [[(it, t, v) for it, t, v in r.val_curve] for r in runs]
    out = Path(out)
    if not out.parent.is_dir():
        raise InputFileError(f"--out {out}: folder {out.parent} does not exist")
    return save_figure(draw_overlay(curves, labels), out)
