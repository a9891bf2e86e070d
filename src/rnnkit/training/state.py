"""Everything a training run carries from one update to the next, as one object.

Weights, optimizer moments, the iteration (which is also the position in the lanes), the
hidden state carried across batches, every random-number state and the loss history. A
checkpoint is `state_dict()`; a resume is `load_state_dict()` on a freshly built state, so
the two lists of what is saved and what is restored cannot drift apart.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core import distributed as dist
from ..core.checkpoint import Checkpoint, pack_optimizer, unpack_optimizer
from ..errors import InputFileError, RnnkitError
from ..model.language_model import (
    LanguageModel,
    ModelConfig,
    state_from_tensors,
    state_tensors,
)
from ..text.vocab import Vocab
from .optimizer import is_decayed, regroup_saved_state


@dataclass
class TrainState:
    model: LanguageModel
    optimizer: torch.optim.Optimizer
    iteration: int = 0
    best_val: float | None = None
    last_val: float | None = None
    evals_since_best: int = 0
    lr_scale: float = 1.0  # halved after each recovery from a numerical fault, cut at each plateau
    plateaus: int = 0  # returns to the best checkpoint at a lower learning rate (--lr_plateau)
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
                "plateaus": self.plateaus,
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
        self.plateaus = state.get("plateaus", 0)
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


# ---- fine-tuning on text with tokens the checkpoint lacks -----------------------------------
PER_TOKEN = ("embed.weight", "head.weight", "head.bias")  # the parameters with one row per token
NEW_TOKEN_PRIOR = 1e-3  # a new token's starting share of the probability (judged by the output biases)
EMBED_NOISE = 0.1  # new embedding rows: the old rows' mean plus this fraction of their spread, at random


def vocabulary_growth(saved: Vocab, new: Vocab, checkpoint: str | Path, new_json: str | Path) -> list[str]:
    """The tokens `new` appends to the checkpoint's vocabulary `saved`; a one-line error where
    `new` does not extend it (an id that means another token, or is missing)."""
    where = new.first_difference(saved)
    if where is None:
        return new.tokens[len(saved):]
    if saved.kind != new.kind:
        differs = f"it holds {new.kind} tokens, the checkpoint {saved.kind} tokens"
    else:
        there = saved.describe_tokens([saved.tokens[where - 1]])[0]
        here = new.describe_tokens([new.tokens[where - 1]])[0] if where <= len(new) else "missing"
        differs = f"id {where} is {there} in the checkpoint but {here} here, so the ids changed meaning"
    raise InputFileError(
        f"{new_json} does not extend the vocabulary of {checkpoint}: {differs}; preprocess the new text with "
        f"--vocab {checkpoint} (old ids kept, new characters appended), or run: rnnkit train NEW.txt --finetune {checkpoint}"
    )


def grow_vocabulary(ckpt: Checkpoint, new_size: int, seed: int) -> Checkpoint:
    """The checkpoint with room for `new_size` tokens, the new ones after the old ids; old rows unchanged.

    A new embedding row is the mean of the old rows plus a little noise: it starts as an average
    token, apart from the other new ones. A new output row has zero weights and a bias that gives
    it about NEW_TOKEN_PRIOR of the probability, so it starts unlikely, leaves the old tokens'
    predictions as they were, and learns from its first occurrences (a softmax output's gradient
    does not vanish however unlikely it is). The optimizer's moments of these tensors are padded
    with zeros, so the old rows keep theirs."""
    model_meta = ckpt.meta["model"]
    added = new_size - int(model_meta["vocab_size"])
    tensors = dict(ckpt.tensors)
    if "optimizer" in ckpt.meta:  # first: the moments are told apart by the old shapes
        _pad_moments(tensors, ckpt.meta["optimizer"], model_meta, added)
    generator = torch.Generator().manual_seed(seed)
    for name, rows in _new_rows(ckpt.prefixed("model."), added, generator).items():
        tensors[f"model.{name}"] = torch.cat([tensors[f"model.{name}"], rows])
    return Checkpoint({**ckpt.meta, "model": {**model_meta, "vocab_size": new_size}}, tensors, ckpt.path)


def _new_rows(weights: dict[str, torch.Tensor], added: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    embed, head, bias = (weights[name] for name in PER_TOKEN)
    old = embed[1:].float()  # row 0 belongs to no token
    spread = old.std(0) if len(old) > 1 else torch.zeros(old.shape[1])
    noise = torch.randn(added, old.shape[1], generator=generator)
    start = torch.logsumexp(bias.float(), 0) + math.log(NEW_TOKEN_PRIOR)
    return {
        "embed.weight": (old.mean(0) + EMBED_NOISE * spread * noise).to(embed.dtype),
        "head.weight": head.new_zeros(added, head.shape[1]),
        "head.bias": start.expand(added).to(bias.dtype),
    }


def _pad_moments(tensors: dict[str, torch.Tensor], packed: dict, model_meta: dict, added: int) -> None:
    """Zero rows appended to each optimizer tensor shaped like a grown parameter (Adam's two moments)."""
    with torch.device("meta"):  # only the parameters' names, order and shapes are needed
        model = LanguageModel(ModelConfig(**model_meta))
    ids = _optimizer_ids(packed, model)
    for name in PER_TOKEN:
        shape = tensors[f"model.{name}"].shape
        prefix = f"optim.{ids[name]}."
        for key in [k for k in tensors if k.startswith(prefix) and tensors[k].shape == shape]:
            moment = tensors[key]
            tensors[key] = torch.cat([moment, moment.new_zeros(added, *shape[1:])])


def _optimizer_ids(packed: dict, model: LanguageModel) -> dict[str, int]:
    """Parameter name -> its id in a saved optimizer state (build_optimizer's two groups, in model order)."""
    decayed_ids, rest_ids = (g["params"] for g in regroup_saved_state(packed, model)["param_groups"])
    named = list(model.named_parameters())
    decayed = [n for n, p in named if is_decayed(p)]
    rest = [n for n, p in named if not is_decayed(p)]
    return {**dict(zip(decayed, decayed_ids)), **dict(zip(rest, rest_ids))}
