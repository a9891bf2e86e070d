"""TrainConfig, and how flags, a checkpoint being continued and the defaults combine."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .encode import TRUNCATE
from .events import EventSource

CLASS_WEIGHTS = ("auto", "none")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything `classify train` needs. None means: the default, or the checkpoint's value
    when continuing with init_from (model shape and truncation cannot change mid-run)."""

    source: EventSource
    run_dir: str = "runs/classifier"
    positive_label: str | None = None
    max_length: int | None = None
    truncate: str | None = None
    max_vocab: int = 50_000
    embedding_size: int | None = None
    rnn_size: int | None = None
    num_layers: int | None = None
    dropout: float | None = None
    batch_size: int = 64
    max_epochs: int = 10
    learning_rate: float | None = None
    grad_clip: float = 5.0
    class_weights: str = "auto"
    val_frac: float = 0.15
    test_frac: float = 0.15
    seed: int = 0
    init_from: str | None = None
    force: bool = False
    device: str = "auto"
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("max_length", "max_vocab", "embedding_size", "rnn_size", "num_layers", "batch_size", "max_epochs"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ConfigError(f"--{name} must be a positive whole number, got {v}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"--learning_rate must be positive, got {self.learning_rate}")
        if not self.grad_clip > 0:
            raise ConfigError(f"--grad_clip must be positive, got {self.grad_clip}")
        if self.truncate is not None and self.truncate not in TRUNCATE:
            raise ConfigError(f"--truncate {self.truncate!r} is unknown; use keep_last or keep_first")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ConfigError(f"--class_weights {self.class_weights!r} is unknown; use auto or none")
        if self.device not in DEVICES:
            raise ConfigError(f"--device {self.device!r} is unknown; use auto, cpu or cuda")
        if not 0 < self.val_frac < 1 or not 0 <= self.test_frac < 1 or self.val_frac + self.test_frac >= 1:
            raise ConfigError(
                f"--val_frac {self.val_frac} and --test_frac {self.test_frac} must satisfy 0 < val, 0 <= test, "
                "val + test < 1 (for example 0.15 and 0.15)"
            )
        if self.force and self.init_from:
            raise ConfigError("--force and --init_from do not mix: --init_from continues a run, --force replaces one")


DEFAULTS = dict(max_length=200, truncate="keep_last", embedding_size=16, rnn_size=64, num_layers=1,
                dropout=0.0, learning_rate=2e-3)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto")
    return torch.device(name)


def resolve_options(cfg: TrainConfig, saved: dict | None) -> dict:
    """Model shape and truncation: flag, else checkpoint, else default; a changed shape is an error."""
    out = {}
    for name, default in DEFAULTS.items():
        given = getattr(cfg, name)
        if saved is not None and name in saved and name != "learning_rate":
            if given is not None and given != saved[name]:
                raise ConfigError(
                    f"--{name} {given} differs from the checkpoint's {saved[name]}; drop it when using --init_from"
                )
            out[name] = saved[name]
        else:
            out[name] = default if given is None else given
    return out


def merge_source(src: EventSource, schema: dict) -> EventSource:
    """Continuing a run reads events with the checkpoint's columns unless a flag names the same."""
    merged = {}
    for key in ("format", "sequence_col", "order_col", "label_col", "categorical_cols", "numeric_cols"):
        given, saved = getattr(src, key), schema[key]
        if given is not None and given != saved:
            raise ConfigError(f"--{key} {given} differs from the checkpoint's {saved}; drop it when using --init_from")
        merged[key] = saved
    return EventSource(events=src.events, labels=src.labels, buys=src.buys, **merged)
