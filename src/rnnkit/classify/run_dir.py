"""The run folder: refusing to overwrite a run, finding its checkpoints, writing split.json."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..core.checkpoint import (
    Checkpoint,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
)
from ..errors import CheckpointError, ConfigError, OutputExistsError

NAME = "classifier"  # checkpoint files: classifier_<epoch>.json, classifier_best.json


def check_run_dir(run_dir: Path, force: bool, continuing: bool) -> bool:
    """Refuse to overwrite a run; True when --force will replace its checkpoints."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputExistsError(f"--run_dir {run_dir} is a file; give a folder")
    if run_dir.is_dir() and find_checkpoints(run_dir) and not continuing:
        if not force:
            raise OutputExistsError(
                f"{run_dir} already holds checkpoints; continue it with --init_from {run_dir}, "
                "pick another --run_dir, or add --force to replace it"
            )
        return True
    return False


def prepare_run_dir(run_dir: Path, replace: bool) -> None:
    """Called once the data has loaded, so a bad flag never costs the old run."""
    if replace:
        for p in run_dir.glob(f"{NAME}_*"):
            if p.suffix in (".json", ".safetensors"):
                p.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --run_dir {run_dir} ({e.strerror}); choose a folder you can write to") from None


def load_classifier_checkpoint(path: str | Path, newest: bool = False) -> Checkpoint:
    """A run folder means its best checkpoint, or with newest its last epoch."""
    p = Path(path)
    latest = latest_checkpoint(p, NAME) if newest and p.is_dir() else None
    ckpt = load_checkpoint(latest or p)
    if ckpt.meta.get("kind") != "classifier":
        raise CheckpointError(
            f"{ckpt.path} is a {ckpt.meta.get('kind', 'language model')} checkpoint, not a classifier; "
            "give a run folder written by rnnkit classify train"
        )
    return ckpt


def write_split(path: Path, split_meta: dict, split_ids: dict[str, list[str]]) -> None:
    """One line per key, so the file stays readable with many ids."""
    items = {**split_meta, **split_ids}
    body = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items.items())
    atomic_write_text(path, "{\n" + body + "\n}\n")
