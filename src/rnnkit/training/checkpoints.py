"""A training checkpoint on disk: the TrainState's tensors and counters, plus what sampling,
resume and compare need to know about the run (model shape, vocabulary, options, data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from ..core.checkpoint import read_meta, save_checkpoint, set_aside_if_damaged
from ..text.vocab import Vocab
from .config import TrainConfig
from .state import TrainState


def checkpoint_path(cfg: TrainConfig, iteration: int) -> Path:
    return Path(f"{cfg.checkpoint_name}_{iteration}.json")


def run_header(cfg: TrainConfig, vocab: Vocab, state: TrainState, batches_per_epoch: int) -> dict[str, Any]:
    """The part of a checkpoint's JSON that describes the run rather than its progress."""
    return {
        "kind": "language_model",
        "model": state.model.config.to_dict(),
        "vocab": vocab.to_json_dict(),
        "epoch": state.iteration / max(1, batches_per_epoch),
        "options": cfg.to_dict(),
        "data": {
            "input_h5": str(Path(cfg.input_h5).resolve()),
            "input_json": str(Path(cfg.input_json).resolve()),
            "sources": preprocessed_sources(cfg.input_json),
        },
    }


def preprocessed_sources(input_json: str) -> list[str]:
    """The text files preprocess read (list mode's --novel compares against them)."""
    try:
        return json.loads(Path(input_json).read_text()).get("rnnkit_sources", [])
    except (OSError, ValueError):
        return []


def weights_are_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                     notice: Callable[[str], None]) -> None:
    """Rank 0 writes NAME_ITER.json + .safetensors atomically."""
    if path.exists():  # a resume from an earlier checkpoint: keep a damaged one at this name
        kept = set_aside_if_damaged(path)
        if kept:
            notice(f"note: damaged checkpoint {path.name} kept as {' and '.join(p.name for p in kept)}")
    save_checkpoint(path, tensors, meta)


def mark_best(cfg: TrainConfig, path: Path) -> None:
    """NAME_best.json: the metadata of `path`, pointing at its weights file (nothing copied)."""
    best = Path(f"{cfg.checkpoint_name}_best.json")
    meta = read_meta(path)
    save_checkpoint(best, {}, {k: v for k, v in meta.items() if not k.startswith("weights_")},
                    weights_path=path.with_suffix(".safetensors"))
