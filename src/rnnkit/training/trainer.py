"""The training loop: truncated backprop through time over lanes, checkpoints, resume.

One `Trainer` owns the whole state of a run (model, optimizer, data position, carried
hidden state, RNG states, loss history), so a checkpoint is everything needed to carry
on exactly where the run stopped. The update itself is in train_step.py, what a
checkpoint holds in train_checkpoints.py, the run folder in run_folder.py.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core import distributed as dist
from ..core.checkpoint import checkpoint_iteration, load_checkpoint
from ..core.device import (
    CPU_BF16_MAX_RNN_SIZE,
    autocast_dtype,
    check_cpu_bf16,
    cpu_bf16_rnn_failure,
    cpu_has_bf16_math,
    resolve_device,
)
from ..core.interrupt import StopNow, catch_stop_signals, signal_name
from ..core.progress import Progress
from ..errors import InputFileError
from ..model.language_model import LanguageModel, ModelConfig, model_from_checkpoint
from ..runs.metrics import MetricsLog
from ..text.splits import Lanes, check_ids, fit_lanes, open_split
from ..text.vocab import Vocab
from .checkpoints import TrainerCheckpoints
from .config import TrainConfig
from .optimizer import build_optimizer
from .run_folder import prepare_run, resume_config, write_config
from .schedule import LRSchedule
from .schedule import eval_interval as schedule_eval_interval
from .step import (
    MAX_CONSECUTIVE_FAULTS,
    MAX_RECOVERIES,
    TrainerStep,
    total_grad_norm,
    zero_where,
)

__all__ = [  # the names other modules and tests import from here
    "AGREE_EVERY", "MAX_CONSECUTIVE_FAULTS", "MAX_RECOVERIES", "SYNC_EACH_STEP", "TrainConfig", "TrainResult",
    "Trainer", "prepare_run", "resume_config", "total_grad_norm", "train", "zero_where",
]

AGREE_EVERY = 10  # with several ranks: iterations between agreeing on the clock and on a stop signal
SYNC_EACH_STEP = ("cpu",)  # devices where reading the loss every step costs nothing


@dataclass
class TrainResult:
    iteration: int
    best_val_loss: float | None
    last_val_loss: float | None
    checkpoint: Path | None
    best_checkpoint: Path | None
    stopped: str  # finished | time_budget | early_stopping | interrupted
    tokens_per_second: float
    seconds: float
    stop_signal: int | None = None  # interrupted: the signal that stopped it (SIGINT, SIGTERM)


class Trainer(TrainerStep, TrainerCheckpoints):
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.rank, self.world = dist.rank(), dist.world_size()
        self.device = resolve_device(cfg.device, cfg.gpu)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", dist.local_rank())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.vocab = Vocab.load(cfg.input_json)
        self._open_data()
        self.iteration = 0
        self.best_val: float | None = None
        self.last_val: float | None = None
        self.evals_since_best = 0
        self.lr_scale = 1.0  # halved after each recovery from a numerical fault
        self.faults = 0
        self.recoveries = 0
        self.hidden = None
        self.last_saved: Path | None = None
        self.best_path: Path | None = None
        self.stop_signal: int | None = None  # the first Ctrl-C or SIGTERM
        self.elapsed_before = 0.0  # training seconds spent before a resume

        init = self._initial_checkpoint()
        self.model = self._build_model(init)
        # Fused Adam (one kernel) can skip a bad update on the device (`found_inf`), so a
        # step needs no host sync to decide it; elsewhere step() reads the flag instead.
        self.fused = self.device.type in ("cpu", "cuda")
        try:
            self.optimizer = build_optimizer(self.model, cfg.learning_rate, cfg.weight_decay, self.fused)
        except RuntimeError:  # PyTorch before 2.4 has no fused Adam on the CPU
            self.fused = False
            self.optimizer = build_optimizer(self.model, cfg.learning_rate, cfg.weight_decay, False)
        # faults counted on the device between two settle() calls, which read them
        self._faults, self._run, self._worst_run = (torch.zeros((), dtype=torch.int64, device=self.device) for _ in range(3))
        self.ddp_model = dist.wrap(self.model, self.device)
        self.autocast_dtype = autocast_dtype(cfg.amp, self.device)
        if self.device.type == "cpu" and self.autocast_dtype is not None:
            check_cpu_bf16(self.model.config.model_type)
        if self.device.type == "cpu" and not cfg.quiet:
            if self.autocast_dtype is not None and not cpu_has_bf16_math():
                self.notice("note: this CPU has no bfloat16 instructions, so --amp bf16 is emulated and slower than --amp off")
            elif self.autocast_dtype is None and cfg.amp == "auto" and cpu_has_bf16_math() \
                    and self.model.config.rnn_size <= CPU_BF16_MAX_RNN_SIZE \
                    and cpu_bf16_rnn_failure(self.model.config.model_type) is None:
                self.notice("tip: this CPU does bfloat16 in hardware; --amp bf16 trains about 1.7x faster (README: Training in bfloat16)")
        # Under autocast PyTorch runs cuDNN's RNN kernel in fp16 whatever the dtype asked for
        # (aten/src/ATen/cudnn/AutocastRNN.cpp casts to kHalf), so even with bf16 the LSTM's
        # gradients need loss scaling to stay clear of fp16 underflow.
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype is not None and self.device.type == "cuda" else None
        self.schedule = LRSchedule(cfg, self.train_lanes.num_batches)
        if init is not None:
            self._restore(init)
        else:
            self._seed(cfg.seed)

    # ---- setup ------------------------------------------------------------------------
    def _open_data(self) -> None:
        cfg = self.cfg
        train = open_split(cfg.input_h5, "train")
        self.val_data = open_split(cfg.input_h5, "val")
        check_ids(train, self.vocab, f"{cfg.input_h5} (train split)")
        check_ids(self.val_data, self.vocab, f"{cfg.input_h5} (val split)")
        b, t = fit_lanes(len(train), cfg.batch_size, cfg.seq_length, self.world)
        if t != cfg.seq_length or b == 0:
            raise InputFileError(
                f"the training split has only {len(train)} tokens, less than one sequence of "
                f"--seq_length {cfg.seq_length} per lane; use a smaller --seq_length (at most "
                f"{max(1, (len(train) - 1) // self.world)}) or more text"
            )
        if b != cfg.batch_size:
            self.notice(
                f"note: the training split ({len(train)} tokens) is smaller than batch_size x seq_length "
                f"= {cfg.batch_size} x {cfg.seq_length}; using --batch_size {b}"
            )
            cfg.batch_size = b
        pin = self.device.type == "cuda"  # page-locked batches copy to the GPU asynchronously
        self.train_lanes = Lanes(train, cfg.batch_size, cfg.seq_length, self.rank, self.world, pin=pin)
        vb, vt = fit_lanes(len(self.val_data), cfg.batch_size, cfg.seq_length, self.world)
        self.val_lanes = Lanes(self.val_data, vb, vt, self.rank, self.world, pin=pin) if vb else None
        if self.val_lanes is None:
            self.notice("note: the validation split is too small to evaluate; raise --val_frac at preprocess to see a validation loss")

    def _initial_checkpoint(self):
        if not self.cfg.init_from:
            return None
        return load_checkpoint(self.cfg.init_from)

    def _build_model(self, init) -> LanguageModel:
        cfg = self.cfg
        if init is not None:
            model = model_from_checkpoint(init, self.device)
            if model.config.vocab_size != len(self.vocab):
                raise InputFileError(
                    f"the checkpoint's vocabulary has {model.config.vocab_size} tokens, {cfg.input_json} has "
                    f"{len(self.vocab)}: preprocess the new text with --vocab pointing at the old JSON"
                )
            return model
        mc = ModelConfig(len(self.vocab), cfg.model_type, cfg.wordvec_size, cfg.rnn_size, cfg.num_layers, cfg.dropout, cfg.batchnorm)
        torch.manual_seed(cfg.seed)  # same initial weights for the same seed, whatever else ran first
        return LanguageModel(mc).to(self.device)

    # ---- the loop --------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0 if hasattr(self, "_t0") else 0.0)

    def total_iterations(self) -> int | None:
        if self.cfg.max_iters is not None:
            return self.cfg.max_iters
        if self.cfg.time_budget is not None:
            return None
        return self.cfg.max_epochs * self.train_lanes.num_batches

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean loss per token over the whole validation split (all ranks combined)."""
        if self.val_lanes is None:
            return None
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        hidden = None
        for i in range(len(self.val_lanes)):
            x, y = (t.to(self.device, non_blocking=True) for t in self.val_lanes.batch(i))
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                logits, hidden = self.model(x, hidden)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1) - 1, reduction="sum")
            total[0] += loss.double()
            total[1] += y.numel()
        dist.all_reduce_sum(total)
        return float(total[0] / total[1])

    def metrics_log(self, record: dict) -> None:
        if self.rank == 0:
            self.metrics.log(record)

    def notice(self, message: str) -> None:
        if self.rank == 0:
            print(message, file=sys.stderr, flush=True)

    def checkpoint_and_evaluate(self, progress: Progress) -> None:
        val = self.evaluate()
        if val is not None and not math.isfinite(val):  # weights are finite (save checks), logits overflowed
            progress.event(f"warning: the validation loss at iteration {self.iteration} is not finite; recorded as none")
            val = None
        self.last_val = val
        improved = val is not None and (self.best_val is None or val < self.best_val)
        if improved:
            self.best_val, self.evals_since_best = val, 0
        elif val is not None:
            self.evals_since_best += 1
        path = self.save(val)
        if improved and path is not None:
            self.mark_best(path)
        self.metrics_log({"iteration": self.iteration, "epoch": self.iteration / self.train_lanes.num_batches,
                          "val_loss": val, "checkpoint": path.name if path else None, "time": self.elapsed()})
        progress.validation(self.iteration, val, path)
        if self.rank == 0:
            from ..runs.plots import plot_run

            plot_run(self.cfg.run_dir)

    def run(self) -> TrainResult:
        cfg = self.cfg
        self.metrics = MetricsLog(cfg.run_dir, resume_at=None if cfg.reset_iterations or not cfg.init_from else self.iteration, tensorboard=cfg.tensorboard) if self.rank == 0 else None
        total = self.total_iterations()
        progress = Progress(cfg, total, self.train_lanes.num_batches, enabled=self.rank == 0)
        tokens_per_step = cfg.batch_size * cfg.seq_length * self.world
        stopped = "finished"
        eval_interval = schedule_eval_interval(cfg.time_budget) if cfg.time_budget else None
        # Reading the loss is a host sync: free on the CPU, so done every step there; on a
        # GPU (or with several ranks) only when logging or checkpointing needs it.
        sync_each_step = self.device.type in SYNC_EACH_STEP and self.world == 1
        # Ranks agree on their clock and on a stop signal every step alone, every few with others.
        agree_every = 1 if self.world == 1 else AGREE_EVERY
        restore_signals = catch_stop_signals(self._request_stop)
        self._t0 = time.perf_counter()
        t_window, n_window = time.perf_counter(), 0
        clock, _ = dist.agree(self.elapsed(), False)
        last_eval_time, eval_due, loss = clock, False, None
        try:
            while True:
                if total is not None and self.iteration >= total:
                    break
                if self.iteration % agree_every == 0:
                    clock, stop = dist.agree(self.elapsed(), self.stop_signal is not None)
                    if cfg.time_budget is not None and clock >= cfg.time_budget:
                        stopped = "time_budget"
                        break
                    if stop:
                        stopped = "interrupted"
                        break
                    eval_due = eval_interval is not None and clock - last_eval_time >= eval_interval
                batch_index = self.iteration % self.train_lanes.num_batches
                if batch_index == 0:
                    self.hidden = None  # a new epoch starts every lane from its beginning
                self.iteration += 1
                lr = self.schedule.lr(self.iteration, clock) * self.lr_scale
                x, y = (t.to(self.device, non_blocking=True) for t in self.train_lanes.batch(batch_index))
                loss = self.step(x, y, lr)
                n_window += 1
                log_due = self.iteration % cfg.print_every == 0 or self.iteration == 1
                due = eval_due or (cfg.checkpoint_every > 0 and self.iteration % cfg.checkpoint_every == 0)
                if not (sync_each_step or log_due or due):
                    progress.tick(self.iteration)
                    continue
                loss_value, loss = self.settle(loss, progress), None
                if loss_value is None:  # skipped as non-finite
                    continue
                if log_due:
                    now = time.perf_counter()
                    tps = n_window * tokens_per_step / max(now - t_window, 1e-9)
                    t_window, n_window = now, 0
                    epoch = self.iteration / self.train_lanes.num_batches
                    self.metrics_log({"iteration": self.iteration, "epoch": epoch, "train_loss": loss_value, "lr": lr,
                                      "tokens_per_s": tps, "time": self.elapsed()})
                    progress.update(self.iteration, epoch, loss_value, tps, self.elapsed())
                else:
                    progress.tick(self.iteration)
                if due:
                    self.checkpoint_and_evaluate(progress)
                    last_eval_time, _ = dist.agree(self.elapsed(), False)
                    eval_due = False
                    if cfg.early_stopping and self.evals_since_best >= cfg.early_stopping:
                        stopped = "early_stopping"
                        progress.event(f"early stopping: no better validation loss in {cfg.early_stopping} evaluations")
                        break
            if loss is not None:  # faults since the last read are reported before the last checkpoint
                self.settle(loss, progress)
            if self.last_saved is None or checkpoint_iteration(self.last_saved) != self.iteration:
                self.checkpoint_and_evaluate(progress)
        finally:
            restore_signals()
            progress.close()
            if self.metrics is not None:
                self.metrics.close()
        seconds = time.perf_counter() - self._t0
        if stopped == "interrupted":
            how = "interrupted" if self.stop_signal in (None, signal.SIGINT) else f"stopped by {signal_name(self.stop_signal)}"
            self.notice(f"{how}: saved {self.last_saved}; continue with: rnnkit train --resume {cfg.run_dir}")
        return TrainResult(
            iteration=self.iteration, best_val_loss=self.best_val, last_val_loss=self.last_val,
            checkpoint=self.last_saved, best_checkpoint=self.best_path, stopped=stopped,
            tokens_per_second=progress.mean_tokens_per_second(), seconds=seconds,
            stop_signal=self.stop_signal if stopped == "interrupted" else None,
        )

    def _request_stop(self, signum: int, frame) -> None:
        if self.stop_signal is not None:  # a second signal: stop now (checkpoint writes are atomic)
            raise StopNow(signum)
        self.stop_signal = signum


# ---- the API entry point ------------------------------------------------------------------
def train(config: TrainConfig | None = None, **kwargs) -> TrainResult:
    """Python API for `rnnkit train`: `rnnkit.train(input_txt=["my.txt"], max_iters=200)`."""
    cfg = config or TrainConfig(**kwargs)
    device = resolve_device(cfg.device, cfg.gpu)
    if device.type == "cpu" and autocast_dtype(cfg.amp, device) is not None:
        check_cpu_bf16(cfg.model_type)  # before preprocessing writes anything; Trainer checks a resumed model again
    dist.init(device.type)
    trainer = None
    try:
        cfg = prepare_run(cfg)
        trainer = Trainer(cfg)
        if dist.rank() == 0:
            write_config(cfg)
        return trainer.run()
    finally:
        del trainer  # DDP holds the process group: let go of it before the group goes
        dist.shutdown()
