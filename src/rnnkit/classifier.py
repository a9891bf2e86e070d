"""Sequence classifier: embedded event fields -> LSTM over packed sequences -> last hidden
state -> one logit (the positive class).

Measured against two baselines trained on the same split: the majority class, and a
logistic regression on a bag of events (value frequencies, numeric means, log length),
which sees everything but the order. Training checkpoints every epoch, keeps the lowest
validation loss as classifier_best.json, and writes report.json, split.json and roc.png.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from .atomic import atomic_write_bytes, atomic_write_text
from .checkpoint import (
    Checkpoint,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    pack_optimizer,
    save_checkpoint,
    unpack_optimizer,
)
from .errors import CheckpointError, ConfigError, InputFileError, OutputExistsError, RnnkitError
from .events import (
    SPLIT_RULE,
    TRUNCATE,
    EncodedEvents,
    Encoding,
    EventSchema,
    EventSource,
    EventTable,
    binary_classes,
    encode_labels,
    load_table,
    ranges,
    source_for,
    split_sequences,
    truncated_spans,
)

NAME = "classifier"  # checkpoint files: classifier_<epoch>.json, classifier_best.json
SPLITS = ("train", "val", "test")
MODELS = {"majority": "majority class", "bag_of_events": "bag-of-events logreg", "lstm": "LSTM"}
CLASS_WEIGHTS = ("auto", "none")
DEVICES = ("auto", "cpu", "cuda")


# ---- the model ---------------------------------------------------------------------------
@dataclass
class ModelConfig:
    vocab_sizes: list[int]  # per categorical field, pad (0) and unknown (1) included
    num_numeric: int
    embedding_size: int = 16
    rnn_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0


class EventLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = nn.ModuleList(nn.Embedding(v, cfg.embedding_size, padding_idx=0) for v in cfg.vocab_sizes)
        input_size = cfg.embedding_size * len(cfg.vocab_sizes) + cfg.num_numeric
        inner_dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.lstm = nn.LSTM(input_size, cfg.rnn_size, cfg.num_layers, batch_first=True, dropout=inner_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.rnn_size, 1)

    def forward(self, cat: torch.Tensor, num: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """cat (B, T, C) ids, num (B, T, F), lengths (B,) on the CPU -> logits (B,)."""
        parts = [emb(cat[..., i]) for i, emb in enumerate(self.embeddings)]
        x = torch.cat(parts + [num], dim=-1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h[-1]: the top layer at each sequence's own last event
        return self.head(self.drop(h[-1])).squeeze(-1)


class Batcher:
    """Pads a batch of (truncated) sequences into (B, T, ...) tensors."""

    def __init__(self, enc: EncodedEvents, max_length: int, truncate: str, device: torch.device):
        self.cat = torch.from_numpy(enc.categorical)
        self.num = torch.from_numpy(enc.numeric)
        self.starts, self.lengths = truncated_spans(enc.offsets, max_length, truncate)
        self.device = device

    def __call__(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        starts = torch.from_numpy(self.starts[idx])
        lengths = torch.from_numpy(self.lengths[idx])
        steps = torch.arange(int(lengths.max()))
        valid = steps < lengths[:, None]
        rows = torch.where(valid, starts[:, None] + steps, 0)
        cat = self.cat[rows] * valid[..., None]
        num = self.num[rows] * valid[..., None]
        return cat.to(self.device), num.to(self.device), lengths


def length_batches(idx: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of similar lengths: shuffle, sort within chunks of 32 batches, shuffle batches."""
    idx = rng.permutation(idx)
    chunk = batch_size * 32
    batches = []
    for s in range(0, len(idx), chunk):
        part = idx[s:s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.no_grad()
def lstm_logits(model: EventLSTM, batcher: Batcher, idx: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits aligned with idx; batches go shortest first so little padding is built."""
    model.eval()
    order = np.argsort(batcher.lengths[idx], kind="stable")
    out = np.empty(len(idx), dtype=np.float32)
    for s in range(0, len(idx), batch_size):
        pos = order[s:s + batch_size]
        out[pos] = model(*batcher(idx[pos])).float().cpu().numpy()
    return out


def weighted_bce(logits: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    w = class_weights[y]
    return (F.binary_cross_entropy_with_logits(logits, y.float(), reduction="none") * w).sum() / w.sum()


def class_weights_for(y: np.ndarray, mode: str) -> np.ndarray:
    """auto: n / (2 n_class), so both classes weigh the same in the loss; none: 1, 1."""
    if mode == "none":
        return np.ones(2)
    counts = np.bincount(y, minlength=2).astype(np.float64)
    return len(y) / (2.0 * counts)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# ---- the bag-of-events baseline ------------------------------------------------------------
class BagOfEvents(nn.Module):
    """Logistic regression on what a sequence holds, not on its order."""

    def __init__(self, vocab_sizes: list[int], num_numeric: int):
        super().__init__()
        self.register_buffer("column_offsets", torch.tensor([0] + list(np.cumsum(vocab_sizes)[:-1]), dtype=torch.long))
        self.values = nn.EmbeddingBag(max(1, sum(vocab_sizes)), 1, mode="mean")  # mean = frequencies . weights
        self.dense = nn.Linear(num_numeric + 1, 1)  # numeric means and log length
        nn.init.zeros_(self.values.weight)
        nn.init.zeros_(self.dense.weight)

    def forward(self, flat_ids: torch.Tensor, bag_offsets: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        out = self.dense(dense).squeeze(-1)
        if flat_ids.numel():  # no categorical fields: numeric means and length only
            out = out + self.values(flat_ids, bag_offsets).squeeze(-1)
        return out

    def inputs(self, batcher: Batcher, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths = batcher.lengths[idx]
        rows = torch.from_numpy(ranges(batcher.starts[idx], lengths))
        n_cols = batcher.cat.shape[1]
        flat = (batcher.cat[rows] + self.column_offsets[:n_cols]).reshape(-1)
        bag_offsets = torch.from_numpy((np.cumsum(lengths) - lengths) * n_cols)
        segment = torch.from_numpy(np.repeat(np.arange(len(idx)), lengths))
        num_sum = torch.zeros(len(idx), batcher.num.shape[1]).index_add_(0, segment, batcher.num[rows])
        length = torch.from_numpy(lengths).float()[:, None]
        return flat, bag_offsets, torch.cat([num_sum / length, torch.log1p(length)], dim=1)

    def scores(self, batcher: Batcher, idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(self(*self.inputs(batcher, idx))).double().numpy()


def fit_bag_of_events(vocab_sizes: list[int], num_numeric: int, batcher: Batcher, idx: np.ndarray,
                      y: np.ndarray, class_weights: np.ndarray, l2: float = 1e-3) -> BagOfEvents:
    """Full-batch L-BFGS with a small L2 penalty, on the CPU."""
    bag = BagOfEvents(vocab_sizes, num_numeric)
    inputs = bag.inputs(batcher, idx)
    target = torch.from_numpy(y)
    weights = torch.from_numpy(class_weights).float()
    opt = torch.optim.LBFGS(bag.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        penalty = bag.values.weight.square().sum() + bag.dense.weight.square().sum()
        loss = weighted_bce(bag(*inputs), target, weights) + l2 * penalty
        loss.backward()
        return loss

    opt.step(closure)
    return bag


# ---- metrics -----------------------------------------------------------------------------
def _ranked_counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-score, kind="stable")
    y, score = y[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(y) - 1]  # ties move together
    tp = np.cumsum(y)[last]
    return tp, last + 1 - tp


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp, fp = _ranked_counts(y, score)
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    if y.min() == y.max():
        return None
    fpr, tpr = roc_curve(y, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision: precision at each threshold weighted by the recall it adds."""
    if y.max() == 0:
        return None
    tp, fp = _ranked_counts(y, score)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * tp / (tp + fp)))


def binary_metrics(y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    pred = (score >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "accuracy": float(np.mean(pred == y)),
        "roc_auc": roc_auc(y, score),
        "pr_auc": pr_auc(y, score),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


# ---- reports -----------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    return f"{x:8.3f}" if x is not None else "     n/a"


def format_metrics(metrics: dict[str, dict[str, dict]], classes: list[str]) -> str:
    """The side-by-side table, then the LSTM's confusion matrix per split."""
    lines = [f"{'split':<6} {'model':<22} {'accuracy':>8} {'ROC AUC':>8} {'PR AUC':>8}   n (positive)"]
    for split, models in metrics.items():
        for name, m in models.items():
            lines.append(
                f"{split:<6} {MODELS[name]:<22} {_fmt(m['accuracy'])} {_fmt(m['roc_auc'])} {_fmt(m['pr_auc'])}"
                f"   {m['n']} ({m['positives']})"
            )
    width = max(8, *(len(c) + 5 for c in classes))
    for split, models in metrics.items():
        c = models["lstm"]["confusion"]
        lines += [
            "",
            f"LSTM confusion on {split} (rows: true class, columns: predicted; positive = {classes[1]!r}):",
            " " * width + "".join(f"{'pred ' + k:>{width}}" for k in classes),
            f"{'true ' + classes[0]:<{width}}{c['tn']:>{width}}{c['fp']:>{width}}",
            f"{'true ' + classes[1]:<{width}}{c['fn']:>{width}}{c['tp']:>{width}}",
        ]
    return "\n".join(lines)


def plot_roc(y_by_split: dict[str, np.ndarray], scores: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """One panel per split, the three models' ROC curves in each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splits = [s for s in y_by_split if roc_auc(y_by_split[s], scores[s]["lstm"]) is not None]
    if not splits:
        return
    fig = Figure(figsize=(5.2 * len(splits), 4.8))
    FigureCanvasAgg(fig)
    style = {"lstm": dict(color="C0", lw=2), "bag_of_events": dict(color="C1", lw=1.6),
             "majority": dict(color="gray", lw=1, ls="--")}
    titles = {"val": "validation", "test": "test", "eval": "evaluation"}
    for k, split in enumerate(splits):
        ax = fig.add_subplot(1, len(splits), k + 1)
        y = y_by_split[split]
        for name in ("lstm", "bag_of_events", "majority"):
            fpr, tpr = roc_curve(y, scores[split][name])
            ax.plot(fpr, tpr, label=f"{MODELS[name]} (AUC {roc_auc(y, scores[split][name]):.3f})", **style[name])
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate", ylabel="true positive rate",
               title=f"ROC, {titles.get(split, split)} (n={len(y)}, {int(y.sum())} positive)")
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


# ---- training ----------------------------------------------------------------------------
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


@dataclass
class TrainResult:
    run_dir: Path
    report: dict
    model: EventLSTM  # best weights loaded
    split_ids: dict[str, list[str]]
    scores: dict[str, dict[str, np.ndarray]]  # split -> model name -> positive-class scores


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto")
    return torch.device(name)


def check_run_dir(run_dir: Path, force: bool, continuing: bool) -> bool:
    """Refuse to overwrite a run; True when --force will replace its checkpoints."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputExistsError(f"--run_dir {run_dir} is a file; give a folder")
    if run_dir.is_dir() and find_checkpoints(run_dir) and not continuing:
        if not force:
            raise OutputExistsError(
                f"{run_dir} already holds checkpoints; continue it with --init_from {run_dir}, "
                "pick another --run_dir, or add --force to replace it"
            )
        return True
    return False


def prepare_run_dir(run_dir: Path, replace: bool) -> None:
    """Called once the data has loaded, so a bad flag never costs the old run."""
    if replace:
        for p in run_dir.glob(f"{NAME}_*"):
            if p.suffix in (".json", ".safetensors"):
                p.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --run_dir {run_dir} ({e.strerror}); choose a folder you can write to") from None


def load_classifier_checkpoint(path: str | Path, newest: bool = False) -> Checkpoint:
    """A run folder means its best checkpoint, or with newest its last epoch."""
    p = Path(path)
    latest = latest_checkpoint(p, NAME) if newest and p.is_dir() else None
    ckpt = load_checkpoint(latest or p)
    if ckpt.meta.get("kind") != "classifier":
        raise CheckpointError(
            f"{ckpt.path} is a {ckpt.meta.get('kind', 'language model')} checkpoint, not a classifier; "
            "give a run folder written by rnnkit classify train"
        )
    return ckpt


def _resolve(cfg: TrainConfig, saved: dict | None) -> dict:
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


def _merge_source(src: EventSource, schema: dict) -> EventSource:
    """Continuing a run reads events with the checkpoint's columns unless a flag names the same."""
    merged = {}
    for key in ("format", "sequence_col", "order_col", "label_col", "categorical_cols", "numeric_cols"):
        given, saved = getattr(src, key), schema[key]
        if given is not None and given != saved:
            raise ConfigError(f"--{key} {given} differs from the checkpoint's {saved}; drop it when using --init_from")
        merged[key] = saved
    return EventSource(events=src.events, labels=src.labels, buys=src.buys, **merged)


def write_split(path: Path, split_meta: dict, split_ids: dict[str, list[str]]) -> None:
    """One line per key, so the file stays readable with many ids."""
    items = {**split_meta, **split_ids}
    body = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items.items())
    atomic_write_text(path, "{\n" + body + "\n}\n")


@dataclass
class PreparedData:
    """Labelled sequences, split by id and encoded with a vocabulary fit on train only."""

    table: EventTable
    schema: EventSchema
    classes: list[str]  # [negative, positive]
    y: np.ndarray  # 0/1 per sequence
    split: dict[str, np.ndarray]  # sequence indices per split
    split_meta: dict
    encoding: Encoding
    unlabelled: int  # sequences left out for having no label


def _saved_split(resume: Checkpoint, ids: list[str], y: np.ndarray, say) -> dict[str, np.ndarray]:
    """The split of the run being continued: its split.json, else its seed and rule again."""
    split_file = resume.path.parent / "split.json"
    if not split_file.is_file():
        s = resume.meta["split"]
        say(f"no split.json beside {resume.path.name}: split recomputed from its seed {s['seed']}")
        return split_sequences(ids, y, s["val_frac"], s["test_frac"], s["seed"])
    saved = json.loads(split_file.read_text())
    where = {sid: name for name in SPLITS for sid in saved.get(name, [])}
    unseen = sum(sid not in where for sid in ids)
    if unseen:  # never into val or test: those must stay comparable across continuations
        say(f"{unseen} sequences not in the saved split go to train")
    split = {name: np.asarray([i for i, sid in enumerate(ids) if where.get(sid, "train") == name], dtype=np.int64)
             for name in SPLITS}
    if not len(split["val"]) or len(np.unique(y[split["train"]])) < 2:
        raise InputFileError(
            f"these events leave the saved split of {split_file} without validation sequences or with one class "
            "in train; continue on the data it was trained on, or train afresh without --init_from"
        )
    return split


def prepare_data(cfg: TrainConfig, resume: Checkpoint | None, say) -> PreparedData:
    saved = resume.meta if resume else None
    source = _merge_source(cfg.source, saved["data"]["encoding"]["schema"]) if saved else cfg.source
    table, schema = load_table(source, need_labels=True)
    classes = saved["data"]["classes"] if saved else binary_classes(table.labels, cfg.positive_label)
    y = encode_labels(table.labels, classes)
    labelled = np.flatnonzero(y >= 0)
    if not len(labelled):
        raise InputFileError(f"no labels: none of the {len(y)} sequences is labelled {classes[0]!r} or {classes[1]!r}")
    unlabelled = len(y) - len(labelled)
    if unlabelled:
        table, y = table.subset(labelled), y[labelled]
    if saved:
        split, split_meta = _saved_split(resume, table.sequence_ids, y, say), dict(saved["split"])
    else:
        split = split_sequences(table.sequence_ids, y, cfg.val_frac, cfg.test_frac, cfg.seed)
        split_meta = {"seed": cfg.seed, "val_frac": cfg.val_frac, "test_frac": cfg.test_frac, "rule": SPLIT_RULE}
    split_meta.update(file="split.json", counts={s: len(v) for s, v in split.items()})
    encoding = (Encoding.from_meta(saved["data"]["encoding"]) if saved
                else Encoding.fit(table, schema, split["train"], cfg.max_vocab))
    return PreparedData(table, schema, classes, y, split, split_meta, encoding, unlabelled)


def train_epoch(model: EventLSTM, optimizer: torch.optim.Optimizer, batcher: Batcher, idx: np.ndarray,
                y: torch.Tensor, class_weights: torch.Tensor, cfg: TrainConfig, epoch: int) -> float:
    model.train()
    rng = np.random.default_rng([cfg.seed, epoch])  # batch order depends on (seed, epoch) only: resumable
    total = 0.0
    for b in length_batches(idx, batcher.lengths, cfg.batch_size, rng):
        loss = weighted_bce(model(*batcher(b)), y[b], class_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        total += loss.item() * len(b)
    return total / len(idx)


def _summary(cfg: TrainConfig, data: PreparedData, opts: dict, weights: np.ndarray) -> list[str]:
    t, s, y, classes = data.table, data.split, data.y, data.classes
    longer = int(np.sum(t.lengths > opts["max_length"]))
    end = "last" if opts["truncate"] == "keep_last" else "first"
    return [
        f"read {len(t.sequence_ids)} labelled sequences, {int(t.offsets[-1])} events"
        + (f"; {data.unlabelled} sequences without a label left out" if data.unlabelled else ""),
        f"fields: categorical {', '.join(data.schema.categorical_cols) or '-'} "
        f"(vocabulary sizes {', '.join(map(str, data.encoding.vocab_sizes)) or '-'}); "
        f"numeric {', '.join(data.schema.numeric_cols) or '-'}",
        f"split by sequence id (seed {data.split_meta['seed']}): "
        + ", ".join(f"{k} {len(s[k])} ({int(y[s[k]].sum())} positive)" for k in SPLITS),
        f"positive class {classes[1]!r}; class weights ({cfg.class_weights}): "
        f"{classes[0]!r} {weights[0]:.3f}, {classes[1]!r} {weights[1]:.3f}",
        f"truncation: {longer} sequences longer than {opts['max_length']} events keep their {end} {opts['max_length']}",
    ]


def train_classifier(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    say = (lambda *_: None) if cfg.quiet else log
    device = pick_device(cfg.device)
    run_dir = Path(cfg.run_dir)
    resume = load_classifier_checkpoint(cfg.init_from, newest=True) if cfg.init_from else None
    saved = resume.meta if resume else None
    if saved and cfg.max_epochs <= saved["epoch"]:
        raise ConfigError(
            f"{resume.path} has already trained {saved['epoch']} epochs; "
            f"raise --max_epochs above {saved['epoch']} to continue"
        )
    opts = _resolve(cfg, {**saved["data"], **saved["model"]} if saved else None)
    replace = check_run_dir(run_dir, cfg.force, continuing=resume is not None)

    data = prepare_data(cfg, resume, say)
    split, y = data.split, data.y
    split_ids = {s: [data.table.sequence_ids[i] for i in split[s]] for s in SPLITS}
    prepare_run_dir(run_dir, replace)
    write_split(run_dir / "split.json", {k: data.split_meta[k] for k in ("seed", "val_frac", "test_frac", "rule")},
                split_ids)
    batcher = Batcher(data.encoding.encode(data.table), opts["max_length"], opts["truncate"], device)
    weights = class_weights_for(y[split["train"]], cfg.class_weights)
    for line in _summary(cfg, data, opts, weights):
        say(line)

    # the baselines: same split, same (truncated) events
    t0 = time.time()
    bag = fit_bag_of_events(data.encoding.vocab_sizes, len(data.schema.numeric_cols), batcher,
                            split["train"], y[split["train"]], weights)
    bag_seconds = time.time() - t0
    prior = float(y[split["train"]].mean())

    torch.manual_seed(cfg.seed)
    model_cfg = ModelConfig(data.encoding.vocab_sizes, len(data.schema.numeric_cols), opts["embedding_size"],
                            opts["rnn_size"], opts["num_layers"], opts["dropout"])
    model = EventLSTM(model_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts["learning_rate"])
    history, best_loss, best_epoch, start = [], math.inf, None, 0
    if resume:
        model.load_state_dict(resume.prefixed("model."))
        unpack_optimizer(optimizer, resume.tensors, saved["optimizer"])
        start, history = saved["epoch"], list(saved["train"]["history"])
        if (run_dir / f"{NAME}_best.json").is_file():
            best_loss, best_epoch = saved["train"]["best_val_loss"], saved["train"]["best_epoch"]
        say(f"continuing from {resume.path} (epoch {start})")
    if cfg.learning_rate is not None or not resume:
        for group in optimizer.param_groups:
            group["lr"] = opts["learning_rate"]
    class_w = torch.from_numpy(weights).float()
    y_dev = torch.from_numpy(y).to(device)
    y_val = torch.from_numpy(y[split["val"]])
    data_meta = {"encoding": data.encoding.to_meta(), "classes": data.classes, "max_length": opts["max_length"],
                 "truncate": opts["truncate"], "max_vocab": cfg.max_vocab}
    t_lstm = time.time()
    for epoch in range(start + 1, cfg.max_epochs + 1):
        t0 = time.time()
        train_loss = train_epoch(model, optimizer, batcher, split["train"], y_dev, class_w.to(device), cfg, epoch)
        val_logits = lstm_logits(model, batcher, split["val"])
        val_loss = float(weighted_bce(torch.from_numpy(val_logits), y_val, class_w))
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise RnnkitError(f"training diverged at epoch {epoch} (the loss is not finite); lower --learning_rate")
        val_auc = roc_auc(y[split["val"]], val_logits)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_roc_auc": val_auc,
                        "seconds": round(time.time() - t0, 3)})
        improved = val_loss < best_loss
        if improved:
            best_loss, best_epoch = val_loss, epoch
        say(f"epoch {epoch}/{cfg.max_epochs}  train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
            f"val ROC AUC {_fmt(val_auc).strip()}  ({time.time() - t0:.1f}s){'  *best' if improved else ''}")
        optim_tensors, optim_meta = pack_optimizer(optimizer)
        tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()},
                   **{f"bag.{k}": v for k, v in bag.state_dict().items()}, **optim_tensors}
        meta = {
            "kind": "classifier", "epoch": epoch, "model": asdict(model_cfg), "data": data_meta,
            "split": data.split_meta,
            "train": {"options": {"batch_size": cfg.batch_size, "learning_rate": optimizer.param_groups[0]["lr"],
                                  "grad_clip": cfg.grad_clip, "class_weights": cfg.class_weights,
                                  "max_epochs": cfg.max_epochs, "seed": cfg.seed},
                      "class_weights": weights.tolist(), "prior": prior, "history": history,
                      "best_val_loss": best_loss, "best_epoch": best_epoch},
            "optimizer": optim_meta,
        }
        path = save_checkpoint(run_dir / f"{NAME}_{epoch}.json", tensors, meta)
        if improved:  # the best file points at this epoch's weights, no second copy
            save_checkpoint(run_dir / f"{NAME}_best.json", tensors, meta, weights_path=path.with_suffix(".safetensors"))
    lstm_seconds = time.time() - t_lstm

    # the best epoch and both baselines, side by side on validation and test
    model.load_state_dict(load_checkpoint(run_dir / f"{NAME}_best.json").prefixed("model."))
    eval_splits = [s for s in ("val", "test") if len(split[s])]
    scores = {s: {"majority": np.full(len(split[s]), prior),
                  "bag_of_events": bag.scores(batcher, split[s]),
                  "lstm": sigmoid(lstm_logits(model, batcher, split[s]))} for s in eval_splits}
    y_by_split = {s: y[split[s]] for s in eval_splits}
    metrics = {s: {m: binary_metrics(y_by_split[s], scores[s][m]) for m in MODELS} for s in eval_splits}
    classes = data.classes
    report = {
        "classes": classes, "positive_class": classes[1], "threshold": 0.5,
        "class_weights": {"mode": cfg.class_weights, classes[0]: float(weights[0]), classes[1]: float(weights[1])},
        "sequences": {**{s: {"n": len(split[s]), "positives": int(y[split[s]].sum())} for s in SPLITS},
                      "unlabelled_left_out": data.unlabelled},
        "truncation": {"max_length": opts["max_length"], "truncate": opts["truncate"],
                       "truncated_sequences": int(np.sum(data.table.lengths > opts["max_length"]))},
        "best_epoch": best_epoch, "epochs": history[-1]["epoch"] if history else start,
        "metrics": metrics,
        "seconds": {"bag_of_events": round(bag_seconds, 3), "lstm": round(lstm_seconds, 3)},
        "history": history,
    }
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=1))
    plot_roc(y_by_split, scores, run_dir / "roc.png")
    log(f"best epoch {best_epoch} (lowest validation loss); wrote {run_dir}/report.json and {run_dir}/roc.png")
    log(format_metrics(metrics, classes))
    return TrainResult(run_dir, report, model, split_ids, scores)


# ---- using a trained classifier -----------------------------------------------------------
@dataclass
class TrainedClassifier:
    model: EventLSTM
    bag: BagOfEvents
    encoding: Encoding
    classes: list[str]
    prior: float
    max_length: int
    truncate: str
    device: torch.device
    path: Path

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "auto") -> "TrainedClassifier":
        ckpt = load_classifier_checkpoint(checkpoint)
        meta, dev = ckpt.meta, pick_device(device)
        try:
            model = EventLSTM(ModelConfig(**meta["model"])).to(dev)
            model.load_state_dict(ckpt.prefixed("model."))
            encoding = Encoding.from_meta(meta["data"]["encoding"])
            bag = BagOfEvents(encoding.vocab_sizes, len(encoding.schema.numeric_cols))
            bag.load_state_dict(ckpt.prefixed("bag."))
        except (KeyError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt.path} is an incomplete classifier checkpoint ({e}); retrain it") from None
        return cls(model, bag, encoding, meta["data"]["classes"], meta["train"]["prior"],
                   meta["data"]["max_length"], meta["data"]["truncate"], dev, ckpt.path)

    def read(self, events: str, labels: str | None = None, buys: str | None = None,
             need_labels: bool = False) -> EventTable:
        table, _ = load_table(source_for(self.encoding.schema, events, labels, buys), need_labels=need_labels)
        return table

    def scores(self, table: EventTable) -> dict[str, np.ndarray]:
        """Positive-class scores of every sequence, for the LSTM and both baselines."""
        batcher = Batcher(self.encoding.encode(table), self.max_length, self.truncate, self.device)
        idx = np.arange(len(table.sequence_ids))
        return {"majority": np.full(len(idx), self.prior),
                "bag_of_events": self.bag.scores(batcher, idx),
                "lstm": sigmoid(lstm_logits(self.model, batcher, idx))}


def predict(checkpoint: str | Path, events: str, device: str = "auto") -> list[tuple[str, float, str]]:
    """(sequence id, positive-class score, predicted label) per sequence, in file order."""
    clf = TrainedClassifier.load(checkpoint, device)
    table = clf.read(events)
    scores = clf.scores(table)["lstm"]
    return [(sid, float(s), clf.classes[int(s >= 0.5)]) for sid, s in zip(table.sequence_ids, scores)]


def write_predictions(rows: list[tuple[str, float, str]], out) -> None:
    import csv

    w = csv.writer(out, lineterminator="\n")
    w.writerow(["sequence_id", "score", "predicted_label"])
    w.writerows((sid, f"{score:.6f}", label) for sid, score, label in rows)


def evaluate(checkpoint: str | Path, events: str, labels: str | None = None, buys: str | None = None,
             device: str = "auto") -> dict:
    """Metrics of the LSTM and both baselines on a labelled file (every sequence in it)."""
    clf = TrainedClassifier.load(checkpoint, device)
    table = clf.read(events, labels, buys, need_labels=True)
    if table.labels is None:
        raise InputFileError(f"{events} has no labels; give --labels (or --buys for YOOCHOOSE)")
    y = encode_labels(table.labels, clf.classes)
    unknown = sorted({v for v, t in zip(table.labels, y) if t < 0 and v is not None})
    if unknown:
        raise InputFileError(f"{events} has labels the model never saw ({', '.join(map(repr, unknown[:3]))}); "
                             f"it knows {clf.classes[0]!r} and {clf.classes[1]!r}")
    keep = np.flatnonzero(y >= 0)
    if not len(keep):
        raise InputFileError(f"no labels: no sequence in {events} has a label")
    table, y = table.subset(keep), y[keep]
    scores = clf.scores(table)
    return {"checkpoint": str(clf.path), "classes": clf.classes,
            "metrics": {"eval": {m: binary_metrics(y, scores[m]) for m in MODELS}},
            "y": y, "scores": scores}
