"""Multi-process training through torch.distributed, launched by torchrun.

With no WORLD_SIZE in the environment every function here is a cheap no-op, so the
single-process path pays nothing. Each rank trains its own lanes of the corpus
(see data.Lanes); DDP averages gradients; only rank 0 logs and writes checkpoints.
Every collective here must be reached by all ranks in the same order, so the trainer
calls them only at iterations every rank agrees on (never on a rank's own clock).
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


def restart_count() -> int:
    """How often torchrun (--max-restarts) has restarted this worker group; 0 on the first start."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def max_restarts() -> int:
    return int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))


def launch_id() -> str:
    """torchrun's rendezvous id: --rdzv-id, or a fresh uuid per launch with --standalone."""
    return os.environ.get("TORCHELASTIC_RUN_ID", "")


def active() -> bool:
    return world_size() > 1 and tdist.is_available() and tdist.is_initialized()


def init(device_type: str | None = None) -> None:
    """Join the process group: NCCL when this rank trains on CUDA, gloo otherwise."""
    if world_size() > 1 and not tdist.is_initialized():
        cuda = torch.cuda.is_available() if device_type is None else device_type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank())
        tdist.init_process_group("nccl" if cuda else "gloo", **_store_of_this_attempt())


def _store_of_this_attempt() -> dict:
    """After a torchrun restart on one machine: the agent's store under a prefix of its own.

    torchrun's agent keeps one store for every attempt and hands it to the workers, so a
    restarted group can read the dead group's addresses and fail to connect (pytorch/pytorch
    #135712). All workers of one agent share its restart count, which keeps attempts apart;
    across machines the counts can differ, so there TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
    (a fresh store per attempt) is the way (README: Resuming).
    """
    env = os.environ
    one_machine = env.get("LOCAL_WORLD_SIZE") == env.get("WORLD_SIZE")
    if restart_count() == 0 or env.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or not one_machine:
        return {}
    from torch.distributed.constants import default_pg_timeout

    store = tdist.TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), world_size(), is_master=False, timeout=default_pg_timeout)
    return {"store": tdist.PrefixStore(f"rnnkit/attempt_{restart_count()}/", store), "rank": rank(), "world_size": world_size()}


def shutdown() -> None:
    """Leave the group while Python is fully alive. A DDP wrapper that only the garbage
    collector would free keeps the group's worker threads running into interpreter exit,
    where a gloo thread dropping its last tensor aborts the process (torch issue: see
    pytorch/pytorch#179291); collecting first lets the group really go now."""
    if active():
        import gc

        gc.collect()
        tdist.destroy_process_group()


def _device() -> torch.device:
    """Where small collective tensors live: NCCL only moves CUDA tensors."""
    if tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def on_rank0(fn, *args, **kwargs):
    """Run fn on rank 0 only; every rank raises rank 0's error, if any, instead of hanging."""
    error = None
    if rank() == 0:
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - passed on to the other ranks, then re-raised
            error = e
    if active():
        box = [None if error is None else (type(error).__name__, str(error))]
        tdist.broadcast_object_list(box, src=0)
        if rank() != 0 and box[0] is not None:
            from ..errors import RnnkitError

            raise RnnkitError(f"rank 0 failed: {box[0][1]}")
    if error is not None:
        raise error


def from_rank0(fn, *args, **kwargs):
    """fn run on rank 0 only, as on_rank0 does; every rank gets its result (picklable)."""
    box = [None]

    def run() -> None:
        box[0] = fn(*args, **kwargs)

    on_rank0(run)
    if active():
        tdist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if not active():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor) -> None:
    if active():
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)


def all_reduce_max(t: torch.Tensor) -> None:
    if active():
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)


def agree(elapsed: float, stop: bool) -> tuple[float, bool]:
    """(the ranks' mean clock, whether any rank asked to stop): one tiny all_reduce.

    The time budget, time-based evaluations and the time-annealed learning rate then
    follow the same clock on every rank, and a Ctrl-C on any rank stops them all.
    """
    if not active():
        return elapsed, stop
    t = torch.tensor([elapsed, 1.0 if stop else 0.0], dtype=torch.float64, device=_device())
    tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    clock, stops = t.tolist()
    return clock / world_size(), stops > 0


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


def gather_rng(state: torch.Tensor, name: str = "rng.torch") -> dict[str, torch.Tensor]:
    """Each rank's generator state as {name.RANK: state} (just {name: state} alone)."""
    if not active():
        return {name: state}
    pieces = [None] * world_size()
    tdist.all_gather_object(pieces, state.cpu())
    return {f"{name}.{r}": s for r, s in enumerate(pieces)}


def rank_slice(hidden, batch_size: int):
    """This rank's lanes out of a state gathered from all ranks; None if the lanes differ."""
    if hidden is None:
        return None
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    if any(h.shape[1] != batch_size * world_size() for h in parts):
        return None  # saved with another number of lanes: start them from a zero state
    r = rank() if world_size() > 1 else 0
    out = tuple(h[:, r * batch_size:(r + 1) * batch_size].contiguous() for h in parts)
    return out if isinstance(hidden, tuple) else out[0]
