"""TrainConfig, and how flags, a checkpoint being continued and the defaults combine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..core.options import fallbacks, option, parse_duration
from ..errors import ConfigError
from .encode import TRUNCATE
from .events import EventSource

CLASS_WEIGHTS = ("auto", "none")
PROGRESS = ("auto", "bar", "lines", "none")
DEFAULT_RUN_DIR, PREFIX = "runs/classifier", "classifier"  # runs/classifier/classifier_<iteration>.json


@dataclass
class TrainConfig:
    """Everything `classify train` needs; each field but source also makes its flag
    (core/options.py). A None declared with a fallback means: the checkpoint's value when
    continuing with init_from (model shape and truncation cannot change mid-run), else the fallback."""

    source: EventSource
    run_dir: str | None = option(None, "the run folder: checkpoints, report.json, metrics.jsonl, loss.png... "
                                 f"(default {DEFAULT_RUN_DIR})", group="output", compared=False)
    checkpoint_name: str | None = option(None, "torch-rnn's spelling: RUN_DIR/NAME names the folder and the checkpoint "
                                         "files", group="output", compared=False)  # files NAME_<iteration>.json
    # model
    positive_label: str | None = option(None, "two classes: the positive one (default: 1/true/yes, else the rarer)",
                                        group="model", metavar="LABEL")
    max_length: int | None = option(None, "events per sequence the model reads", parse=int, group="model", fallback=200)
    truncate: str | None = option(None, "which end a longer sequence keeps: keep_last (its most recent events) or "
                                  "keep_first", group="model", fallback="keep_last", choices=TRUNCATE)
    max_vocab: int = option(50_000, "values kept per categorical field; rarer ones share an id", parse=int,
                            group="model")
    embedding_size: int | None = option(None, "embedding size per categorical field", parse=int, group="model",
                                        fallback=16)
    rnn_size: int | None = option(None, "LSTM hidden size", parse=int, group="model", fallback=64)
    num_layers: int | None = option(None, "LSTM layers", parse=int, group="model", fallback=1)
    dropout: float | None = option(None, "dropout", parse=float, group="model", fallback=0.0)
    # optimization
    batch_size: int = option(64, "sequences per batch", parse=int, group="optimization")
    max_epochs: int = option(10, "total epochs, counting those of a continued run", parse=int, group="optimization")
    time_budget: float | None = option(None, "train for this long (100s, 15m, 2h), then validate, save and report",
                                       parse=parse_duration, group="optimization")  # seconds; max_epochs aside
    learning_rate: float | None = option(None, "Adam's learning rate; a continued run keeps the checkpoint's unless "
                                         "this is given", parse=float, group="optimization", fallback=2e-3)
    grad_clip: float = option(5.0, "clip the gradient norm to this", parse=float, group="optimization")
    class_weights: str = option("auto", "auto: weigh classes n/(K n_class) in the loss so each counts the same; "
                                "none: 1 each", group="optimization", choices=CLASS_WEIGHTS)
    val_frac: float = option(0.15, "the share of sequences held out for validation", parse=float, group="optimization")
    test_frac: float = option(0.15, "the share held out for the final test; 0 for no test split", parse=float,
                              group="optimization")
    seed: int = option(0, "seeds the split, the initialization and the batch order", parse=int, group="optimization")
    # output
    init_from: str | None = option(None, "continue training with new flags: a checkpoint, or a run folder (its "
                                   "newest), with its split and optimizer", group="output", compared=False,
                                   metavar="RUN_DIR|CKPT")
    force: bool = option(False, "replace the checkpoints already in the run folder", parse=None, group="output",
                         compared=False)
    device: str = option("auto", "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps", group="output",
                         compared=False)
    gpu: int | None = option(None, "torch-rnn's GPU index; -1 for the CPU", parse=int, group="output", compared=False)
    progress: str = option("auto", "auto: a bar on a terminal, else lines", group="output", compared=False,
                           choices=PROGRESS)
    print_every: int = option(50, "iterations between progress lines and metrics.jsonl records", parse=int,
                              group="output", compared=False)
    quiet: bool = option(False, "print the final report only", parse=None, group="output", compared=False)

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


def resolve_options(cfg: TrainConfig, saved: dict | None) -> dict:
    """Model shape and truncation: flag, else checkpoint, else default; a changed shape is an error."""
    out = {}
    for name, default in fallbacks(TrainConfig).items():
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
