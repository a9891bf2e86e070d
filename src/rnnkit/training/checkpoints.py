"""What a checkpoint holds of a training run, written and read back.

Weights, optimizer, iteration, best loss, fault counters, the hidden state carried across
batches and every random-number state: all that a resume needs to continue exactly.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core import distributed as dist
from ..core.checkpoint import (
    pack_optimizer,
    read_meta,
    save_checkpoint,
    set_aside_if_damaged,
    unpack_optimizer,
)
from ..errors import RnnkitError
from ..model.language_model import state_from_tensors, state_tensors
from .optimizer import regroup_saved_state, set_weight_decay


class TrainerCheckpoints:
    """The checkpoint part of `Trainer` (training.py), which sets the attributes used here."""

    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed + self.rank)

    def _restore(self, ckpt) -> None:
        meta = ckpt.meta
        if "optimizer" in meta:
            try:
                unpack_optimizer(self.optimizer, ckpt.tensors, regroup_saved_state(meta["optimizer"], self.model))
            except (ValueError, KeyError, RuntimeError) as e:
                raise RnnkitError(f"{ckpt.path}: its optimizer state does not fit this model ({e})") from None
            set_weight_decay(self.optimizer, self.cfg.weight_decay)  # flags given now win over the saved ones
            for group in self.optimizer.param_groups:
                group["fused"] = True if self.fused else None  # step() relies on fused Adam's found_inf
        if self.cfg.reset_iterations:
            self._seed(self.cfg.seed)
            return
        state = meta.get("train_state", {})
        self.iteration = int(meta.get("iteration", 0))
        self.best_val = state.get("best_val_loss")
        self.last_val = meta.get("val_loss")
        self.evals_since_best = state.get("evals_since_best", 0)
        self.lr_scale = state.get("lr_scale", 1.0)
        self.faults = state.get("faults", 0)
        self.elapsed_before = state.get("elapsed", 0.0)
        if state.get("best_checkpoint"):
            self.best_path = ckpt.path.parent / state["best_checkpoint"]
        saved_hidden = {k: v.to(self.device, torch.float32) for k, v in ckpt.tensors.items() if k.startswith("hidden.")}
        hidden = state_from_tensors(saved_hidden, self.model.config.model_type)
        self.hidden = dist.rank_slice(hidden, self.cfg.batch_size)
        rng = state.get("rng")
        if rng and state.get("world_size", 1) == self.world:
            random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
            np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
            mine = lambda name: ckpt.tensors.get(f"{name}.{self.rank}", ckpt.tensors.get(name))  # noqa: E731
            torch.set_rng_state(mine("rng.torch"))
            if self.device.type == "cuda" and mine("rng.cuda") is not None:
                torch.cuda.set_rng_state(mine("rng.cuda"), self.device)
        else:
            self._seed(self.cfg.seed + self.iteration)
            saved_world = state.get("world_size", 1)
            if saved_world != self.world:
                kept = "carried over (same lanes)" if self.hidden is not None else "reset (the lanes are cut anew)"
                self.notice(f"note: {ckpt.path.name} was written by {saved_world} process(es), this run has {self.world}: "
                            f"random streams reseeded, hidden state {kept}; keep processes x --batch_size equal to continue exactly")

    def _checkpoint_meta(self, val_loss: float | None) -> dict[str, Any]:
        py = random.getstate()
        npst = np.random.get_state()
        return {
            "kind": "language_model",
            "model": self.model.config.to_dict(),
            "vocab": self.vocab.to_json_dict(),
            "iteration": self.iteration,
            "epoch": self.iteration / max(1, self.train_lanes.num_batches),
            "val_loss": val_loss,
            "options": self.cfg.to_dict(),
            "data": {
                "input_h5": str(Path(self.cfg.input_h5).resolve()),
                "input_json": str(Path(self.cfg.input_json).resolve()),
                "sources": self.sources,
            },
            "optimizer": None,  # filled in save()
            "train_state": {
                "best_val_loss": self.best_val,
                "best_checkpoint": self.best_path.name if self.best_path else None,
                "evals_since_best": self.evals_since_best,
                "lr_scale": self.lr_scale,
                "faults": self.faults,
                "elapsed": self.elapsed(),
                "world_size": self.world,
                "hidden_rule": "carried across batches; reset at each epoch start",
                "rng": {
                    "python": [py[0], list(py[1]), py[2]],
                    "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
                },
            },
        }

    @property
    def sources(self) -> list[str]:
        try:
            import json

            return json.loads(Path(self.cfg.input_json).read_text()).get("rnnkit_sources", [])
        except (OSError, ValueError):
            return []

    def save(self, val_loss: float | None) -> Path | None:
        """Write checkpoint NAME_ITER. Rank 0 writes; every rank gets the path (for recovery)."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            self.notice("warning: weights are not finite; no checkpoint written")
            return None
        hidden = dist.gather_hidden(self.hidden)
        rngs = dist.gather_rng(torch.get_rng_state(), "rng.torch")
        if self.device.type == "cuda":
            rngs.update(dist.gather_rng(torch.cuda.get_rng_state(self.device), "rng.cuda"))
        path = Path(f"{self.cfg.checkpoint_name}_{self.iteration}.json")
        self.last_saved = path
        if self.rank != 0:
            return path
        meta = self._checkpoint_meta(val_loss)
        opt_tensors, meta["optimizer"] = pack_optimizer(self.optimizer)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(opt_tensors)
        tensors.update({k: v.float() for k, v in state_tensors(hidden).items()})  # autocast leaves it bf16/fp16
        tensors.update(rngs)
        if path.exists():  # a resume from an earlier checkpoint: keep a damaged one at this name
            kept = set_aside_if_damaged(path)
            if kept:
                self.notice(f"note: damaged checkpoint {path.name} kept as {' and '.join(p.name for p in kept)}")
        save_checkpoint(path, tensors, meta)
        return path

    def mark_best(self, path: Path) -> None:
        if self.rank != 0 or path is None:
            return
        best = Path(f"{self.cfg.checkpoint_name}_best.json")
        meta = read_meta(path)
        save_checkpoint(best, {}, {k: v for k, v in meta.items() if not k.startswith("weights_")},
                        weights_path=path.with_suffix(".safetensors"))
        self.best_path = path
