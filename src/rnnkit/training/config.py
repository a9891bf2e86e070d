"""`rnnkit train`'s settings (torch-rnn's flag names) and their checks."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError


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
    amp: str = "auto"  # auto | off | bf16 | fp16 (CUDA only); auto: see Trainer._pick_amp
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
        if not 0 <= self.weight_decay * self.learning_rate < 1:
            raise ConfigError(f"--weight_decay must be 0 or more and its product with --learning_rate below 1 "
                              f"(0.01 to 0.1 is usual), got {self.weight_decay}")
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
