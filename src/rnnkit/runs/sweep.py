"""`rnnkit sweep`: train every combination of some flag values, one run after another.

A comma list (`--dropout 0,0.25 --learning_rate 1e-3,2e-3`) makes a grid axis; each point
of the grid trains into its own run folder named after its values
(OUT_DIR/dropout=0.25,learning_rate=0.001/). The text is preprocessed once into OUT_DIR
and every run reads the same HDF5 + JSON. At the end the runs are compared side by side.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..core.checkpoint import latest_checkpoint
from ..errors import ConfigError, OutputExistsError, RnnkitError
from .compare import RunSummary, best_run, compare_runs, format_table, plot_overlay

MAX_RUNS = 100  # a typo like --seed 1,2,...,500 should not start a week of training


@dataclass
class SweepPoint:
    name: str  # the run folder's name: the axis values, e.g. dropout=0.25,learning_rate=0.001
    flags: dict[str, str]  # every flag of this run, one value each


@dataclass
class SweepResult:
    out_dir: Path
    runs: list[RunSummary]
    failed: dict[str, str] = field(default_factory=dict)  # run name -> why
    interrupted: bool = False

    @property
    def best(self) -> RunSummary | None:
        return best_run(self.runs)


def canonical(value: str) -> str:
    """How a value appears in a folder name: numbers as Python writes them (1e-3 -> 0.001)."""
    for kind in (int, float):
        try:
            return repr(kind(value))
        except ValueError:
            continue
    return value.replace("/", "_")


def expand_grid(flags: dict[str, str | bool]) -> tuple[list[str], list[SweepPoint]]:
    """Split comma lists into axes; returns the axis names and every point of the grid."""
    values: dict[str, list] = {}
    for name, v in flags.items():
        if isinstance(v, str):
            parts = [p.strip() for p in v.split(",")]
            if any(p == "" for p in parts):
                raise ConfigError(f"--{name} {v!r}: an empty value in the comma list")
            values[name] = list(dict.fromkeys(parts))  # a repeated value is one run, not two
        else:
            values[name] = [v]
    axes = [k for k, vs in values.items() if len(vs) > 1]
    count = 1
    for k in axes:
        count *= len(values[k])
    if count > MAX_RUNS:
        raise ConfigError(f"that grid has {count} runs (more than {MAX_RUNS}); use fewer values per flag")
    points = []
    for combo in itertools.product(*(values[k] for k in axes)):
        chosen = dict(zip(axes, combo))
        point = {k: chosen.get(k, vs[0]) for k, vs in values.items()}
        name = ",".join(f"{k}={canonical(v)}" for k, v in chosen.items()) or "run"
        points.append(SweepPoint(name, point))
    return axes, points


def check_fresh(out_dir: Path, points: list[SweepPoint], force: bool) -> None:
    if force:
        return
    for p in points:
        if latest_checkpoint(out_dir / p.name) is not None:
            raise OutputExistsError(
                f"{out_dir / p.name} already holds a run; choose another --out_dir or pass --force to overwrite"
            )


def preprocess_once(input_txt: list[str], out_dir: Path, quiet: bool) -> tuple[str, str]:
    from ..text.corpus import preprocess

    out_dir.mkdir(parents=True, exist_ok=True)
    h5, js = out_dir / "corpus.h5", out_dir / "corpus.json"
    preprocess(input_txt=input_txt, output_h5=str(h5), output_json=str(js), quiet=quiet, force=True)
    return str(h5), str(js)


def run_sweep(out_dir: str | Path, configs: list[tuple[str, object]], axes: list[str], quiet: bool = False) -> SweepResult:
    """Train each (name, TrainConfig) in turn; a run that fails is reported, the others go on."""
    from ..training.trainer import train

    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "sweep.json", json.dumps(
        {"axes": axes, "runs": [name for name, _ in configs]}, indent=1))
    done: list[Path] = []
    result = SweepResult(out_dir, [])
    for k, (name, cfg) in enumerate(configs, 1):
        if not quiet:
            print(f"\n== run {k}/{len(configs)}: {name} ==", flush=True)
        try:
            outcome = train(cfg)
        except RnnkitError as e:
            result.failed[name] = str(e)
            print(f"run {name} failed: {e}", file=sys.stderr, flush=True)
            continue
        finally:
            if (out_dir / name / "metrics.jsonl").is_file():
                done.append(out_dir / name)
        if not quiet:
            best = f", best val_loss {outcome.best_val_loss:.4f}" if outcome.best_val_loss is not None else ""
            print(f"done: {outcome.iteration} iterations in {outcome.seconds:.0f}s ({outcome.stopped}){best}", flush=True)
        if outcome.stopped == "interrupted":
            result.interrupted = True
            break
    if not done:
        raise RnnkitError("no run of the sweep produced any metrics; see the errors above")
    result.runs = compare_runs(done)
    return result


def report(result: SweepResult, plot: str | Path) -> str:
    """The comparison table, the overlay plot's path and the best run, as printed at the end."""
    lines = ["", format_table(result.runs)]
    for name, why in result.failed.items():
        lines.append(f"failed: {name}: {why}")
    lines.append(f"validation curves: {plot_overlay(result.runs, plot)}")
    best = result.best
    if best is not None:
        lines.append(f"best run: {best.run_dir} (validation loss {best.best_val_loss:.4f} at iteration "
                     f"{best.best_iteration}); sample it with: rnnkit sample --checkpoint {best.run_dir}")
    if result.interrupted:
        lines.append("the sweep was interrupted; the table shows the runs so far")
    return "\n".join(lines)
