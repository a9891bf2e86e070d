"""`classify train`, step by step: load and split the data, fit the baselines, train the
LSTM (trainer.py), then report the best epoch beside the baselines (evaluate.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ..core.atomic import atomic_write_text
from ..core.checkpoint import Checkpoint, load_checkpoint, unpack_optimizer
from ..core.device import resolve_device
from ..errors import CheckpointError, ConfigError
from .baseline import BagOfEvents
from .checkpoint import (
    FORMAT,
    KIND,
    check_run_folder,
    clear_run_folder,
    load_checkpoint_to_continue,
)
from .config import TrainConfig, resolve_options
from .evaluate import Baselines, score_splits, write_report
from .model import Batcher, EventLSTM, ModelConfig, class_weights_for
from .prepare import PreparedData, prepare_data, summary
from .report import format_metrics
from .split import write_split
from .trainer import LSTMTrainer, Outcome, RunState


@dataclass
class TrainResult:
    run_dir: Path
    report: dict | None  # None when the run was interrupted
    model: EventLSTM  # the best epoch's weights (the last ones when interrupted)
    split_ids: dict[str, list[str]]
    probabilities: dict[str, dict[str, np.ndarray]]  # split -> model -> (n, K)
    stopped: str  # finished | time_budget | interrupted
    stop_signal: int | None = None
    checkpoint: Path | None = None  # the last one written


def train_classifier(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    say = (lambda *_: None) if cfg.quiet else log
    device = resolve_device(cfg.device, cfg.gpu)
    resume = _continued_checkpoint(cfg)
    opts = resolve_options(cfg, {**resume.meta["data"], **resume.meta["model"]} if resume else None)
    replace = check_run_folder(cfg, continuing=resume is not None)
    data = prepare_data(cfg, resume, say)  # the run folder is touched only once the data has loaded
    clear_run_folder(cfg, replace)
    write_split(cfg.folder / "split.json", {k: data.split_meta[k] for k in ("seed", "val_frac", "test_frac", "rule")},
                data.split_ids())
    atomic_write_text(cfg.folder / "config.json", json.dumps(cfg.to_dict(), indent=1))
    batcher = Batcher(data.encoding.encode(data.table), opts["max_length"], opts["truncate"], device)
    weights = class_weights_for(data.y[data.split["train"]], cfg.class_weights, len(data.classes))
    for line in summary(cfg, data, opts, weights):
        say(line)
    baselines = _baselines(data, batcher, weights, resume)
    model, optimizer, state = _build(cfg, data, opts, device, resume, say)
    header = _header(cfg, data, opts, model, weights, baselines)
    trainer = LSTMTrainer(cfg, model, optimizer, batcher, data.split, data.y, weights, header,
                          baselines.bag.tensors(), state)
    outcome = trainer.run(continuing=resume is not None)
    if outcome.stopped == "interrupted":
        last = outcome.checkpoint or (resume.path if resume else None)  # no batch since: that one stands
        return TrainResult(cfg.folder, None, model, data.split_ids(), {}, outcome.stopped, outcome.stop_signal, last)
    return _report(cfg, data, model, baselines, batcher, outcome, state, opts, weights, log)


def _continued_checkpoint(cfg: TrainConfig) -> Checkpoint | None:
    if not cfg.init_from:
        return None
    resume = load_checkpoint_to_continue(cfg.init_from)
    done, mid_epoch = resume.meta["epoch"], resume.meta["train"]["epoch_batches"] > 0
    if cfg.time_budget is None and cfg.max_epochs <= done and not mid_epoch:
        raise ConfigError(f"{resume.path} has already trained {done} epochs; raise --max_epochs above {done} to continue")
    return resume


def _baselines(data: PreparedData, batcher: Batcher, weights: np.ndarray, resume: Checkpoint | None) -> Baselines:
    y_train = data.y[data.split["train"]]
    prior = np.bincount(y_train, minlength=len(data.classes)) / len(y_train)
    t0 = time.time()
    if resume is not None:  # the same split: the same fit
        bag = BagOfEvents.from_tensors(resume.tensors, data.encoding.vocab_sizes, len(data.classes))
    else:
        class_weights = None if np.all(weights == 1) else weights
        bag = BagOfEvents.fit(batcher, data.split["train"], y_train, data.encoding.vocab_sizes, class_weights,
                              len(data.classes))
    return Baselines(prior, bag, time.time() - t0)


def _build(cfg: TrainConfig, data: PreparedData, opts: dict, device: torch.device, resume: Checkpoint | None, say):
    torch.manual_seed(cfg.seed)
    model_cfg = ModelConfig(data.encoding.vocab_sizes, len(data.schema.numeric_cols), opts["embedding_size"],
                            opts["rnn_size"], opts["num_layers"], opts["dropout"], len(data.classes))
    model = EventLSTM(model_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts["learning_rate"])
    state = RunState()
    if resume is not None:
        model.load_state_dict(resume.prefixed("model."))
        unpack_optimizer(optimizer, resume.tensors, resume.meta["optimizer"])
        saved = resume.meta["train"]
        state = RunState(**{f.name: saved[f.name] for f in fields(RunState)})
        if not (cfg.folder / f"{cfg.prefix}_best.json").is_file():  # continued into a new folder
            state.best_val_loss = state.best_iteration = state.best_epoch = None
        torch.set_rng_state(resume.tensors["rng.torch"])
        say(f"continuing from {resume.path} (epoch {state.epoch}, iteration {state.iteration})")
    if cfg.learning_rate is not None or resume is None:
        for group in optimizer.param_groups:
            group["lr"] = opts["learning_rate"]
    return model, optimizer, state


def _header(cfg: TrainConfig, data: PreparedData, opts: dict, model: EventLSTM, weights: np.ndarray,
            baselines: Baselines) -> dict:
    """What every checkpoint of this run says about it (its progress is added at each save)."""
    return {
        "kind": KIND, "classifier_format": FORMAT, "model": asdict(model.cfg),
        "data": {"encoding": data.encoding.to_meta(), "classes": data.classes, "max_length": opts["max_length"],
                 "truncate": opts["truncate"], "max_vocab": cfg.max_vocab},
        "split": data.split_meta, "source": _resolved(asdict(cfg.source)), "options": cfg.options(),
        "train": {"class_weights": weights.tolist(), "prior": baselines.prior.tolist()},
    }


def _resolved(source: dict) -> dict:
    """File paths made absolute, so a --resume from another folder finds the data."""
    return {k: str(Path(v).resolve()) if k in ("events", "labels", "buys") and v else v for k, v in source.items()}


def _report(cfg: TrainConfig, data: PreparedData, model: EventLSTM, baselines: Baselines, batcher: Batcher,
            outcome: Outcome, state: RunState, opts: dict, weights: np.ndarray, log) -> TrainResult:
    best = cfg.folder / f"{cfg.prefix}_best.json"
    if not best.is_file():
        raise CheckpointError(f"{cfg.folder} holds no validated checkpoint to report on: the run stopped before "
                              "its first validation; give it more --time_budget or --max_epochs")
    model.load_state_dict(load_checkpoint(best).prefixed("model."))
    proba, metrics = score_splits(model, baselines, batcher, data)
    facts = {
        "class_weights": {"mode": cfg.class_weights, **dict(zip(data.classes, map(float, weights)))},
        "truncation": {"max_length": opts["max_length"], "truncate": opts["truncate"],
                       "truncated_sequences": int(np.sum(data.table.lengths > opts["max_length"]))},
        "best_epoch": state.best_epoch, "best_iteration": state.best_iteration, "epochs": state.epoch,
        "stopped": outcome.stopped, "bag_of_events_converged": baselines.bag.converged,
        "seconds": {"bag_of_events": round(baselines.seconds, 3), "lstm": round(outcome.seconds, 3)},
        "history": state.history,
    }
    report = write_report(cfg.folder, data, metrics, proba, facts)
    pictures = "roc.png and confusion.png" if len(data.classes) == 2 else "confusion.png"
    log(f"best epoch {state.best_epoch} (lowest validation loss); wrote {cfg.folder}/report.json and "
        f"{cfg.folder}/{pictures}")
    log(format_metrics(metrics, data.classes))
    return TrainResult(cfg.folder, report, model, data.split_ids(), proba, outcome.stopped, None, outcome.checkpoint)
