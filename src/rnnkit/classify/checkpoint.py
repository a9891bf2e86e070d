"""A classifier's checkpoints and run folder, on the language model's code: the same
.json + .safetensors pairs (core/checkpoint.py), the same refusal to overwrite a run
without --force, the same resume from the newest intact checkpoint (training/run_folder.py).

Files: RUN_DIR/NAME_<iteration>.json (+ .safetensors) after each epoch and when a run
stops early; NAME_best.json points at the weights with the lowest validation loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.atomic import ensure_writable_folder
from ..core.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    read_meta,
    remove_checkpoints,
    resolve_checkpoint,
)
from ..errors import CheckpointError, ConfigError, OutputExistsError
from ..training.run_folder import resume_checkpoint
from .config import TrainConfig
from .events import EventSource
from .legacy import BINARY, classifier_format, from_binary

KIND = "classifier"
FORMAT = 2  # 2: K classes, softmax head, scikit-learn bag-of-events (rnnkit 0.1 wrote 1: legacy.py)


def load_classifier_checkpoint(path: str | Path) -> Checkpoint:
    """To predict with: a run folder means its best checkpoint; rnnkit 0.1's comes converted."""
    ckpt = load_checkpoint(path)
    check_kind(ckpt.meta, ckpt.path)
    return from_binary(ckpt, FORMAT) if classifier_format(ckpt.meta) == BINARY else ckpt


def load_checkpoint_to_continue(path: str | Path) -> Checkpoint:
    """To train on: a run folder means its newest intact checkpoint, one this rnnkit wrote."""
    p = Path(path)
    ckpt = load_checkpoint(resume_checkpoint(p) if p.is_dir() else p)
    check_continuable(ckpt.meta, ckpt.path)
    return ckpt


def check_kind(meta: dict[str, Any], path: Path) -> None:
    if meta.get("kind") != KIND:
        raise CheckpointError(
            f"{path} is a {meta.get('kind', 'language model')} checkpoint, not a classifier; "
            "give a run folder written by rnnkit classify train"
        )


def check_continuable(meta: dict[str, Any], path: Path) -> None:
    check_kind(meta, path)
    if classifier_format(meta) < FORMAT:
        raise CheckpointError(f"{path} is a classifier of rnnkit 0.1: predict and eval read it, but its training "
                              "cannot be continued; train a new one with this rnnkit's classify train")


def check_run_folder(cfg: TrainConfig, continuing: bool) -> bool:
    """Refuse to overwrite a run; True when --force will replace its checkpoints. Nothing is
    changed yet: that waits until the data has loaded (clear_run_folder)."""
    folder = cfg.folder
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"--run_dir {folder} is a file; give a folder")
    if folder.is_dir() and latest_checkpoint(folder, cfg.prefix) is not None and not continuing:
        if not cfg.force:
            raise OutputExistsError(
                f"{folder} already holds checkpoints; continue it with --resume {folder}, "
                "pick another --run_dir, or add --force to replace it"
            )
        return True
    return False


def clear_run_folder(cfg: TrainConfig, replace: bool) -> None:
    if replace:
        remove_checkpoints(cfg.folder, cfg.prefix)
    try:
        cfg.folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --run_dir {cfg.folder} ({e.strerror}); choose a folder you can write to") from None
    ensure_writable_folder(cfg.folder, f"--run_dir {cfg.folder}")
    for tmp in cfg.folder.glob(f".{cfg.prefix}_*.tmp"):  # what a killed run left half-written
        tmp.unlink(missing_ok=True)


def resume_config(run_or_checkpoint: str, given: dict[str, Any], source_given: dict[str, Any]) -> TrainConfig:
    """`classify train --resume RUN_DIR`: the run's own flags and data, continued from its newest
    intact checkpoint; flags typed again override the saved ones."""
    p = Path(run_or_checkpoint)
    ckpt = resume_checkpoint(p) if p.is_dir() else resolve_checkpoint(p)
    meta = read_meta(ckpt)
    check_continuable(meta, ckpt)
    options = {**meta["options"], **given}
    folder = ckpt.parent  # the run folder may have moved: keep writing beside the checkpoint
    options.update(init_from=str(ckpt), force=False, run_dir=str(folder),
                   checkpoint_name=str(folder / Path(meta["options"]["checkpoint_name"]).name))
    return TrainConfig(source=EventSource(**{**meta["source"], **source_given}), **options)
