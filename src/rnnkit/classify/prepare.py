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
from .labels import encode_labels, find_classes
from .read import load_table
from .split import SPLIT_RULE, SPLITS, split_sequences


@dataclass
class PreparedData:
    """Labelled sequences, split by id and encoded with a vocabulary fit on train only."""

    table: EventTable
    schema: EventSchema
    classes: list[str]  # two: [negative, positive]
    y: np.ndarray  # class index per sequence
    split: dict[str, np.ndarray]  # sequence indices per split
    split_meta: dict
    encoding: Encoding
    unlabelled: int  # sequences left out for having no label

    def split_ids(self) -> dict[str, list[str]]:
        return {s: [self.table.sequence_ids[i] for i in self.split[s]] for s in SPLITS}


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
    names = np.asarray([SPLITS.index(where.get(sid, "train")) for sid in ids])
    split = {name: np.flatnonzero(names == k) for k, name in enumerate(SPLITS)}
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
    for note in table.notes:
        say(note)
    classes = saved["data"]["classes"] if saved else find_classes(table.labels, cfg.positive_label)
    y = encode_labels(table.labels, classes)
    labelled = np.flatnonzero(y >= 0)
    if not len(labelled):
        raise InputFileError(f"no labels: none of the {len(y)} sequences has one of the labels {', '.join(map(repr, classes[:5]))}")
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
    counts = ", ".join(_split_counts(k, s[k], y, classes) for k in SPLITS)
    return [
        f"read {len(t.sequence_ids)} labelled sequences, {int(t.offsets[-1])} events"
        + (f"; {data.unlabelled} sequences without a label left out" if data.unlabelled else ""),
        f"fields: categorical {', '.join(data.schema.categorical_cols) or '-'} "
        f"(vocabulary sizes {', '.join(map(str, data.encoding.vocab_sizes)) or '-'}); "
        f"numeric {', '.join(data.schema.numeric_cols) or '-'}",
        f"split by sequence id (seed {data.split_meta['seed']}): {counts}",
        _classes_line(cfg, classes, weights),
        f"truncation: {longer} sequences longer than {opts['max_length']} events keep their {end} {opts['max_length']}",
    ]


def _split_counts(name: str, idx: np.ndarray, y: np.ndarray, classes: list[str]) -> str:
    if len(classes) == 2:
        return f"{name} {len(idx)} ({int(y[idx].sum())} positive)"
    return f"{name} {len(idx)} ({len(np.unique(y[idx]))} classes)"


def _classes_line(cfg: TrainConfig, classes: list[str], weights: np.ndarray) -> str:
    shown = ", ".join(f"{c!r} {w:.3f}" for c, w in zip(classes[:8], weights[:8])) + (", ..." if len(classes) > 8 else "")
    if len(classes) == 2:
        return f"positive class {classes[1]!r}; class weights ({cfg.class_weights}): {shown}"
    return f"{len(classes)} classes; class weights ({cfg.class_weights}): {shown}"
