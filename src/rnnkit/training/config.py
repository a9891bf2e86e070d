"""`rnnkit train`'s settings (torch-rnn's flag names) and their checks."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.options import AUTO, fields_where, option, parse_duration, torch_bool
from ..errors import ConfigError

MAX_NGRAM_ORDER = 9


@dataclass
class TrainConfig:
    """Every setting of `rnnkit train`; each field also makes its flag (core/options.py)."""

    # data (torch-rnn names)
    input_h5: str | None = option(None, group="data", compared=False)
    input_json: str | None = option(None, group="data", compared=False)
    input_txt: list[str] | None = option(None, flag=False, compared=False)  # raw text, preprocessed into the run folder first
    batch_size: int = option(50, parse=int, auto=True, group="data")
    seq_length: int = option(50, parse=int, auto=True, group="data")
    # model
    init_from: str | None = option(None, "checkpoint to continue training from", group="model", compared=False)
    reset_iterations: bool = option(True, "1: restart the iteration counter (torch-rnn's default)",
                                    parse=torch_bool, group="model", compared=False)
    finetune: str | None = option(None, "fine-tune this checkpoint on new text: --init_from CKPT --reset_iterations 1 "
                                  "(characters it lacks are added to its vocabulary)", group="model", compared=False,
                                  metavar="CKPT")
    parent: str | None = option(None, flag=False, compared=False)  # the checkpoint the run started from (set by the trainer)
    model_type: str = option("lstm", "lstm, gru or rnn", group="model")
    wordvec_size: int = option(64, parse=int, group="model")
    rnn_size: int = option(128, "hidden units, or auto", parse=int, auto=True, group="model")
    num_layers: int = option(2, "layers, or auto", parse=int, auto=True, group="model")
    dropout: float = option(0.0, "or auto (more when the budget repeats the corpus)", parse=float, auto=True, group="model")
    batchnorm: bool = option(False, parse=torch_bool, group="model")
    ngram: int = option(0, "mix a Kneser-Ney n-gram of order up to N, counted on the training text, into the "
                        "model where it lowers the validation loss (0: off), or auto (7 under a time budget)",
                        parse=int, auto=True, group="model", metavar="N")
    # optimization
    max_epochs: int = option(50, parse=int, group="optimization")
    max_iters: int | None = option(None, "stop after this many iterations", parse=int, group="optimization")
    time_budget: float | None = option(None, "train for this long (100s, 15m, 2h) with a schedule that ends on time",
                                       parse=parse_duration, group="optimization")
    learning_rate: float = option(2e-3, "or auto (picked with the batch size)", parse=float, auto=True, group="optimization")
    grad_clip: float = option(5.0, parse=float, group="optimization")
    lr_decay_every: int = option(5, parse=int, group="optimization")
    lr_decay_factor: float = option(0.5, parse=float, group="optimization")
    weight_decay: float = option(0.0, "AdamW's decay of the weight matrices, or auto (0.1 with a time budget)",
                                 parse=float, auto=True, group="optimization")
    early_stopping: int | None = option(None, "stop after this many evaluations without a better validation loss, "
                                        "or auto", parse=int, auto=True, group="optimization", metavar="PATIENCE")
    lr_plateau: int = option(0, "where early stopping would stop: go back to the best checkpoint and go on at "
                             "0.3x the learning rate, up to N times, then stop; or auto (2 with early stopping "
                             "under a time budget)", parse=int, auto=True, group="optimization", metavar="N")
    # output
    print_every: int = option(1, parse=int, group="output", compared=False)
    checkpoint_every: int = option(1000, "iterations between checkpoints (and evaluations), or auto",
                                   parse=int, auto=True, group="output")
    eval_tokens: int | None = option(None, "evaluate on the first N tokens of the validation split (default: all), "
                                     "or auto (an evaluation costs ~1%% of a time budget)", parse=int, auto=True,
                                     group="output", metavar="N")
    checkpoint_name: str = option("cv/checkpoint", group="output", compared=False)
    force: bool = option(False, "overwrite the checkpoints of an earlier run", parse=None, group="output", compared=False)
    quiet: bool = option(False, parse=None, group="output", compared=False)
    progress: str = option("auto", group="output", compared=False, choices=["auto", "bar", "lines", "none"])
    tensorboard: bool = option(False, "also write TensorBoard event files into RUN_DIR/tensorboard", parse=None,
                               group="output", compared=False)
    speed_benchmark: bool = option(False, parse=torch_bool, group="output", compared=False)
    memory_benchmark: bool = option(False, parse=torch_bool, group="output", compared=False)
    # backend
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", group="backend")
    gpu: int | None = option(None, "torch-rnn's GPU index; -1 for the CPU", parse=int, group="backend")
    amp: str = option("auto", "mixed precision: auto (GPU: bf16 where it has it, else fp16; CPU: float32), off, "
                      "bf16 (~1.7x faster on a CPU with bf16 instructions), fp16 (GPU)", group="backend")
    seed: int = option(123, parse=int, group="backend")
    threads: int | None = option(None, "CPU threads (default: PyTorch's choice)", parse=int, group="backend",
                                 compared=False)
    auto_choice: dict = option({}, flag=False, compared=False)  # what `auto` sizes resolved to, and why

    def __post_init__(self) -> None:
        if self.finetune is not None:  # an alias, folded in so that a saved config means the same when read back
            if self.init_from not in (None, self.finetune) or not self.reset_iterations:
                raise ConfigError("--finetune CKPT means --init_from CKPT --reset_iterations 1; give one or the other")
            self.init_from, self.finetune = self.finetune, None
        pending = self.pending_auto()  # chosen later (training/auto.py); checked once chosen
        for name in pending:
            if getattr(self, name) != AUTO:
                raise ConfigError(f"--{name} {getattr(self, name)!r}: give a number or auto")
        positive = ("batch_size", "seq_length", "wordvec_size", "rnn_size", "num_layers", "max_epochs", "print_every")
        for name in (n for n in positive if n not in pending):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"--{name} must be a positive whole number, got {v}")
        if "dropout" not in pending and not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be at least 0 and below 1 (0.2 to 0.5 is usual), got {self.dropout}")
        if "learning_rate" not in pending and not self.learning_rate > 0:
            raise ConfigError(f"--learning_rate must be greater than 0, got {self.learning_rate}")
        if self.grad_clip < 0:
            raise ConfigError(f"--grad_clip must be 0 (off) or more, got {self.grad_clip}")
        if self.lr_decay_every < 0 or not 0 < self.lr_decay_factor <= 1:
            raise ConfigError("--lr_decay_every must be >= 0 and --lr_decay_factor in (0, 1]")
        if not {"weight_decay", "learning_rate"} & set(pending) and not 0 <= self.weight_decay * self.learning_rate < 1:
            raise ConfigError(f"--weight_decay must be 0 or more and its product with --learning_rate below 1 "
                              f"(0.01 to 0.1 is usual), got {self.weight_decay}")
        if "checkpoint_every" not in pending and self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint_every must be 0 (only at the end) or more, got {self.checkpoint_every}")
        if "eval_tokens" not in pending and self.eval_tokens is not None and self.eval_tokens < 2:
            raise ConfigError(f"--eval_tokens must be 2 or more (or left out: the whole split), got {self.eval_tokens}")
        if self.max_iters is not None and self.max_iters <= 0:
            raise ConfigError(f"--max_iters must be positive, got {self.max_iters}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError("--time_budget must be positive")
        if "early_stopping" not in pending and self.early_stopping is not None and self.early_stopping <= 0:
            raise ConfigError("--early_stopping must be a positive number of evaluations")
        if "lr_plateau" not in pending and (isinstance(self.lr_plateau, bool) or self.lr_plateau < 0):
            raise ConfigError(f"--lr_plateau must be 0 (off) or a number of returns to the best checkpoint, got {self.lr_plateau}")
        if "ngram" not in pending and (isinstance(self.ngram, bool) or self.ngram not in (0, *range(2, MAX_NGRAM_ORDER + 1))):
            raise ConfigError(f"--ngram must be 0 (off) or an order from 2 to {MAX_NGRAM_ORDER}, got {self.ngram}")
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

    def pending_auto(self) -> tuple[str, ...]:
        """The settings still set to `auto`."""
        return tuple(name for name in fields_where(TrainConfig, "auto") if isinstance(getattr(self, name), str))

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoint_name).parent

    @property
    def prefix(self) -> str:
        return Path(self.checkpoint_name).name

    def to_dict(self) -> dict:
        return asdict(self)
