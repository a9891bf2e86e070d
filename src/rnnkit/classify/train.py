"""`classify train`: the LSTM trained next to the majority-class and bag-of-events
baselines on the same split. Checkpoints every epoch, keeps the lowest validation loss as
classifier_best.json, and writes report.json, split.json and roc.png."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ..core.atomic import atomic_write_text
from ..core.checkpoint import (
    load_checkpoint,
    pack_optimizer,
    save_checkpoint,
    unpack_optimizer,
)
from ..errors import ConfigError, RnnkitError
from .baseline import fit_bag_of_events
from .config import TrainConfig, pick_device, resolve_options
from .metrics import MODELS, binary_metrics, roc_auc
from .model import (
    Batcher,
    EventLSTM,
    ModelConfig,
    class_weights_for,
    length_batches,
    lstm_logits,
    sigmoid,
    weighted_bce,
)
from .prepare import prepare_data, summary
from .report import fmt_score, format_metrics, plot_roc
from .run_dir import (
    NAME,
    check_run_dir,
    load_classifier_checkpoint,
    prepare_run_dir,
    write_split,
)
from .split import SPLITS


@dataclass
class TrainResult:
    run_dir: Path
    report: dict
    model: EventLSTM  # best weights loaded
    split_ids: dict[str, list[str]]
    scores: dict[str, dict[str, np.ndarray]]  # split -> model name -> positive-class scores


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
    opts = resolve_options(cfg, {**saved["data"], **saved["model"]} if saved else None)
    replace = check_run_dir(run_dir, cfg.force, continuing=resume is not None)

    data = prepare_data(cfg, resume, say)
    split, y = data.split, data.y
    split_ids = {s: [data.table.sequence_ids[i] for i in split[s]] for s in SPLITS}
    prepare_run_dir(run_dir, replace)
    write_split(run_dir / "split.json", {k: data.split_meta[k] for k in ("seed", "val_frac", "test_frac", "rule")},
                split_ids)
    batcher = Batcher(data.encoding.encode(data.table), opts["max_length"], opts["truncate"], device)
    weights = class_weights_for(y[split["train"]], cfg.class_weights)
    for line in summary(cfg, data, opts, weights):
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
            f"val ROC AUC {fmt_score(val_auc).strip()}  ({time.time() - t0:.1f}s){'  *best' if improved else ''}")
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
