"""One training update, and what happens when its loss or gradient is not finite.

A bad step is skipped on the device, with no host sync; settle() reads how many were
skipped. Too many in a row roll back to the last checkpoint with a halved learning rate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core import distributed as dist
from ..core.checkpoint import load_checkpoint, unpack_optimizer
from ..core.progress import Progress
from ..errors import RnnkitError
from ..model.language_model import detach_state

MAX_CONSECUTIVE_FAULTS = 3
MAX_RECOVERIES = 3


class TrainerStep:
    """The update part of `Trainer` (training.py), which sets the attributes used here."""

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        """One update; returns the loss as a 0-d tensor left on the device (no host sync).

        A step whose loss or gradient is not finite changes no weight and restarts the
        lanes from a zero state, all decided on the device; settle() reads the count.
        """
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.ddp_model.train()
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            logits, hidden = self.ddp_model(x, self.hidden)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1) - 1)
        if self.iteration in cfg.fault_iterations:
            loss = loss * float("nan")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            # fp16 gradients overflow now and then by design: the scaler skips those updates
            # and lowers its scale; only a non-finite loss is a fault
            bad = ~torch.isfinite(loss.detach())
        else:
            loss.backward()
            # DDP has averaged the gradients, so every rank sees the same norm and skips alike
            grad_norm = total_grad_norm(self.model.parameters())
            bad = ~(torch.isfinite(loss.detach()) & torch.isfinite(grad_norm))
        if cfg.grad_clip > 0:  # torch-rnn and char-rnn clamp each gradient value
            torch.nn.utils.clip_grad_value_(self.model.parameters(), cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # fused Adam takes the scaler's found_inf: no sync
            self.scaler.update()
        elif self.fused:
            self.optimizer.found_inf = bad.float()  # the kernel leaves weights and moments alone
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf
        elif not bad.item():  # no fused Adam on this device: a host sync
            self.optimizer.step()
        self.hidden = zero_where(bad, detach_state(hidden))
        self._faults += bad
        self._run = (self._run + 1) * bad
        self._worst_run = torch.maximum(self._worst_run, self._run)
        return loss.detach()

    def settle(self, loss: torch.Tensor, progress: Progress) -> float | None:
        """Read the loss and the faults since the last call: the host sync (and, with
        several ranks, two tiny collectives: the mean loss and the worst fault counts).
        Returns the loss, or None when this step was skipped."""
        stats = torch.stack([self._faults, self._worst_run, self._run]).to(torch.float64)
        dist.all_reduce_max(stats)
        loss = loss.to(torch.float64).reshape(1)
        dist.all_reduce_sum(loss)
        faults, worst, current = (int(v) for v in stats.tolist())
        loss_value = loss.item() / self.world
        self._faults.zero_()
        self._worst_run.copy_(self._run)
        if faults:
            self.handle_faults(progress, faults, worst)
        return None if current else loss_value

    def handle_faults(self, progress: Progress, count: int, in_a_row: int) -> None:
        """`count` skipped steps since the last settle(), the longest run `in_a_row` long."""
        self.faults += count
        where = f"at iteration {self.iteration}" if count == 1 else f"{count} times up to iteration {self.iteration}"
        progress.event(f"warning: non-finite loss or gradient {where}; update skipped")
        record = {"iteration": self.iteration, "event": "nonfinite", "lr_scale": self.lr_scale}
        self.metrics_log(record if count == 1 else {**record, "count": count})
        if in_a_row < MAX_CONSECUTIVE_FAULTS:
            return
        if self.last_saved is None or self.recoveries >= MAX_RECOVERIES:
            raise RnnkitError(
                f"training diverged: the loss was not finite {in_a_row} times in a row at iteration "
                f"{self.iteration}; lower --learning_rate (now {self.cfg.learning_rate * self.lr_scale:g}) or --grad_clip"
            )
        ckpt = load_checkpoint(self.last_saved)
        self.model.load_state_dict(ckpt.prefixed("model."))
        unpack_optimizer(self.optimizer, ckpt.tensors, ckpt.meta["optimizer"])
        self.hidden = None
        self.recoveries += 1
        self.lr_scale *= 0.5
        self._run.zero_()
        self._worst_run.zero_()
        progress.event(f"restored {self.last_saved.name}; learning rate scaled by {self.lr_scale:g}")
        self.metrics_log({"iteration": self.iteration, "event": "restored", "checkpoint": self.last_saved.name, "lr_scale": self.lr_scale})


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
