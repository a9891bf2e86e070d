"""The training loop: truncated backprop through time over lanes, checkpoints, resume.

One `Trainer` owns the whole state of a run (model, optimizer, data position, carried
hidden state, RNG states, loss history), so a checkpoint is everything needed to carry
on exactly where the run stopped.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed as dist
from .atomic import atomic_write_text, ensure_writable_folder
from .checkpoint import latest_checkpoint, load_checkpoint, pack_optimizer, read_meta, remove_checkpoints, save_checkpoint, unpack_optimizer
from .data import Lanes, check_ids, fit_lanes, open_split
from .device import resolve_device
from .errors import ConfigError, InputFileError, OutputExistsError, RnnkitError
from .metrics import MetricsLog
from .model import LanguageModel, ModelConfig, detach_state, model_from_checkpoint, state_from_tensors, state_tensors
from .progress import Progress
from .schedule import LRSchedule
from .schedule import eval_interval as schedule_eval_interval
from .vocab import Vocab

MAX_CONSECUTIVE_FAULTS = 3
MAX_RECOVERIES = 3
AGREE_EVERY = 10  # with several ranks: iterations between agreeing on the clock and on Ctrl-C
SYNC_EACH_STEP = ("cpu",)  # devices where reading the loss every step costs nothing


@dataclass
class TrainConfig:
    # data (torch-rnn names)
    input_h5: str | None = None
    input_json: str | None = None
    input_txt: list[str] | None = None  # raw text, preprocessed into the run folder first
    batch_size: int = 50
    seq_length: int = 50
    # model
    model_type: str = "lstm"
    wordvec_size: int = 64
    rnn_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    batchnorm: bool = False
    # optimization
    max_epochs: int = 50
    max_iters: int | None = None
    time_budget: float | None = None  # seconds; the learning rate anneals to the budget
    learning_rate: float = 2e-3
    grad_clip: float = 5.0
    lr_decay_every: int = 5
    lr_decay_factor: float = 0.5
    weight_decay: float = 0.0
    early_stopping: int | None = None  # evaluations without improvement before stopping
    # output
    print_every: int = 1
    checkpoint_every: int = 1000
    checkpoint_name: str = "cv/checkpoint"
    init_from: str | None = None
    reset_iterations: bool = True
    force: bool = False
    quiet: bool = False
    progress: str = "auto"  # auto | bar | lines | none
    tensorboard: bool = False  # also write TensorBoard event files into RUN_DIR/tensorboard
    speed_benchmark: bool = False
    memory_benchmark: bool = False
    # backend
    device: str = "auto"
    gpu: int | None = None
    amp: str = "auto"  # auto | off | bf16 | fp16 (CUDA only)
    seed: int = 123
    threads: int | None = None
    fault_iterations: tuple[int, ...] = ()  # tests: poison the loss at these iterations
    auto_choice: dict = field(default_factory=dict)  # what `auto` sizes resolved to, and why

    def __post_init__(self) -> None:
        positive = ("batch_size", "seq_length", "wordvec_size", "rnn_size", "num_layers", "max_epochs", "print_every")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"--{name} must be a positive whole number, got {v}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be at least 0 and below 1 (0.2 to 0.5 is usual), got {self.dropout}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning_rate must be greater than 0, got {self.learning_rate}")
        if self.grad_clip < 0:
            raise ConfigError(f"--grad_clip must be 0 (off) or more, got {self.grad_clip}")
        if self.lr_decay_every < 0 or not 0 < self.lr_decay_factor <= 1:
            raise ConfigError("--lr_decay_every must be >= 0 and --lr_decay_factor in (0, 1]")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight_decay must be 0 or more, got {self.weight_decay}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint_every must be 0 (only at the end) or more, got {self.checkpoint_every}")
        if self.max_iters is not None and self.max_iters <= 0:
            raise ConfigError(f"--max_iters must be positive, got {self.max_iters}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError("--time_budget must be positive")
        if self.early_stopping is not None and self.early_stopping <= 0:
            raise ConfigError("--early_stopping must be a positive number of evaluations")
        if self.model_type not in ("lstm", "gru", "rnn"):
            raise ConfigError(f"--model_type {self.model_type!r} is unknown; use lstm, gru or rnn")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"--amp {self.amp!r}: use auto, off, bf16 or fp16")
        if self.progress not in ("auto", "bar", "lines", "none"):
            raise ConfigError(f"--progress {self.progress!r}: use auto, bar, lines or none")
        if not self.checkpoint_name or self.checkpoint_name.endswith(("/", os.sep)):
            raise ConfigError("--checkpoint_name needs a base file name, e.g. cv/checkpoint")
        if not 0 <= self.seed < 2**31:  # NumPy takes seeds below 2**32, and resumes seed with seed + iteration
            raise ConfigError(f"--seed must be a whole number from 0 to {2**31 - 1}, got {self.seed}")

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoint_name).parent

    @property
    def prefix(self) -> str:
        return Path(self.checkpoint_name).name

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("fault_iterations")
        return d


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


class Trainer:
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
        self.stop_requested = False
        self.elapsed_before = 0.0  # training seconds spent before a resume

        init = self._initial_checkpoint()
        self.model = self._build_model(init)
        # Fused Adam (one kernel) can skip a bad update on the device (`found_inf`), so a
        # step needs no host sync to decide it; elsewhere step() reads the flag instead.
        self.fused = self.device.type in ("cpu", "cuda")
        adam = lambda **fused: torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate,  # noqa: E731
                                                weight_decay=cfg.weight_decay, **fused)
        try:
            self.optimizer = adam(fused=True) if self.fused else adam()
        except RuntimeError:  # PyTorch before 2.4 has no fused Adam on the CPU
            self.fused, self.optimizer = False, adam()
        # faults counted on the device between two settle() calls, which read them
        self._faults, self._run, self._worst_run = (torch.zeros((), dtype=torch.int64, device=self.device) for _ in range(3))
        self.ddp_model = dist.wrap(self.model, self.device)
        self.autocast_dtype = self._pick_amp()
        # Under autocast PyTorch runs cuDNN's RNN kernel in fp16 whatever the dtype asked for
        # (aten/src/ATen/cudnn/AutocastRNN.cpp casts to kHalf), so even with bf16 the LSTM's
        # gradients need loss scaling to stay clear of fp16 underflow.
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype is not None else None
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

    def _pick_amp(self):
        if self.device.type != "cuda" or self.cfg.amp == "off":
            return None
        if self.cfg.amp == "fp16":
            return torch.float16
        if self.cfg.amp == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16

    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed + self.rank)

    # ---- checkpoint state ---------------------------------------------------------------
    def _restore(self, ckpt) -> None:
        meta = ckpt.meta
        if "optimizer" in meta:
            try:
                unpack_optimizer(self.optimizer, ckpt.tensors, meta["optimizer"])
            except (ValueError, KeyError, RuntimeError) as e:
                raise RnnkitError(f"{ckpt.path}: its optimizer state does not fit this model ({e})") from None
            for group in self.optimizer.param_groups:  # flags given now win over the saved ones
                group["weight_decay"] = self.cfg.weight_decay
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

    # ---- the loop --------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0 if hasattr(self, "_t0") else 0.0)

    def total_iterations(self) -> int | None:
        if self.cfg.max_iters is not None:
            return self.cfg.max_iters
        if self.cfg.time_budget is not None:
            return None
        return self.cfg.max_epochs * self.train_lanes.num_batches

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
            from .plots import plot_run

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
        # Ranks agree on their clock and on Ctrl-C every step alone, every few with others.
        agree_every = 1 if self.world == 1 else AGREE_EVERY
        previous = signal.signal(signal.SIGINT, self._request_stop) if _main_thread() else None
        self._t0 = time.perf_counter()
        t_window, n_window = time.perf_counter(), 0
        clock, _ = dist.agree(self.elapsed(), False)
        last_eval_time, eval_due, loss = clock, False, None
        try:
            while True:
                if total is not None and self.iteration >= total:
                    break
                if self.iteration % agree_every == 0:
                    clock, stop = dist.agree(self.elapsed(), self.stop_requested)
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
            if self.last_saved is None or checkpoint_iteration_of(self.last_saved) != self.iteration:
                self.checkpoint_and_evaluate(progress)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            progress.close()
            if self.metrics is not None:
                self.metrics.close()
        seconds = time.perf_counter() - self._t0
        if stopped == "interrupted":
            self.notice(f"interrupted: saved {self.last_saved}; continue with: rnnkit train --resume {cfg.run_dir}")
        return TrainResult(
            iteration=self.iteration, best_val_loss=self.best_val, last_val_loss=self.last_val,
            checkpoint=self.last_saved, best_checkpoint=self.best_path, stopped=stopped,
            tokens_per_second=progress.mean_tokens_per_second(), seconds=seconds,
        )

    def _request_stop(self, signum, frame) -> None:
        if self.stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.stop_requested = True


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


def checkpoint_iteration_of(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[-1])


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ---- the API entry point ------------------------------------------------------------------
def prepare_run(cfg: TrainConfig) -> TrainConfig:
    """Check the run folder, preprocess raw text into it, write config.json."""
    run_dir = cfg.run_dir
    dist.on_rank0(_make_run_dir, run_dir)  # on every rank: the broadcast inside pairs the ranks up
    ensure_writable_folder(run_dir, f"--checkpoint_name {cfg.checkpoint_name}")
    existing = latest_checkpoint(run_dir, cfg.prefix)
    resuming = cfg.init_from and not cfg.reset_iterations and Path(cfg.init_from).resolve().parent == run_dir.resolve()
    if existing is not None and not cfg.force and not resuming:
        raise OutputExistsError(
            f"{run_dir} already holds checkpoints of an earlier run ({existing.name}); continue it with "
            f"--resume {run_dir}, start a new one with --checkpoint_name other/checkpoint, or pass --force to overwrite"
        )
    if existing is not None and not resuming:  # --force: a later --resume must not find the old run's checkpoints
        dist.on_rank0(remove_checkpoints, run_dir, cfg.prefix)
    if dist.rank() == 0:  # half-written files that a killed run left behind
        for tmp in run_dir.glob(f".{cfg.prefix}_*.tmp"):
            tmp.unlink(missing_ok=True)
    if cfg.input_txt:
        from .corpus import preprocess

        cfg.input_h5 = str(run_dir / "corpus.h5")
        cfg.input_json = str(run_dir / "corpus.json")
        dist.on_rank0(preprocess, input_txt=cfg.input_txt, output_h5=cfg.input_h5, output_json=cfg.input_json, quiet=cfg.quiet)
    if not cfg.input_h5 or not cfg.input_json:
        raise ConfigError("give --input_h5 and --input_json (from rnnkit preprocess), or a text file: rnnkit train my.txt")
    return cfg


def _make_run_dir(run_dir: Path) -> None:
    if run_dir.exists():
        return  # a file there is reported by ensure_writable_folder
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise InputFileError(f"cannot create the run folder {run_dir} ({e.strerror}); choose another --checkpoint_name") from None


def resume_config(run_or_checkpoint: str, overrides: dict[str, Any]) -> TrainConfig:
    """The config of the run in a folder (or checkpoint), continuing from its newest checkpoint."""
    p = Path(run_or_checkpoint)
    ckpt = latest_checkpoint(p) if p.is_dir() else Path(run_or_checkpoint)
    if ckpt is None:
        raise InputFileError(
            f"{p} holds no checkpoint to resume from (a run saves its first after --checkpoint_every "
            "iterations); give the run folder, or start the run again"
        )
    meta = read_meta(ckpt if ckpt.suffix == ".json" else ckpt.with_suffix(".json"))
    options = dict(meta.get("options", {}))
    options.update({k: v for k, v in overrides.items() if v is not None})
    options.update(init_from=str(ckpt), reset_iterations=False, input_txt=None, force=False)
    # the run folder may have been moved or copied: keep writing beside the checkpoint
    run_dir = ckpt.parent
    options["checkpoint_name"] = str(run_dir / Path(options.get("checkpoint_name") or "checkpoint").name)
    for key, local in (("input_h5", "corpus.h5"), ("input_json", "corpus.json")):
        saved = meta.get("data", {}).get(key, options.get(key))
        if (not saved or not Path(saved).exists()) and (run_dir / local).exists():
            saved = str(run_dir / local)
        options[key] = saved
    known = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in options.items() if k in known})


def train(config: TrainConfig | None = None, **kwargs) -> TrainResult:
    """Python API for `rnnkit train`: `rnnkit.train(input_txt=["my.txt"], max_iters=200)`."""
    cfg = config or TrainConfig(**kwargs)
    dist.init(resolve_device(cfg.device, cfg.gpu).type)
    trainer = None
    try:
        cfg = prepare_run(cfg)
        trainer = Trainer(cfg)
        if dist.rank() == 0:
            atomic_write_text(cfg.run_dir / "config.json", _json_dumps(cfg.to_dict()))
        return trainer.run()
    finally:
        del trainer  # DDP holds the process group: let go of it before the group goes
        dist.shutdown()


def _json_dumps(d: dict) -> str:
    import json

    return json.dumps(d, indent=1, default=str)
