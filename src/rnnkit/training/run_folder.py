"""The run folder: checked and prepared for a new run, or read to resume one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..core import distributed as dist
from ..core.atomic import atomic_write_text, ensure_writable_folder
from ..core.checkpoint import (
    latest_checkpoint,
    newest_intact_checkpoint,
    read_meta,
    remove_checkpoints,
    resolve_checkpoint,
    set_aside_if_damaged,
)
from ..errors import CheckpointError, ConfigError, InputFileError, OutputExistsError
from ..text.splits import check_pair
from ..text.vocab import Vocab
from .config import TrainConfig
from .state import vocabulary_growth


def prepare_run(cfg: TrainConfig) -> TrainConfig:
    """Check the run folder and preprocess raw text into it. A worker that torchrun restarted
    (--max-restarts) continues its run from the newest intact checkpoint instead."""
    if _first_start_of_restartable_launch() and cfg.run_dir.is_dir():
        (cfg.run_dir / LAUNCH_MARK).unlink(missing_ok=True)  # marked again below, once the folder is taken
    cfg = _continue_after_restart(cfg)
    parent = resolve_checkpoint(cfg.init_from) if cfg.init_from else None
    if not cfg.input_txt:
        _check_input_pair(cfg, parent)  # before the run folder is made: a refused pair leaves nothing behind
    run_dir = cfg.run_dir
    dist.on_rank0(_make_run_dir, run_dir)  # on every rank: the broadcast inside pairs the ranks up
    ensure_writable_folder(run_dir, f"--checkpoint_name {cfg.checkpoint_name}")
    existing = latest_checkpoint(run_dir, cfg.prefix)
    resuming = cfg.init_from and not cfg.reset_iterations and Path(cfg.init_from).resolve().parent == run_dir.resolve()
    if existing is not None and not cfg.force and not resuming:
        raise OutputExistsError(
            f"{run_dir} already holds checkpoints of an earlier run ({existing.name}); continue it with "
            f"--resume {run_dir}, start a new one with --checkpoint_name other/checkpoint, or pass --force to overwrite"
        )
    if existing is not None and not resuming:  # --force: a later --resume must not find the old run's checkpoints
        dist.on_rank0(remove_checkpoints, run_dir, cfg.prefix)
    if dist.rank() == 0:  # half-written files that a killed run left behind
        for tmp in run_dir.glob(f".{cfg.prefix}_*.tmp"):
            tmp.unlink(missing_ok=True)
    if _first_start_of_restartable_launch():
        atomic_write_text(run_dir / LAUNCH_MARK, dist.launch_id())
    if cfg.input_txt:
        from ..text.corpus import preprocess

        cfg.input_h5 = str(run_dir / "corpus.h5")
        cfg.input_json = str(run_dir / "corpus.json")
        dist.on_rank0(preprocess, input_txt=cfg.input_txt, output_h5=cfg.input_h5, output_json=cfg.input_json,
                      quiet=cfg.quiet, **_tokens_of(parent))
    return cfg


def _tokens_of(parent: Path | None) -> dict[str, str]:
    """preprocess's options for a run from a checkpoint: its vocabulary, extended with the text's
    new characters (old ids kept), and its kind of tokens."""
    if parent is None:
        return {}
    kind = Vocab.load(parent).kind
    return {"vocab": str(parent), "encoding": "bytes" if kind == "bytes" else "utf-8",
            "tokens": "word" if kind == "word" else "char"}


def _check_input_pair(cfg: TrainConfig, parent: Path | None) -> None:
    if not cfg.input_h5 or not cfg.input_json:
        raise ConfigError("give --input_h5 and --input_json (from rnnkit preprocess), or a text file: rnnkit train my.txt")
    note = check_pair(cfg.input_h5, cfg.input_json)
    if note and dist.rank() == 0:
        print(note, file=sys.stderr, flush=True)
    if parent is not None:  # ids that changed meaning are refused here, before anything is written
        vocabulary_growth(Vocab.load(parent), Vocab.load(cfg.input_json), parent, cfg.input_json)


def _make_run_dir(run_dir: Path) -> None:
    if run_dir.exists():
        return  # a file there is reported by ensure_writable_folder
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise InputFileError(f"cannot create the run folder {run_dir} ({e.strerror}); choose another --checkpoint_name") from None


def resume_config(run_or_checkpoint: str, overrides: dict[str, Any]) -> TrainConfig:
    """The config of the run in a folder (or checkpoint), continuing from its newest checkpoint."""
    p = Path(run_or_checkpoint)
    ckpt = resume_checkpoint(p) if p.is_dir() else p
    meta = read_meta(ckpt if ckpt.suffix == ".json" else ckpt.with_suffix(".json"))
    options = dict(meta.get("options", {}))
    options.update({k: v for k, v in overrides.items() if v is not None})
    options.update(init_from=str(ckpt), reset_iterations=False, input_txt=None, force=False)
    # the run folder may have been moved or copied: keep writing beside the checkpoint
    run_dir = ckpt.parent
    options["checkpoint_name"] = str(run_dir / Path(options.get("checkpoint_name") or "checkpoint").name)
    for key, local in (("input_h5", "corpus.h5"), ("input_json", "corpus.json")):
        saved = meta.get("data", {}).get(key, options.get(key))
        if (not saved or not Path(saved).exists()) and (run_dir / local).exists():
            saved = str(run_dir / local)
        options[key] = saved
    known = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in options.items() if k in known})


def resume_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a resume continues from: the newest one whose files match, never `best`.
    Damaged newer ones are named in one line and left as they are."""
    ckpt, damaged = newest_intact_checkpoint(run_dir)
    if ckpt is None and not damaged:
        raise InputFileError(
            f"{run_dir} holds no checkpoint to resume from (a run saves its first after --checkpoint_every "
            "iterations); give the run folder, or start the run again"
        )
    reasons = ", ".join(f"{path} ({e.reason})" for path, e in damaged)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} holds no intact checkpoint to resume from: {reasons}; "
                              "start the run again with --force")
    if damaged and dist.rank() == 0:
        them = "checkpoint {}, left as it is" if len(damaged) == 1 else "checkpoints {}, left as they are"
        print(f"warning: damaged {them.format(reasons)}; resuming from {ckpt}", file=sys.stderr, flush=True)
    return ckpt


def write_config(cfg: TrainConfig) -> None:
    atomic_write_text(cfg.run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1, default=str))


# ---- torchrun --max-restarts -------------------------------------------------------------------
# torchrun restarts a worker group after any failure, a refused run folder included. So the first
# start of a launch that may be restarted marks the folder once it has taken it, and a restart
# resumes only where that mark names its own launch: after a refusal it refuses again.
LAUNCH_MARK = ".torchrun_launch"
# set by resume_config or the run
NOT_CARRIED = ("init_from", "reset_iterations", "finetune", "parent", "input_txt", "force", "auto_choice")


def _first_start_of_restartable_launch() -> bool:
    return dist.rank() == 0 and dist.max_restarts() > 0 and dist.restart_count() == 0


def _taken_by_this_launch(run_dir: Path) -> bool:
    try:
        return (run_dir / LAUNCH_MARK).read_text() == dist.launch_id()
    except OSError:
        return False


def _continue_after_restart(cfg: TrainConfig) -> TrainConfig:
    """After a torchrun restart, what --resume RUN_DIR with the same flags would train; else cfg.
    Rank 0 decides for all: on several machines the restart counts can differ."""
    ckpt = dist.from_rank0(_restart_checkpoint, cfg.run_dir)
    if ckpt is None:
        return cfg
    # `auto` keeps the run's own choice, as --resume does: this start might measure another
    flags = {k: v for k, v in cfg.to_dict().items()
             if k not in NOT_CARRIED and k not in cfg.auto_choice and v != "auto"}
    return resume_config(ckpt, flags)


def _restart_checkpoint(run_dir: Path) -> str | None:
    """The newest intact checkpoint of this launch's run, said in one line; None to start over
    (damaged checkpoints set aside as *.damaged); None too on a first start, or where the first
    start never took run_dir."""
    count = dist.restart_count()
    if count == 0 or not _taken_by_this_launch(run_dir):
        return None
    ckpt, damaged = newest_intact_checkpoint(run_dir)
    if ckpt is None:
        for path, _ in damaged:
            set_aside_if_damaged(path)
        print(f"restart {count} of torchrun: no intact checkpoint in {run_dir}; starting the run over", file=sys.stderr, flush=True)
        return None
    left = f"; damaged {', '.join(str(path) for path, _ in damaged)} left as they are" if damaged else ""
    print(f"restart {count} of torchrun: resuming from {ckpt}{left}", file=sys.stderr, flush=True)
    return str(ckpt)
