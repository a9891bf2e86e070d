"""The LSTM's training loop, on the language model's machinery: the progress bar
(core/progress.py), metrics.jsonl and loss.png (runs/), checkpoint files (training/
checkpoints.py), and the first Ctrl-C or SIGTERM finishing its batch, saving a checkpoint
and stopping (core/interrupt.py); a second one stops at once (StopNow).

A checkpoint holds the position within the epoch: the batch order depends on (seed, epoch)
only, so a resume skips the batches done and carries on with the same ones."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import pack_optimizer
from ..core.interrupt import StopNow, catch_stop_signals
from ..core.progress import Progress
from ..errors import RnnkitError
from ..runs.metrics import MetricsLog
from ..runs.plots import plot_run_titled
from ..training.checkpoints import mark_best, write_checkpoint
from .config import TrainConfig
from .model import (
    Batcher,
    EventLSTM,
    length_batches,
    lstm_logits,
    softmax,
    weighted_cross_entropy,
)
from .scores import predicted_classes, roc_auc, roc_auc_ovr


@dataclass
class RunState:
    """Where a run is; saved in each checkpoint."""

    iteration: int = 0
    epoch: int = 0  # epochs completed
    epoch_batches: int = 0  # batches of the current epoch done
    epoch_loss: float = 0.0  # loss x sequences summed over them
    epoch_sequences: int = 0
    seconds: float = 0.0  # training time of earlier processes (--resume)
    best_val_loss: float | None = None
    best_iteration: int | None = None
    best_epoch: float | None = None
    history: list[dict] = field(default_factory=list)  # one record per validation


@dataclass
class Outcome:
    stopped: str  # finished | time_budget | interrupted
    stop_signal: int | None
    checkpoint: Path | None
    seconds: float


class LSTMTrainer:
    def __init__(self, cfg: TrainConfig, model: EventLSTM, optimizer: torch.optim.Optimizer, batcher: Batcher,
                 split: dict[str, np.ndarray], y: np.ndarray, class_weights: np.ndarray, header: dict,
                 extra_tensors: dict[str, torch.Tensor], state: RunState):
        self.cfg, self.model, self.optimizer, self.batcher = cfg, model, optimizer, batcher
        self.train_idx, self.val_idx, self.y = split["train"], split["val"], y
        self.device = batcher.device
        self.weights = torch.from_numpy(class_weights).float()
        self.weights_device = self.weights.to(self.device)
        self.y_device = torch.from_numpy(y).to(self.device)
        self.header, self.extra_tensors, self.state = header, extra_tensors, state
        self.batches_per_epoch = math.ceil(len(self.train_idx) / cfg.batch_size)
        self.stop_signal: int | None = None
        self.last_saved: Path | None = None
        self._saved_at = -1  # the iteration of the last checkpoint written

    # ---- the loop ------------------------------------------------------------------------
    def run(self, continuing: bool) -> Outcome:
        cfg, state = self.cfg, self.state
        total = None if cfg.time_budget else cfg.max_epochs * self.batches_per_epoch
        progress = Progress(cfg, total, self.batches_per_epoch)
        metrics = MetricsLog(cfg.folder, resume_at=state.iteration if continuing else None)
        restore_signals = catch_stop_signals(self._request_stop)
        self._t0 = time.perf_counter()
        self._saved_at = state.iteration if continuing else -1
        stopped = "finished"
        try:
            while cfg.time_budget is not None or state.epoch < cfg.max_epochs:
                stopped = self._epoch(progress, metrics)
                if stopped != "finished":
                    break
                self._validate_and_save(progress, metrics)
            if stopped == "time_budget" and state.epoch_batches:
                self._validate_and_save(progress, metrics)
            elif stopped == "interrupted" and self._saved_at != state.iteration:  # else that checkpoint stands
                self.last_saved = self._save(None)
        finally:
            restore_signals()
            progress.close()
            metrics.close()
        return Outcome(stopped, self.stop_signal if stopped == "interrupted" else None, self.last_saved, self.elapsed())

    def elapsed(self) -> float:
        return self.state.seconds + time.perf_counter() - self._t0

    def _request_stop(self, signum: int, frame) -> None:
        if self.stop_signal is not None:  # a second signal: stop now (checkpoint writes are atomic)
            raise StopNow(signum)
        self.stop_signal = signum

    def _epoch(self, progress: Progress, metrics: MetricsLog) -> str:
        """Train the rest of the current epoch; 'finished' at its end, else why it stopped early."""
        cfg, state = self.cfg, self.state
        rng = np.random.default_rng([cfg.seed, state.epoch + 1])  # the order depends on (seed, epoch) only
        self._epoch_t0 = time.perf_counter()
        batches = length_batches(self.train_idx, self.batcher.lengths, cfg.batch_size, rng)
        window = (time.perf_counter(), 0)  # for events per second
        for b in batches[state.epoch_batches:]:
            if self.stop_signal is not None:
                return "interrupted"
            if cfg.time_budget is not None and self.elapsed() >= cfg.time_budget:
                return "time_budget"
            loss = self._step(b)
            state.iteration += 1
            state.epoch_batches += 1
            state.epoch_loss += loss * len(b)
            state.epoch_sequences += len(b)
            window = (window[0], window[1] + int(self.batcher.lengths[b].sum()))
            if state.iteration % cfg.print_every == 0 or state.iteration == 1:
                window = self._log_progress(progress, metrics, loss, window)
            else:
                progress.tick(state.iteration)
        state.epoch, state.epoch_batches = state.epoch + 1, 0
        return "finished"

    def _step(self, b: np.ndarray) -> float:
        self.model.train()
        loss = weighted_cross_entropy(self.model(*self.batcher(b)), self.y_device[b], self.weights_device)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        value = loss.item()  # a host sync each step, as the classifier has always done
        if not math.isfinite(value):
            raise RnnkitError(f"training diverged at iteration {self.state.iteration + 1} (the loss is not finite); "
                              "lower --learning_rate")
        return value

    def _log_progress(self, progress: Progress, metrics: MetricsLog, loss: float, window: tuple[float, int]):
        now, state = time.perf_counter(), self.state
        events_per_s = window[1] / max(now - window[0], 1e-9)
        epoch = state.epoch + state.epoch_batches / self.batches_per_epoch
        metrics.log({"iteration": state.iteration, "epoch": epoch, "train_loss": loss,
                     "lr": self.optimizer.param_groups[0]["lr"], "events_per_s": events_per_s, "time": self.elapsed()})
        progress.update(state.iteration, epoch, loss, events_per_s, self.elapsed())
        return now, 0

    # ---- validation and checkpoints --------------------------------------------------------
    def _validate_and_save(self, progress: Progress, metrics: MetricsLog) -> None:
        state = self.state
        val_loss, accuracy, auc = self._validate()
        improved = state.best_val_loss is None or val_loss < state.best_val_loss
        epoch = state.epoch + state.epoch_batches / self.batches_per_epoch
        record = {"epoch": state.epoch if not state.epoch_batches else round(epoch, 3), "iteration": state.iteration,
                  "train_loss": state.epoch_loss / max(state.epoch_sequences, 1), "val_loss": val_loss,
                  "val_accuracy": accuracy, "val_roc_auc": auc, "seconds": round(self.elapsed(), 3)}
        state.history.append(record)
        if improved:
            state.best_val_loss, state.best_iteration, state.best_epoch = val_loss, state.iteration, record["epoch"]
        if not state.epoch_batches:  # a new epoch starts its own mean; a run stopped mid-epoch keeps it for --resume
            state.epoch_loss, state.epoch_sequences = 0.0, 0
        path = self._save(val_loss)
        if improved:
            mark_best(self.cfg, path)  # NAME_best.json points at this checkpoint's weights
        self.last_saved = path
        metrics.log({"iteration": state.iteration, "epoch": epoch, "train_loss": record["train_loss"],  # the epoch's mean
                     "val_loss": val_loss, "val_accuracy": accuracy, "val_roc_auc": auc, "checkpoint": path.name,
                     "time": self.elapsed()})
        plot_run_titled(self.cfg.folder, f"{self.cfg.folder.resolve().name}: LSTM classifier", "loss (nats per sequence)")
        _show_validation(progress, val_loss, self._epoch_line(record, time.perf_counter() - self._epoch_t0, improved))

    def _epoch_line(self, r: dict, seconds: float, improved: bool) -> str:
        auc = "n/a" if r["val_roc_auc"] is None else f"{r['val_roc_auc']:.3f}"
        return (f"epoch {r['epoch']}/{self.cfg.max_epochs if not self.cfg.time_budget else '-'}  "
                f"train loss {r['train_loss']:.4f}  val loss {r['val_loss']:.4f}  val accuracy {r['val_accuracy']:.3f}  "
                f"val ROC AUC {auc}  ({seconds:.1f}s){'  *best' if improved else ''}")

    def _validate(self) -> tuple[float, float, float | None]:
        logits = lstm_logits(self.model, self.batcher, self.val_idx)
        y = self.y[self.val_idx]
        loss = float(weighted_cross_entropy(torch.from_numpy(logits), torch.from_numpy(y), self.weights))
        if not math.isfinite(loss):
            raise RnnkitError(f"training diverged by iteration {self.state.iteration} (the validation loss is not "
                              "finite); lower --learning_rate")
        proba = softmax(logits)
        accuracy = float(np.mean(predicted_classes(proba) == y))
        return loss, accuracy, roc_auc(y, proba[:, 1]) if proba.shape[1] == 2 else roc_auc_ovr(y, proba)

    def _save(self, val_loss: float | None) -> Path:
        optim_tensors, optim_meta = pack_optimizer(self.optimizer)
        tensors = {**{f"model.{k}": v for k, v in self.model.state_dict().items()}, **self.extra_tensors,
                   **optim_tensors, "rng.torch": torch.get_rng_state()}
        self.state.seconds, self._t0 = self.elapsed(), time.perf_counter()
        meta = {**self.header, "iteration": self.state.iteration, "epoch": self.state.epoch, "val_loss": val_loss,
                "train": {**self.header["train"], **asdict(self.state)}, "optimizer": optim_meta}
        path = Path(f"{self.cfg.checkpoint_name}_{self.state.iteration}.json")
        write_checkpoint(path, tensors, meta, notice=print)
        self._saved_at = self.state.iteration
        return path


def _show_validation(progress: Progress, val_loss: float, line: str) -> None:
    """The bar shows the last validation loss; the epoch's line goes above it (or to stdout)."""
    progress.last_val = val_loss
    if progress.bar is not None:
        progress.postfix["val"] = f"{val_loss:.3f}"
        progress.bar.set_postfix(progress.postfix, refresh=False)
    progress.event(line)
