"""The data for training: labelled sequences, split by id (or the split of the run being
continued) and encoded with a vocabulary fit on the training split only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..core.checkpoint import Checkpoint
from ..errors import InputFileError
from .config import TrainConfig, merge_source
from .encode import Encoding
from .events import EventSchema, EventTable
from .labels import binary_classes, encode_labels
from .read import load_table
from .split import SPLIT_RULE, SPLITS, split_sequences


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
    source = merge_source(cfg.source, saved["data"]["encoding"]["schema"]) if saved else cfg.source
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


def summary(cfg: TrainConfig, data: PreparedData, opts: dict, weights: np.ndarray) -> list[str]:
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
