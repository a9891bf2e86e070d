"""Encoding: categorical values -> ids (fit on the training split), numbers -> z-scores,
and truncation to max_length events.

Truncation: a sequence longer than max_length keeps its LAST max_length events by default
(keep_last: the events just before the label is decided), or its first with keep_first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .events import EventSchema, EventTable, ranges

TRUNCATE = ("keep_last", "keep_first")
PAD_ID, UNKNOWN_ID = 0, 1  # categorical ids; real values start at 2


@dataclass
class EncodedEvents:
    sequence_ids: list[str]
    offsets: np.ndarray  # int64 [S + 1]
    categorical: np.ndarray  # int32 [N, C]
    numeric: np.ndarray  # float32 [N, F]


@dataclass
class Encoding:
    """Categorical value -> id (fit on the training split) and numeric mean/std."""

    schema: EventSchema
    vocabularies: dict[str, dict[str, int]] = field(default_factory=dict)
    numeric_stats: dict[str, list[float]] = field(default_factory=dict)  # col -> [mean, std]

    @classmethod
    def fit(cls, table: EventTable, schema: EventSchema, sequences: np.ndarray, max_vocab: int) -> Encoding:
        rows = ranges(table.offsets[:-1][sequences], table.lengths[sequences])
        vocabularies = {}
        for col in schema.categorical_cols:
            column = table.categorical[col]
            counts = np.bincount(column.codes[rows], minlength=len(column.values))
            kept = sorted((v for v in zip(column.values, counts.tolist()) if v[1]), key=lambda kv: (-kv[1], kv[0]))
            vocabularies[col] = {value: UNKNOWN_ID + 1 + i for i, (value, _) in enumerate(kept[:max_vocab])}
        stats = {}
        for col in schema.numeric_cols:
            x = table.numeric[col][rows]
            x = x[np.isfinite(x)]
            mean = float(x.mean()) if x.size else 0.0
            std = float(x.std()) if x.size else 1.0
            stats[col] = [mean, std if std > 1e-12 else 1.0]
        return cls(schema, vocabularies, stats)

    @property
    def vocab_sizes(self) -> list[int]:
        return [UNKNOWN_ID + 1 + len(self.vocabularies[c]) for c in self.schema.categorical_cols]

    def encode(self, table: EventTable) -> EncodedEvents:
        n = int(table.offsets[-1])
        cat = np.zeros((n, len(self.schema.categorical_cols)), dtype=np.int32)
        for j, col in enumerate(self.schema.categorical_cols):
            vocab, column = self.vocabularies[col], table.categorical[col]
            ids = np.fromiter((vocab.get(v, UNKNOWN_ID) for v in column.values), np.int32, len(column.values))
            cat[:, j] = ids[column.codes]
        num = np.zeros((n, len(self.schema.numeric_cols)), dtype=np.float32)
        for j, col in enumerate(self.schema.numeric_cols):
            mean, std = self.numeric_stats[col]
            x = (table.numeric[col] - mean) / std
            num[:, j] = np.where(np.isfinite(x), x, 0.0)  # missing -> the mean
        return EncodedEvents(list(table.sequence_ids), table.offsets, cat, num)

    def to_meta(self) -> dict:
        return {"schema": vars(self.schema), "vocabularies": self.vocabularies, "numeric_stats": self.numeric_stats}

    @classmethod
    def from_meta(cls, meta: dict) -> Encoding:
        return cls(EventSchema(**meta["schema"]), meta["vocabularies"], meta["numeric_stats"])


def truncated_spans(offsets: np.ndarray, max_length: int, truncate: str) -> tuple[np.ndarray, np.ndarray]:
    """(start row, length) per sequence after truncation to max_length events."""
    lengths = np.minimum(np.diff(offsets), max_length)
    starts = offsets[1:] - lengths if truncate == "keep_last" else offsets[:-1].copy()
    return starts.astype(np.int64), lengths.astype(np.int64)
