"""A generic event CSV: a header, one row per event, labels in a column or a separate file.

Columns not named by flags are inferred: numeric if every value parses as a number,
categorical otherwise.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError
from .events import EventSchema, EventSource, EventTable


def read_csv(path: str | Path, what: str, header: bool = True) -> tuple[list[str] | None, list[list[str]]]:
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{path}: no such {what} file; check the path")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            names = next(reader, None) if header else None
            rows = [r for r in reader if r]
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text; save the {what} file as UTF-8 CSV") from None
    except csv.Error as e:
        raise InputFileError(f"{path}: not a readable CSV ({e})") from None
    if (header and names is None) or (not header and not rows):
        raise InputFileError(f"{path} is empty; the {what} file needs one row per event")
    if header:
        names = [n.strip() for n in names]
        for line, r in enumerate(rows, start=2):
            if len(r) != len(names):
                raise InputFileError(
                    f"{path} line {line} has {len(r)} fields but the header has {len(names)}; fix that row"
                )
    return names, rows


def _column(names: list[str], name: str, path: str, why: str) -> int:
    if name not in names:
        raise InputFileError(f"{path} has no column {name!r} ({why}); its columns are: {', '.join(names)}")
    return names.index(name)


def _parse_float(value: str) -> float | None:
    value = value.strip()
    if value == "":
        return math.nan
    try:
        return float(value)
    except ValueError:
        return None


def _numeric_array(values: list[str], col: str, path: str, fixed: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        x = _parse_float(v)
        if x is None:
            fix = "the model was trained on numbers there" if fixed else f"or list {col} in --categorical_cols"
            raise InputFileError(f"{path}: numeric column {col!r} holds {v!r} (data row {i + 1}); fix it, {fix}")
        out[i] = x
    return out


def _is_numeric(values: list[str]) -> bool:
    parsed = [_parse_float(v) for v in values]
    return all(x is not None for x in parsed) and any(not math.isnan(x) for x in parsed)


def group_rows(sequence_values: list[str], order_key: np.ndarray | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sequence ids (first-seen order), the row permutation that groups and orders them, offsets."""
    index: dict[str, int] = {}
    seq = np.fromiter((index.setdefault(v, len(index)) for v in sequence_values), np.int64, len(sequence_values))
    keys = [np.arange(len(seq))]  # ties keep file order
    if order_key is not None:
        keys.append(order_key)
    keys.append(seq)
    perm = np.lexsort(keys)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(seq, minlength=len(index)))]).astype(np.int64)
    return list(index), perm, offsets


def _order_key(values: list[str], col: str, path: str) -> np.ndarray:
    """Numbers sort as numbers; anything else (ISO timestamps) as text."""
    for i, v in enumerate(values):
        if not v.strip():
            raise InputFileError(f"{path}: order column {col!r} is empty at event {i + 1}; every event needs one")
    parsed = [_parse_float(v) for v in values]
    if all(x is not None for x in parsed):
        return np.asarray(parsed, dtype=np.float64)
    return np.asarray([v.strip() for v in values])


def _labels_per_sequence(values: list[str], offsets: np.ndarray, ids: list[str], col: str) -> list[str | None]:
    out: list[str | None] = []
    for s, sid in enumerate(ids):
        seen = {v.strip() for v in values[offsets[s]:offsets[s + 1]]} - {""}
        if len(seen) > 1:
            a, b = sorted(seen)[:2]
            raise InputFileError(
                f"sequence {sid} has two labels ({a!r} and {b!r}) in column {col!r}; give each sequence one label"
            )
        out.append(seen.pop() if seen else None)
    return out


def _labels_from_file(path: str, sequence_col: str, label_col: str | None, ids: list[str]) -> list[str | None]:
    names, rows = read_csv(path, "labels")
    key = _column(names, sequence_col, path, "named by --sequence_col")
    if label_col is None:
        others = [n for n in names if n != sequence_col]
        label_col = "label" if "label" in names else (others[0] if len(others) == 1 else None)
        if label_col is None:
            raise InputFileError(
                f"{path}: which column is the label? name it with --label_col (columns: {', '.join(names)})"
            )
    col = _column(names, label_col, path, "named by --label_col")
    by_id: dict[str, str] = {}
    for line, r in enumerate(rows, start=2):
        sid, label = r[key].strip(), r[col].strip()
        if by_id.setdefault(sid, label) != label:
            raise InputFileError(f"{path} line {line}: sequence {sid} is labelled both {by_id[sid]!r} and {label!r}")
    return [by_id.get(sid) or None for sid in ids]


def load_generic(src: EventSource, need_labels: bool) -> tuple[EventTable, EventSchema]:
    path = src.events

    def why(flag: str) -> str:
        return "the trained model reads it" if src.fixed_schema else f"named by {flag}"

    names, rows = read_csv(path, "events")
    if not rows:
        raise InputFileError(f"{path} has a header but no events")
    if not src.sequence_col:
        raise ConfigError(f"name the column that holds the sequence id with --sequence_col (columns: {', '.join(names)})")
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    _column(names, src.sequence_col, path, why("--sequence_col"))
    seq_values = [v.strip() for v in columns[src.sequence_col]]
    order = None
    if src.order_col:
        _column(names, src.order_col, path, why("--order_col"))
        order = _order_key(columns[src.order_col], src.order_col, path)
    label_col = src.label_col
    if src.labels is None and label_col is None and "label" in names:
        label_col = "label"
    if src.labels is None and need_labels:
        if label_col is None:
            raise InputFileError(
                f"no labels: {path} has no column 'label'; name the label column with --label_col "
                f"or give --labels labels.csv keyed by {src.sequence_col} (columns: {', '.join(names)})"
            )
        _column(names, label_col, path, "named by --label_col")
    has_label_col = src.labels is None and label_col in names
    reserved = {src.sequence_col, src.order_col, label_col if src.labels is None else None}
    for flag, cols in (("--categorical_cols", src.categorical_cols), ("--numeric_cols", src.numeric_cols)):
        for c in cols or []:
            _column(names, c, path, why(flag))
            if c in reserved:
                raise ConfigError(f"{flag} lists {c!r}, which is the sequence, order or label column; drop it")
    chosen = set(src.categorical_cols or []) | set(src.numeric_cols or [])
    rest = [n for n in names if n not in reserved and n not in chosen]
    # an unset list takes the remaining columns: numeric if every value parses as a number
    numeric_cols = src.numeric_cols
    if numeric_cols is None:
        numeric_cols = [n for n in rest if _is_numeric(columns[n])]
    categorical_cols = src.categorical_cols
    if categorical_cols is None:
        categorical_cols = [n for n in rest if n not in numeric_cols]
    if not categorical_cols and not numeric_cols:
        raise InputFileError(
            f"{path} has no event fields to learn from besides the id/order/label columns "
            f"(columns: {', '.join(names)})"
        )
    ids, perm, offsets = group_rows(seq_values, order)
    table = EventTable(
        sequence_ids=ids,
        offsets=offsets,
        categorical={c: [columns[c][i].strip() for i in perm] for c in categorical_cols},
        numeric={c: _numeric_array(columns[c], c, path, src.fixed_schema)[perm] for c in numeric_cols},
        labels=None,
    )
    if src.labels is not None:
        table.labels = _labels_from_file(src.labels, src.sequence_col, label_col, ids)
    elif has_label_col:
        table.labels = _labels_per_sequence([columns[label_col][i] for i in perm], offsets, ids, label_col)
    schema = EventSchema("generic", src.sequence_col, src.order_col, label_col, categorical_cols, numeric_cols)
    return table, schema
