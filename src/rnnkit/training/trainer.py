"""The training loop: truncated backprop through time over lanes, evaluations, checkpoints.

A `Trainer` builds a TrainState (state.py: everything a checkpoint holds) and a Stepper
(step.py: one update), then runs the loop; checkpoints.py writes the files and
run_folder.py prepares the folder and resumes.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core import distributed as dist
from ..core.checkpoint import Checkpoint, checkpoint_iteration, load_checkpoint
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
from ..errors import InputFileError, RnnkitError
from ..model.language_model import LanguageModel, ModelConfig, model_from_checkpoint
from ..runs.metrics import MetricsLog
from ..text.items import item_batches, list_items
from ..text.splits import Lanes, check_ids, fit_lanes, open_split
from ..text.vocab import Vocab
from .auto import resolve_auto
from .checkpoints import (
    checkpoint_path,
    mark_best,
    preprocessed_sources,
    run_header,
    weights_are_finite,
    write_checkpoint,
)
from .config import TrainConfig
from .dropout_watch import DropoutWatch
from .mixture import Counted
from .mixture import count as count_ngrams
from .mixture import describe as describe_mixture
from .mixture import fit as fit_ngrams
from .mixture import mix_into as mix_ngrams
from .optimizer import build_optimizer, set_weight_decay
from .run_folder import prepare_run, write_config
from .schedule import LRSchedule
from .schedule import eval_interval as schedule_eval_interval
from .state import (
    NEW_TOKEN_PRIOR,
    TrainState,
    grow_vocabulary,
    seed_everything,
    vocabulary_growth,
)
from .step import Faults, Stepper
from .threads import ThreadWatch

AGREE_EVERY = 10  # with several ranks: iterations between agreeing on the clock and on a stop signal
SYNC_EACH_STEP = ("cpu",)  # devices where reading the loss every step costs nothing
MAX_CONSECUTIVE_FAULTS = 3  # skipped updates in a row before rolling back to the last checkpoint
MAX_RECOVERIES = 3
PLATEAU_FACTOR = 0.3  # --lr_plateau: the learning rate after each return to the best checkpoint
NEW_LINES_SAMPLED = 200  # a list corpus: lines sampled at the end to tell how many are new


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
    mixed_val_loss: float | None = None  # the best checkpoint with its n-gram mixture (--ngram), if one was kept


@dataclass
class Data:
    train: Lanes
    val: Lanes | None
    batch_size: int  # --batch_size, or fewer lanes where the training split is short
    val_items: list | None = None  # a list corpus: this rank's validation lines, scored one by one
    newline_id: int | None = None
    val_ids: np.ndarray | None = None  # the whole validation split


def open_data(cfg: TrainConfig, vocab: Vocab, device: torch.device, notice) -> Data:
    """The training and validation lanes of this rank, checked against the vocabulary."""
    rank, world = dist.rank(), dist.world_size()
    train = open_split(cfg.input_h5, "train")
    whole_val = open_split(cfg.input_h5, "val")
    check_ids(train, vocab, f"{cfg.input_h5} (train split)")
    check_ids(whole_val, vocab, f"{cfg.input_h5} (val split)")
    val = whole_val[:cfg.eval_tokens] if cfg.eval_tokens else whole_val
    if len(val) < len(whole_val) and not cfg.quiet:
        notice(f"note: evaluations read the first {len(val):,} of the validation split's {len(whole_val):,} tokens "
               "(--eval_tokens)")
    b, t = fit_lanes(len(train), cfg.batch_size, cfg.seq_length, world)
    if t != cfg.seq_length or b == 0:
        raise InputFileError(
            f"the training split has only {len(train)} tokens, less than one sequence of "
            f"--seq_length {cfg.seq_length} per lane; use a smaller --seq_length (at most "
            f"{max(1, (len(train) - 1) // world)}) or more text"
        )
    if b != cfg.batch_size:
        notice(f"note: the training split ({len(train)} tokens) is smaller than batch_size x seq_length "
               f"= {cfg.batch_size} x {cfg.seq_length}; using --batch_size {b}")
    pin = device.type == "cuda"  # page-locked batches copy to the GPU asynchronously
    vb, vt = fit_lanes(len(val), b, cfg.seq_length, world)
    val_lanes = Lanes(val, vb, vt, rank, world, pin=pin) if vb else None
    newline_id = vocab.id_of("\n")
    indents = tuple(i for i in (vocab.id_of(" "), vocab.id_of("\t")) if i is not None)
    items = list_items(val, newline_id, indents)
    if val_lanes is None and items is None:
        notice("note: the validation split is too small to evaluate; raise --val_frac at preprocess to see a validation loss")
    return Data(Lanes(train, b, cfg.seq_length, rank, world, pin=pin), val_lanes, b,
                items[rank::world] if items is not None else None, newline_id, whole_val)


class Trainer:
    def __init__(self, cfg: TrainConfig, setup_seconds: float = 0.0):
        """setup_seconds: time already spent on this run (preprocessing, auto's probe), which
        counts in a time budget."""
        self.rank = dist.rank()
        self.device = resolve_device(cfg.device, cfg.gpu)
        if self.device.type == "cuda" and dist.world_size() > 1:
            self.device = torch.device("cuda", dist.local_rank())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.vocab = Vocab.load(cfg.input_json)
        self.data = open_data(cfg, self.vocab, self.device, self.notice)
        self.cfg = cfg = replace(cfg, batch_size=self.data.batch_size)  # the caller's config is left as it was
        init = self._fit_vocabulary(load_checkpoint(cfg.init_from)) if cfg.init_from else None
        self.cfg = cfg = replace(cfg, parent=self._parent_of(init))
        model = self._build_model(init)
        # Fused Adam (one kernel) can skip a bad update on the device (`found_inf`), so a
        # step needs no host sync to decide it; elsewhere the step reads the flag instead.
        fused = self.device.type in ("cpu", "cuda")
        try:
            optimizer = build_optimizer(model, cfg.learning_rate, cfg.weight_decay, fused)
        except RuntimeError:  # PyTorch before 2.4 has no fused Adam on the CPU
            fused, optimizer = False, build_optimizer(model, cfg.learning_rate, cfg.weight_decay, False)
        self.state = TrainState(model, optimizer)
        self.stepper = Stepper(self.state, dist.wrap(model, self.device), self._precision(),
                               self._scaler(), fused, cfg.grad_clip)
        self.schedule = LRSchedule(cfg, self.data.train.num_batches)
        tried = cfg.auto_choice.get("threads_tried")  # auto measured the threads: keep measuring
        watched = tried and self.device.type == "cpu" and dist.world_size() == 1
        self.thread_watch = ThreadWatch(max(tried), self.notice) if watched else None
        auto_dropout = cfg.time_budget is not None and "dropout" in cfg.auto_choice
        self.dropout_watch = DropoutWatch(cfg.time_budget, len(self.data.train.data), model.config.dropout) if auto_dropout else None
        self.last_saved: Path | None = None
        self.stop_signal: int | None = None  # the first Ctrl-C or SIGTERM
        self.recoveries = 0
        if init is not None:
            self._restore(init)
        else:
            seed_everything(cfg.seed)
        if init is None or cfg.reset_iterations:
            self.state.elapsed_before = setup_seconds

    # ---- setup ------------------------------------------------------------------------
    @property
    def model(self) -> LanguageModel:
        return self.state.model

    def _fit_vocabulary(self, init: Checkpoint) -> Checkpoint:
        """The checkpoint to start from: grown to the data's vocabulary where that extends its own
        (fine-tuning on text with new characters); a one-line error where the ids changed meaning."""
        size = init.meta.get("model", {}).get("vocab_size")
        if "vocab" not in init.meta:  # no vocabulary recorded: only the sizes can be compared
            if size != len(self.vocab):
                raise InputFileError(f"{init.path} has {size} tokens, {self.cfg.input_json} {len(self.vocab)}; "
                                     "preprocess the new text with --vocab pointing at the old JSON")
            return init
        added = vocabulary_growth(Vocab.from_json_dict(init.meta["vocab"]), self.vocab, init.path, self.cfg.input_json)
        if not added:
            return init
        names = self.vocab.describe_tokens(added[:10]) + ([f"and {len(added) - 10} more"] if len(added) > 10 else [])
        self.notice(f"fine-tuning: the model grows from {size} to {len(self.vocab)} tokens ({', '.join(names)}); "
                    f"new input rows start at the mean of the old ones, new outputs unlikely "
                    f"(~{NEW_TOKEN_PRIOR:g} each or less)")
        return grow_vocabulary(init, len(self.vocab), self.cfg.seed)

    def _parent_of(self, init: Checkpoint | None) -> str | None:
        """The checkpoint this run started from (NAME_best.json named as the checkpoint it stands
        for, which stays); a resumed run keeps the one it started from."""
        if init is None:
            return None
        if not self.cfg.reset_iterations and init.path.resolve().parent == self.cfg.run_dir.resolve():
            return init.meta.get("parent")
        weights = init.meta.get("weights_file")
        numbered = init.path.with_name(Path(weights).stem + ".json") if weights else init.path
        return str((numbered if numbered.is_file() else init.path).resolve())

    def _build_model(self, init: Checkpoint | None) -> LanguageModel:
        cfg = self.cfg
        if init is not None:
            return model_from_checkpoint(init, self.device)
        mc = ModelConfig(len(self.vocab), cfg.model_type, cfg.wordvec_size, cfg.rnn_size, cfg.num_layers, cfg.dropout, cfg.batchnorm)
        torch.manual_seed(cfg.seed)  # same initial weights for the same seed, whatever else ran first
        return LanguageModel(mc).to(self.device)

    def _precision(self) -> torch.dtype | None:
        """The autocast dtype for --amp; on a CPU, checks that bf16 can run and says when it would help."""
        cfg, model_config = self.cfg, self.model.config
        dtype = autocast_dtype(cfg.amp, self.device)
        if self.device.type != "cpu":
            return dtype
        if dtype is not None:
            check_cpu_bf16(model_config.model_type)
        if cfg.quiet:
            return dtype
        if dtype is not None and not cpu_has_bf16_math():
            self.notice("note: this CPU has no bfloat16 instructions, so --amp bf16 is emulated and slower than --amp off")
        elif dtype is None and cfg.amp == "auto" and cpu_has_bf16_math() and model_config.rnn_size <= CPU_BF16_MAX_RNN_SIZE \
                and cpu_bf16_rnn_failure(model_config.model_type) is None:
            self.notice("tip: this CPU does bfloat16 in hardware; --amp bf16 trains about 1.7x faster (docs/performance.md: Training in bfloat16)")
        return dtype

    def _scaler(self) -> torch.amp.GradScaler | None:
        # Under autocast PyTorch runs cuDNN's RNN kernel in fp16 whatever the dtype asked for
        # (aten/src/ATen/cudnn/AutocastRNN.cpp casts to kHalf), so even with bf16 the LSTM's
        # gradients need loss scaling to stay clear of fp16 underflow.
        on_cuda = self.device.type == "cuda" and autocast_dtype(self.cfg.amp, self.device) is not None
        return torch.amp.GradScaler("cuda") if on_cuda else None

    def _restore(self, ckpt) -> None:
        cfg, state = self.cfg, self.state
        if cfg.reset_iterations:
            state.load_weights_and_optimizer(ckpt.tensors, ckpt.meta, str(ckpt.path))
            seed_everything(cfg.seed)
        else:
            state.load_state_dict(ckpt.tensors, ckpt.meta, cfg.batch_size, cfg.seed, self.notice, ckpt.path.name)
        set_weight_decay(state.optimizer, cfg.weight_decay)  # flags given now win over the saved ones
        for group in state.optimizer.param_groups:
            group["fused"] = True if self.stepper.fused else None  # the step relies on fused Adam's found_inf

    # ---- what the loop uses --------------------------------------------------------------
    def elapsed(self) -> float:
        return self.state.elapsed_before + (time.perf_counter() - self._t0 if hasattr(self, "_t0") else 0.0)

    def total_iterations(self) -> int | None:
        if self.cfg.max_iters is not None:
            return self.cfg.max_iters
        if self.cfg.time_budget is not None:
            return None
        return self.cfg.max_epochs * self.data.train.num_batches

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean loss per token over the whole validation split (all ranks combined): line by
        line for a list corpus, else along lanes that carry the state across batches."""
        if self.data.val_items is not None:
            return self._evaluate_items()
        lanes = self.data.val
        if lanes is None:
            return None
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        hidden = None
        for i in range(len(lanes)):
            x, y = (t.to(self.device, non_blocking=True) for t in lanes.batch(i))
            with self.stepper.autocast():
                logits, hidden = self.model(x, hidden)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1) - 1, reduction="sum")
            total[0] += loss.double()
            total[1] += y.numel()
        dist.all_reduce_sum(total)
        return float(total[0] / total[1])

    def _evaluate_items(self) -> float:
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        for x, y, mask in item_batches(self.data.val_items, self.data.newline_id):
            x, y, mask = x.to(self.device), y.to(self.device), mask.to(self.device)
            with self.stepper.autocast():
                logits, _ = self.model(x)  # each batch from a zero state: items stand alone
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1) - 1, reduction="none")
            total[0] += (loss * mask.reshape(-1)).sum().double()
            total[1] += mask.sum()
        dist.all_reduce_sum(total)
        return float(total[0] / total[1])

    def metrics_log(self, record: dict) -> None:
        if self.rank == 0:
            self.metrics.log(record)

    def notice(self, message: str) -> None:
        if self.rank == 0:
            print(message, file=sys.stderr, flush=True)

    def save(self, val_loss: float | None) -> Path | None:
        """Write checkpoint NAME_ITER. Rank 0 writes; every rank gets the path (for recovery)."""
        if not weights_are_finite(self.model):
            self.notice("warning: weights are not finite; no checkpoint written")
            return None
        tensors, meta = self.state.state_dict(self.elapsed())  # every rank: it gathers
        path = checkpoint_path(self.cfg, self.state.iteration)
        self.last_saved = path
        if self.rank == 0:
            header = run_header(self.cfg, self.vocab, self.state, self.data.train.num_batches)
            lineage = {"parent": self.cfg.parent} if self.cfg.parent else {}
            write_checkpoint(path, tensors, {**header, **meta, **lineage, "val_loss": val_loss}, self.notice)
        return path

    def checkpoint_and_evaluate(self, progress: Progress) -> None:
        state = self.state
        val = self.evaluate()
        if val is not None and not math.isfinite(val):  # weights are finite (save checks), logits overflowed
            progress.event(f"warning: the validation loss at iteration {state.iteration} is not finite; recorded as none", important=True)
            val = None
        state.last_val = val
        improved = val is not None and (state.best_val is None or val < state.best_val)
        if improved:
            state.best_val, state.evals_since_best = val, 0
        elif val is not None:
            state.evals_since_best += 1
        path = self.save(val)
        if improved and path is not None:
            state.best_checkpoint = path.name
            if self.rank == 0:
                mark_best(self.cfg, path)
        self.metrics_log({"iteration": state.iteration, "epoch": state.iteration / self.data.train.num_batches,
                          "val_loss": val, "checkpoint": path.name if path else None, "time": self.elapsed()})
        progress.validation(state.iteration, val, path)
        if self.rank == 0:
            from ..runs.plots import plot_run

            plot_run(self.cfg.run_dir)

    def handle_faults(self, progress: Progress, faults: Faults) -> None:
        """Skipped updates: logged; too many in a row roll back to the last checkpoint at half the
        learning rate, and too many rollbacks (or none possible) stop the run."""
        state = self.state
        state.faults += faults.count
        where = f"at iteration {state.iteration}" if faults.count == 1 else f"{faults.count} times up to iteration {state.iteration}"
        progress.event(f"warning: non-finite loss or gradient {where}; update skipped", important=True)
        record = {"iteration": state.iteration, "event": "nonfinite", "lr_scale": state.lr_scale}
        self.metrics_log(record if faults.count == 1 else {**record, "count": faults.count})
        if faults.in_a_row < MAX_CONSECUTIVE_FAULTS:
            return
        if self.last_saved is None or self.recoveries >= MAX_RECOVERIES:
            raise RnnkitError(
                f"training diverged: the loss was not finite {faults.in_a_row} times in a row at iteration "
                f"{state.iteration}; lower --learning_rate (now {self.cfg.learning_rate * state.lr_scale:g}) or --grad_clip"
            )
        self.roll_back(self.last_saved, 0.5, "restored")
        self.recoveries += 1
        self.stepper.forget_faults()
        progress.event(f"restored {self.last_saved.name}; learning rate scaled by {state.lr_scale:g}", important=True)

    def back_to_best(self, progress: Progress) -> bool:
        """--lr_plateau: the best checkpoint's weights and optimizer state, at PLATEAU_FACTOR x the
        learning rate (a lower rate finds the minimum the higher one kept stepping over)."""
        state = self.state
        if state.best_checkpoint is None or dist.world_size() > 1:
            return False
        path = self.cfg.run_dir / state.best_checkpoint
        self.roll_back(path, PLATEAU_FACTOR, "plateau")
        state.plateaus += 1
        state.evals_since_best = 0
        progress.event(f"no better validation loss in {self.cfg.early_stopping} evaluations: back to {path.name} at "
                       f"{state.lr_scale:g}x the learning rate ({state.plateaus} of {self.cfg.lr_plateau})", important=True)
        return True

    def roll_back(self, path: Path, lr_factor: float, event: str) -> None:
        """The weights and optimizer state of checkpoint `path`, the learning rate scaled by
        lr_factor, the hidden state reset; logged as `event`."""
        state = self.state
        ckpt = load_checkpoint(path)
        state.load_weights_and_optimizer(ckpt.tensors, ckpt.meta, str(path))
        state.hidden = None
        state.lr_scale *= lr_factor
        self.metrics_log({"iteration": state.iteration, "event": event, "checkpoint": path.name,
                          "lr_scale": state.lr_scale})

    def revisit_dropout(self, progress: Progress, clock: float, tokens: int) -> None:
        """auto's dropout again, from the passes the speed so far projects (dropout_watch.py)."""
        before = self.model.config.dropout
        dropout = self.dropout_watch.check(clock, tokens)
        if dropout is None:
            return
        self.model.set_dropout(dropout)
        passes = self.dropout_watch.projected_passes
        self.metrics_log({"iteration": self.state.iteration, "event": "dropout", "dropout": dropout,
                          "projected_passes": passes, "time": clock})
        progress.event(f"auto: at the speed measured since, the budget trains ~{passes:.3g} passes over the data, more "
                       f"than estimated at start-up: dropout {dropout:g} from here (was {before:g})", important=True)

    def read_loss(self, loss: torch.Tensor, progress: Progress) -> float | None:
        value, faults = self.stepper.read(loss)
        if faults.count:
            self.handle_faults(progress, faults)
        return value

    # ---- the loop --------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        resume_at = None if cfg.reset_iterations or not cfg.init_from else self.state.iteration
        self.metrics = MetricsLog(cfg.run_dir, resume_at=resume_at, tensorboard=cfg.tensorboard) if self.rank == 0 else None
        progress = Progress(cfg, self.total_iterations(), self.data.train.num_batches, enabled=self.rank == 0)
        restore_signals = catch_stop_signals(self._request_stop)
        self._t0 = time.perf_counter()
        mixed = None
        try:
            counted = self._count_ngrams()  # inside the budget: the clock runs
            stopped = self._loop(progress)
            if counted is not None and stopped != "interrupted":
                mixed = self._mix_ngrams(counted, progress)
            if self.data.val_items is not None and self.rank == 0 and not cfg.quiet:
                self._report_new_lines()
        finally:
            restore_signals()
            progress.close()
            if self.metrics is not None:
                self.metrics.close()
        seconds = time.perf_counter() - self._t0
        if stopped == "interrupted":
            how = "interrupted" if self.stop_signal in (None, signal.SIGINT) else f"stopped by {signal_name(self.stop_signal)}"
            self.notice(f"{how}: saved {self.last_saved}; continue with: rnnkit train --resume {cfg.run_dir}")
        state = self.state
        return TrainResult(
            iteration=state.iteration, best_val_loss=state.best_val, last_val_loss=state.last_val,
            checkpoint=self.last_saved, best_checkpoint=cfg.run_dir / state.best_checkpoint if state.best_checkpoint else None,
            stopped=stopped, tokens_per_second=progress.mean_tokens_per_second(), seconds=seconds,
            stop_signal=self.stop_signal if stopped == "interrupted" else None, mixed_val_loss=mixed,
        )

    def _loop(self, progress: Progress) -> str:
        """Updates until the iterations, the budget, early stopping or a signal end the run; then
        the last checkpoint. Returns why it stopped. One function, since the clock, the due
        evaluation and the loss not yet read are shared by every branch."""
        cfg, state, lanes = self.cfg, self.state, self.data.train
        total = self.total_iterations()
        tokens_per_step = cfg.batch_size * cfg.seq_length * dist.world_size()
        eval_interval = schedule_eval_interval(cfg.time_budget) if cfg.time_budget else None
        # Reading the loss is a host sync: free on the CPU, so done every step there; on a
        # GPU (or with several ranks) only when logging or checkpointing needs it.
        sync_each_step = self.device.type in SYNC_EACH_STEP and dist.world_size() == 1
        # Ranks agree on their clock and on a stop signal every step alone, every few with others.
        agree_every = 1 if dist.world_size() == 1 else AGREE_EVERY
        t_window, n_window = time.perf_counter(), 0
        clock, _ = dist.agree(self.elapsed(), False)
        last_eval_time, eval_due, loss, stopped = clock, False, None, "finished"
        if self.dropout_watch is not None:
            self.dropout_watch.start(clock, state.iteration * tokens_per_step)
        while total is None or state.iteration < total:
            if state.iteration % agree_every == 0:
                clock, stop = dist.agree(self.elapsed(), self.stop_signal is not None)
                if cfg.time_budget is not None and clock >= cfg.time_budget:
                    stopped = "time_budget"
                    break
                if stop:
                    stopped = "interrupted"
                    break
                eval_due = eval_interval is not None and clock - last_eval_time >= eval_interval
                if self.dropout_watch is not None and self.dropout_watch.due(clock):
                    self.revisit_dropout(progress, clock, state.iteration * tokens_per_step)
            batch_index = state.iteration % lanes.num_batches
            if batch_index == 0:
                state.hidden = None  # a new epoch starts every lane from its beginning
            state.iteration += 1
            lr = self.schedule.lr(state.iteration, clock) * state.lr_scale
            x, y = (t.to(self.device, non_blocking=True) for t in lanes.batch(batch_index))
            loss = self.stepper.step(x, y, lr)
            if self.thread_watch is not None:
                self.thread_watch.step_done()
            n_window += 1
            log_due = state.iteration % cfg.print_every == 0 or state.iteration == 1
            due = eval_due or (cfg.checkpoint_every > 0 and state.iteration % cfg.checkpoint_every == 0)
            if not (sync_each_step or log_due or due):
                progress.tick(state.iteration)
                continue
            loss_value, loss = self.read_loss(loss, progress), None
            if loss_value is None:  # skipped as non-finite
                continue
            if log_due:
                now = time.perf_counter()
                self._log_step(progress, loss_value, lr, n_window * tokens_per_step / max(now - t_window, 1e-9))
                t_window, n_window = now, 0
            else:
                progress.tick(state.iteration)
            if due:
                self.checkpoint_and_evaluate(progress)
                last_eval_time, _ = dist.agree(self.elapsed(), False)
                eval_due = False
                if cfg.early_stopping and state.evals_since_best >= cfg.early_stopping:
                    if state.plateaus < cfg.lr_plateau and self.back_to_best(progress):
                        continue
                    progress.event(f"early stopping: no better validation loss in {cfg.early_stopping} evaluations", important=True)
                    stopped = "early_stopping"
                    break
        if loss is not None:  # faults since the last read are reported before the last checkpoint
            self.read_loss(loss, progress)
        if self.last_saved is None or checkpoint_iteration(self.last_saved) != state.iteration:
            self.checkpoint_and_evaluate(progress)
        return stopped

    def _count_ngrams(self) -> Counted | None:
        """--ngram N: the training split's n-grams, to mix in once training ends."""
        cfg = self.cfg
        if not cfg.ngram:
            return None
        if dist.world_size() > 1:
            self.notice("note: the n-gram mixture (--ngram) is fitted in single-process runs only; not used")
            return None
        counted = count_ngrams(self.data.train.data, len(self.vocab), cfg.ngram, cfg.time_budget)
        if not counted.models:
            self.notice("note: the n-gram tables would be too large to keep; no n-gram mixture")
            return None
        if not cfg.quiet:
            self.notice(f"n-gram: orders {min(counted.models)}-{max(counted.models)} counted on {counted.tokens:,} "
                        f"training tokens in {counted.seconds:.1f} s; fitted on the validation split when training ends")
        return counted

    def _mix_ngrams(self, counted: Counted, progress: Progress) -> float | None:
        """Fit the mixture to the best checkpoint and the last one; returns the best's mixed loss."""
        cfg, state = self.cfg, self.state
        paths = [cfg.run_dir / state.best_checkpoint, Path(f"{cfg.checkpoint_name}_best.json")] if state.best_checkpoint else []
        paths += [self.last_saved] if self.last_saved is not None else []
        data = self.data
        fit = mix_ngrams(list(dict.fromkeys(p for p in paths if p.is_file())), counted,
                         Path(f"{cfg.checkpoint_name}_ngram.safetensors"), self.device,
                         lambda model, models: fit_ngrams(model, models, data.val_ids, data.val_items, data.newline_id,
                                                          limit=cfg.eval_tokens))
        if fit is None:
            progress.event("n-gram mixture: no validation split to fit it on; not used", important=True)
            return None
        progress.event(describe_mixture(fit), important=True)
        kept = fit.mixture is not None
        self.metrics_log({"iteration": state.iteration, "event": "ngram", "ngram_order": fit.mixture.ngram.order if kept else None,
                          "network_weight": fit.mixture.weight if kept else None, "val_loss_network": fit.network_loss,
                          "val_loss_ngram": fit.ngram_loss, "val_loss_mixed": fit.mixed_loss, "val_tokens": fit.tokens})
        return fit.mixed_loss if kept else None

    def _report_new_lines(self) -> None:
        """A list corpus: how many of the lines the best checkpoint samples (with its n-gram, as
        `rnnkit sample` would) are not training lines."""
        from ..sampling.generator import Generator, SampleOptions
        from ..sampling.lines import generate_lines, training_lines

        sources = preprocessed_sources(self.cfg.input_json)
        if not sources:
            return
        known = training_lines(sources)
        best = self.cfg.run_dir / self.state.best_checkpoint if self.state.best_checkpoint else self.last_saved
        generator = Generator.load(best, device="cpu") if best is not None else Generator(self.model, self.vocab)
        lines = generate_lines(generator, NEW_LINES_SAMPLED, None,
                               options=SampleOptions(seed=self.cfg.seed), warn=lambda message: None)
        new = sum(line not in known for line in lines) / max(1, len(lines))
        self.notice(f"list corpus: {new:.0%} of {len(lines)} sampled lines are new (not lines of the training text)")
        self.metrics_log({"iteration": self.state.iteration, "new_lines": new, "lines_sampled": len(lines)})

    def _log_step(self, progress: Progress, loss: float, lr: float, tokens_per_s: float) -> None:
        iteration = self.state.iteration
        epoch = iteration / self.data.train.num_batches
        self.metrics_log({"iteration": iteration, "epoch": epoch, "train_loss": loss, "lr": lr,
                          "tokens_per_s": tokens_per_s, "time": self.elapsed()})
        progress.update(iteration, epoch, loss, tokens_per_s, self.elapsed())

    def _request_stop(self, signum: int, frame) -> None:
        if self.stop_signal is not None:  # a second signal: stop now (checkpoint writes are atomic)
            raise StopNow(signum)
        self.stop_signal = signum


# ---- the API entry point ------------------------------------------------------------------
def train(config: TrainConfig | None = None, **kwargs) -> TrainResult:
    """Python API for `rnnkit train`: `rnnkit.train(input_txt=["my.txt"], max_iters=200)`."""
    started = time.perf_counter()
    cfg = config or TrainConfig(**kwargs)
    device = resolve_device(cfg.device, cfg.gpu)
    if device.type == "cpu" and autocast_dtype(cfg.amp, device) is not None:
        check_cpu_bf16(cfg.model_type)  # before preprocessing writes anything; Trainer checks a resumed model again
    dist.init(device.type)
    trainer = None
    try:
        cfg = resolve_auto(prepare_run(cfg))  # auto measures the data and this machine
        trainer = Trainer(cfg, setup_seconds=time.perf_counter() - started)
        if dist.rank() == 0:
            write_config(trainer.cfg)
        return trainer.run()
    finally:
        del trainer  # DDP holds the process group: let go of it before the group goes
        dist.shutdown()
