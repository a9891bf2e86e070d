"""TrainConfig, and how flags, a checkpoint being continued and the defaults combine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import ConfigError
from .encode import TRUNCATE
from .events import EventSource

CLASS_WEIGHTS = ("auto", "none")
PROGRESS = ("auto", "bar", "lines", "none")
DEFAULT_RUN_DIR, PREFIX = "runs/classifier", "classifier"  # runs/classifier/classifier_<iteration>.json


@dataclass
class TrainConfig:
    """Everything `classify train` needs. None means: the default, or the checkpoint's value
    when continuing with init_from (model shape and truncation cannot change mid-run)."""

    source: EventSource
    run_dir: str | None = None  # default runs/classifier
    checkpoint_name: str | None = None  # torch-rnn's spelling: RUN_DIR/NAME, files NAME_<iteration>.json
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
    time_budget: float | None = None  # seconds; trains until then, max_epochs aside (as rnnkit train)
    learning_rate: float | None = None
    grad_clip: float = 5.0
    class_weights: str = "auto"
    val_frac: float = 0.15
    test_frac: float = 0.15
    seed: int = 0
    init_from: str | None = None
    force: bool = False
    device: str = "auto"
    gpu: int | None = None
    progress: str = "auto"
    print_every: int = 50
    quiet: bool = False

    def __post_init__(self) -> None:
        self._check_numbers()
        for name, value, allowed in (("truncate", self.truncate, TRUNCATE), ("class_weights", self.class_weights, CLASS_WEIGHTS),
                                     ("progress", self.progress, PROGRESS)):
            if value is not None and value not in allowed:
                raise ConfigError(f"--{name} {value!r} is unknown; use {' or '.join(allowed)}")
        if not 0 < self.val_frac < 1 or not 0 <= self.test_frac < 1 or self.val_frac + self.test_frac >= 1:
            raise ConfigError(
                f"--val_frac {self.val_frac} and --test_frac {self.test_frac} must satisfy 0 < val, 0 <= test, "
                "val + test < 1 (for example 0.15 and 0.15)"
            )
        if self.force and self.init_from:
            raise ConfigError("--force and --init_from do not mix: --init_from continues a run, --force replaces one")
        self._name_the_run()

    def _check_numbers(self) -> None:
        for name in ("max_length", "max_vocab", "embedding_size", "rnn_size", "num_layers", "batch_size", "max_epochs",
                     "print_every"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ConfigError(f"--{name} must be a positive whole number, got {v}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        for name in ("learning_rate", "grad_clip", "time_budget"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"--{name} must be positive, got {v}")

    def _name_the_run(self) -> None:
        """--run_dir DIR and --checkpoint_name DIR/NAME say the same thing; both must agree."""
        if self.checkpoint_name is None:
            self.run_dir = self.run_dir or DEFAULT_RUN_DIR
            self.checkpoint_name = str(Path(self.run_dir) / PREFIX)
        elif self.run_dir is None:
            self.run_dir = str(Path(self.checkpoint_name).parent)
        elif Path(self.checkpoint_name).parent.resolve() != Path(self.run_dir).resolve():
            raise ConfigError(f"--checkpoint_name {self.checkpoint_name} is not in --run_dir {self.run_dir}; "
                              "give one of them, or a name inside that folder")

    @property
    def folder(self) -> Path:
        return Path(self.run_dir)

    @property
    def prefix(self) -> str:
        return Path(self.checkpoint_name).name

    def options(self) -> dict:
        """The settings a --resume takes back (not the data source, not init_from / force)."""
        skip = {"source", "init_from", "force"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def to_dict(self) -> dict:
        return {"source": asdict(self.source), **self.options()}


DEFAULTS = dict(max_length=200, truncate="keep_last", embedding_size=16, rnn_size=64, num_layers=1,
                dropout=0.0, learning_rate=2e-3)


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
    return EventSource(events=src.events, labels=src.labels, buys=src.buys, skip_bad_rows=src.skip_bad_rows, **merged)
