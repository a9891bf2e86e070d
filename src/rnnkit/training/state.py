"""Everything a training run carries from one update to the next, as one object.

Weights, optimizer moments, the iteration (which is also the position in the lanes), the
hidden state carried across batches, every random-number state and the loss history. A
checkpoint is `state_dict()`; a resume is `load_state_dict()` on a freshly built state, so
the two lists of what is saved and what is restored cannot drift apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..core import distributed as dist
from ..core.checkpoint import pack_optimizer, unpack_optimizer
from ..errors import RnnkitError
from ..model.language_model import LanguageModel, state_from_tensors, state_tensors
from .optimizer import regroup_saved_state


@dataclass
class TrainState:
    model: LanguageModel
    optimizer: torch.optim.Optimizer
    iteration: int = 0
    best_val: float | None = None
    last_val: float | None = None
    evals_since_best: int = 0
    lr_scale: float = 1.0  # halved after each recovery from a numerical fault
    faults: int = 0
    elapsed_before: float = 0.0  # training seconds spent before this process took over
    best_checkpoint: str | None = None
    hidden: Any = None  # carried across batches; reset at each epoch start

    def state_dict(self, elapsed: float) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, meta) for a checkpoint. Every rank calls it, since the hidden state and the
        torch generators are gathered from all ranks; rank 0's result is the whole state."""
        device = next(self.model.parameters()).device
        rngs = dist.gather_rng(torch.get_rng_state(), "rng.torch")
        if device.type == "cuda":
            rngs.update(dist.gather_rng(torch.cuda.get_rng_state(device), "rng.cuda"))
        hidden = dist.gather_hidden(self.hidden)
        optimizer_tensors, optimizer_meta = pack_optimizer(self.optimizer)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(optimizer_tensors)
        tensors.update({k: v.float() for k, v in state_tensors(hidden).items()})  # autocast leaves it bf16/fp16
        tensors.update(rngs)
        py, npst = random.getstate(), np.random.get_state()
        meta = {
            "iteration": self.iteration,
            "val_loss": self.last_val,
            "optimizer": optimizer_meta,
            "train_state": {
                "best_val_loss": self.best_val,
                "best_checkpoint": self.best_checkpoint,
                "evals_since_best": self.evals_since_best,
                "lr_scale": self.lr_scale,
                "faults": self.faults,
                "elapsed": elapsed,
                "world_size": dist.world_size(),
                "rng": {
                    "python": [py[0], list(py[1]), py[2]],
                    "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
                },
            },
        }
        return tensors, meta

    def load_weights_and_optimizer(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], where: str) -> None:
        """What --init_from carries over even when the counters restart."""
        self.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        if "optimizer" not in meta:
            return
        try:
            unpack_optimizer(self.optimizer, tensors, regroup_saved_state(meta["optimizer"], self.model))
        except (ValueError, KeyError, RuntimeError) as e:
            raise RnnkitError(f"{where}: its optimizer state does not fit this model ({e})") from None

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], batch_size: int, seed: int,
                        notice: Callable[[str], None], where: str = "the checkpoint") -> None:
        """Continue exactly where state_dict() left off (the RNG too, when the world size is the same)."""
        self.load_weights_and_optimizer(tensors, meta, where)
        state = meta.get("train_state", {})
        self.iteration = int(meta.get("iteration", 0))
        self.last_val = meta.get("val_loss")
        self.best_val = state.get("best_val_loss")
        self.best_checkpoint = state.get("best_checkpoint")
        self.evals_since_best = state.get("evals_since_best", 0)
        self.lr_scale = state.get("lr_scale", 1.0)
        self.faults = state.get("faults", 0)
        self.elapsed_before = state.get("elapsed", 0.0)
        device = next(self.model.parameters()).device
        saved_hidden = {k: v.to(device, torch.float32) for k, v in tensors.items() if k.startswith("hidden.")}
        self.hidden = dist.rank_slice(state_from_tensors(saved_hidden, self.model.config.model_type), batch_size)
        saved_world = state.get("world_size", 1)
        if state.get("rng") and saved_world == dist.world_size():
            restore_rng(state["rng"], tensors, device)
            return
        seed_everything(seed + self.iteration)
        if saved_world != dist.world_size():
            kept = "carried over (same lanes)" if self.hidden is not None else "reset (the lanes are cut anew)"
            notice(f"note: {where} was written by {saved_world} process(es), this run has {dist.world_size()}: "
                   f"random streams reseeded, hidden state {kept}; keep processes x --batch_size equal to continue exactly")


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's generators; torch's differs per rank (dropout masks)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed + dist.rank())


def restore_rng(rng: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
    rank = dist.rank()
    mine = lambda name: tensors.get(f"{name}.{rank}", tensors.get(name))  # noqa: E731
    torch.set_rng_state(mine("rng.torch"))
    if device.type == "cuda" and mine("rng.cuda") is not None:
        torch.cuda.set_rng_state(mine("rng.cuda"), device)
