"""A generic event CSV: a header, one row per event, labels in a column or a separate file.

Read by pyarrow in blocks into typed arrays (csv_columns), then grouped into sequences
(group); bad rows stop the read in one line, or are left out with --skip_bad_rows.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError
from .bad_rows import BadRows
from .csv_columns import MISSING_ID, read_columns
from .csv_head import read_head
from .events import Codes, EventSchema, EventSource, EventTable
from .generic_schema import choose_columns, columns_to_read
from .group import group_rows, number_ids, order_key, sequence_labels, shrink
from .labels_file import labels_from_file


def load_generic(src: EventSource, need_labels: bool) -> tuple[EventTable, EventSchema]:
    head = read_head(src.events, "events")
    schema = choose_columns(src, head, need_labels)
    columns = columns_to_read(schema, head, src, need_labels)
    bad = BadRows(src.events, len(head.names), src.skip_bad_rows)
    data, keep = read_columns(head, columns, bad)
    kept = _drop_rows_without_id_or_order(data, keep, schema, bad)
    label_col = schema.label_col if schema.label_col in data else None
    table = _group(data, kept, schema, label_col, bad)
    if src.labels is not None:
        whole_numbers = columns[0].kind == "integer"
        table.labels = labels_from_file(src.labels, schema.sequence_col, schema.label_col, table.sequence_ids,
                                        whole_numbers)
    if bad.summary():
        table.notes.append(bad.summary())
    if not table.sequence_ids:
        raise InputFileError(f"{src.events}: no events left after leaving out {sum(bad.counts.values())} bad rows")
    return table, schema


def _empty(column: np.ndarray | Codes) -> np.ndarray:
    if isinstance(column, Codes):
        return column.codes == (column.values.index("") if "" in column.values else -1)
    return column == MISSING_ID if column.dtype == np.int64 else np.isnan(column)


def _take(column: np.ndarray | Codes, rows: np.ndarray) -> np.ndarray | Codes:
    return column.take(rows) if isinstance(column, Codes) else column[rows]


def _drop_rows_without_id_or_order(data: dict, keep: np.ndarray | None, schema: EventSchema, bad: BadRows) -> np.ndarray | None:
    """Left out in place; returns the pyarrow row index of each row left (None: every row, in order)."""
    kept = None if keep is None or keep.all() else np.flatnonzero(keep)
    kept = _drop_empty(data, schema.sequence_col, "rows with no sequence id", kept, bad)
    if schema.order_col:
        kept = _drop_empty(data, schema.order_col, "rows with no order value", kept, bad)
    if kept is not None:
        for name, column in data.items():
            data[name] = _take(column, kept)
    return kept


def _drop_empty(data: dict, name: str, reason: str, kept: np.ndarray | None, bad: BadRows) -> np.ndarray | None:
    empty = _empty(data[name] if kept is None else _take(data[name], kept))
    if not empty.any():
        return kept
    bad.found(empty, reason, lambda i: f"column {name!r} is empty; every event needs one",
              lambda i: i if kept is None else int(kept[i]))
    return np.flatnonzero(~empty) if kept is None else kept[~empty]


def _group(data: dict, kept: np.ndarray | None, schema: EventSchema, label_col: str | None, bad: BadRows) -> EventTable:
    seq, ids = number_ids(data.pop(schema.sequence_col))
    key = order_key(data.pop(schema.order_col)) if schema.order_col else None
    perm, offsets = group_rows(seq, len(ids), key)
    del seq, key

    def data_index(i: int) -> int:  # grouped row i -> its index among the rows pyarrow returned
        j = i if perm is None else int(perm[i])
        return j if kept is None else int(kept[j])

    if perm is not None:
        for name, column in data.items():
            data[name] = _take(column, perm)
    labels = None
    if label_col is not None:
        label = data.pop(label_col)
        per_sequence, differs = sequence_labels(label, offsets)
        bad.found(differs, "rows whose label differs from their sequence's first",
                  lambda i: _label_change(i, label, per_sequence, offsets, ids, label_col),
                  data_index)
        if differs.any():
            offsets = shrink(offsets, differs)
            rows = np.flatnonzero(~differs)
            for name, column in data.items():
                data[name] = _take(column, rows)
        values = np.asarray(label.values + [None], dtype=object)
        labels = values[per_sequence].tolist()
    return _table(data, ids, offsets, labels, schema)


def _label_change(i: int, label: Codes, per_sequence: np.ndarray, offsets: np.ndarray, ids: list[str], col: str) -> str:
    s = int(np.searchsorted(offsets, i, side="right") - 1)
    return (f"sequence {ids[s]} changes its label in column {col!r} from {label.values[per_sequence[s]]!r} "
            f"to {label.values[label.codes[i]]!r}; give each sequence one label")


def _table(data: dict, ids: list[str], offsets: np.ndarray, labels: list | None, schema: EventSchema) -> EventTable:
    lengths = np.diff(offsets)
    if not lengths.all():  # every row of a sequence was bad: it goes
        keep = np.flatnonzero(lengths)
        ids, offsets = [ids[i] for i in keep], np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)
        labels = None if labels is None else [labels[i] for i in keep]
    return EventTable(ids, offsets, {c: data[c] for c in schema.categorical_cols},
                      {c: data[c] for c in schema.numeric_cols}, labels)
