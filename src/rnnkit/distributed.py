"""Multi-process training through torch.distributed, launched by torchrun.

With no WORLD_SIZE in the environment every function here is a cheap no-op, so the
single-process path pays nothing. Each rank trains its own lanes of the corpus
(see data.Lanes); DDP averages gradients; only rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    return world_size() > 1 and tdist.is_available() and tdist.is_initialized()


def init() -> None:
    if world_size() > 1 and not tdist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        tdist.init_process_group(backend)


def shutdown() -> None:
    if active():
        tdist.destroy_process_group()


def barrier() -> None:
    if active():
        tdist.barrier()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if not active():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor) -> None:
    if active():
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)


def any_flag(flag: bool) -> bool:
    """True on every rank when any rank raised it (so all ranks stop together)."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item())


def gather_hidden(hidden):
    """Every rank's carried state, concatenated along the lane axis (rank order)."""
    if hidden is None or not active():
        return hidden
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    out = []
    for h in parts:
        pieces = [torch.empty_like(h) for _ in range(world_size())]
        tdist.all_gather(pieces, h.contiguous())
        out.append(torch.cat(pieces, dim=1))
    return tuple(out) if isinstance(hidden, tuple) else out[0]


def gather_rng(state: torch.Tensor) -> dict[str, torch.Tensor]:
    if not active():
        return {"rng.torch": state}
    pieces = [torch.empty_like(state) for _ in range(world_size())]
    tdist.all_gather_object(pieces, state)
    return {f"rng.torch.{r}": s for r, s in enumerate(pieces)}


def rank_slice(hidden, batch_size: int):
    """This rank's lanes out of a state gathered from all ranks."""
    if hidden is None or world_size() == 1:
        return hidden
    r = rank()
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    out = tuple(h[:, r * batch_size:(r + 1) * batch_size].contiguous() for h in parts)
    return out if isinstance(hidden, tuple) else out[0]
