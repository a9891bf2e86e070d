"""One training update on a TrainState, and the count of updates skipped as non-finite.

A bad step is skipped on the device, with no host sync; `read()` later tells how many were
skipped and the longest run of them in a row (the trainer decides what to do about it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core import distributed as dist
from ..model.language_model import detach_state
from .state import TrainState


@dataclass
class Faults:
    """Skipped updates since the last read(): how many, and the longest run of them in a row."""

    count: int
    in_a_row: int


class Stepper:
    def __init__(self, state: TrainState, ddp_model: torch.nn.Module, autocast_dtype: torch.dtype | None,
                 scaler: torch.amp.GradScaler | None, fused: bool, grad_clip: float):
        self.state, self.ddp_model = state, ddp_model
        self.device = next(state.model.parameters()).device
        self.autocast_dtype, self.scaler, self.fused, self.grad_clip = autocast_dtype, scaler, fused, grad_clip
        # counted on the device between two read() calls
        self.skipped, self.run, self.worst_run = (torch.zeros((), dtype=torch.int64, device=self.device) for _ in range(3))

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def loss_of(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of next-token logits against 1-based target ids."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1) - 1)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        """One update; returns the loss as a 0-d tensor left on the device (no host sync).

        A step whose loss or gradient is not finite changes no weight and restarts the
        lanes from a zero state, all decided on the device; read() counts them.
        """
        optimizer = self.state.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.ddp_model.train()
        with self.autocast():
            logits, hidden = self.ddp_model(x, self.state.hidden)
            loss = self.loss_of(logits, y)
        optimizer.zero_grad(set_to_none=True)
        bad = self._backward(loss)
        if self.grad_clip > 0:  # torch-rnn and char-rnn clamp each gradient value
            torch.nn.utils.clip_grad_value_(self.state.model.parameters(), self.grad_clip)
        self._update(bad)
        self.state.hidden = zero_where(bad, detach_state(hidden))
        self.skipped += bad
        self.run = (self.run + 1) * bad
        self.worst_run = torch.maximum(self.worst_run, self.run)
        return loss.detach()

    def _backward(self, loss: torch.Tensor) -> torch.Tensor:
        """Gradients; returns whether this step is bad (a 0-d bool on the device)."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.state.optimizer)
            # fp16 gradients overflow now and then by design: the scaler skips those updates
            # and lowers its scale; only a non-finite loss is a fault
            return ~torch.isfinite(loss.detach())
        loss.backward()
        # DDP has averaged the gradients, so every rank sees the same norm and skips alike
        grad_norm = total_grad_norm(self.state.model.parameters())
        return ~(torch.isfinite(loss.detach()) & torch.isfinite(grad_norm))

    def _update(self, bad: torch.Tensor) -> None:
        optimizer = self.state.optimizer
        if self.scaler is not None:
            self.scaler.step(optimizer)  # fused Adam takes the scaler's found_inf: no sync
            self.scaler.update()
        elif self.fused:
            optimizer.found_inf = bad.float()  # the kernel leaves weights and moments alone
            try:
                optimizer.step()
            finally:
                del optimizer.found_inf
        elif not bad.item():  # no fused Adam on this device: a host sync
            optimizer.step()

    def read(self, loss: torch.Tensor) -> tuple[float | None, Faults]:
        """The loss and the faults since the last call: the host sync (and, with several ranks,
        two tiny collectives: the mean loss and the worst fault counts). The loss is None when
        this step was skipped."""
        stats = torch.stack([self.skipped, self.worst_run, self.run]).to(torch.float64)
        dist.all_reduce_max(stats)
        loss = loss.to(torch.float64).reshape(1)
        dist.all_reduce_sum(loss)
        count, worst, current = (int(v) for v in stats.tolist())
        self.skipped.zero_()
        self.worst_run.copy_(self.run)
        return (None if current else loss.item() / dist.world_size()), Faults(count, worst)

    def forget_faults(self) -> None:
        """After a rollback to a checkpoint the run of bad steps starts again."""
        self.run.zero_()
        self.worst_run.zero_()


def total_grad_norm(params) -> torch.Tensor:
    """The gradients' L2 norm, in one pass (clip_grad_norm_ with an infinite limit would
    also multiply every gradient by 1: a second pass, ~0.5% of a 2x256 CPU step)."""
    params = list(params)
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6
        return torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    return torch.nn.utils.clip_grad_norm_(params, float("inf"))


def zero_where(bad: torch.Tensor, state):
    """The carried state, zeroed (as a fresh start) where `bad` is true; no host sync."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(torch.where(bad, 0.0, s) for s in state)
    return torch.where(bad, 0.0, state)
