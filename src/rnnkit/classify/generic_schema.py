"""Which column of a generic event CSV is what: the sequence id, the order, the label,
and the event fields (numeric if the first block holds only numbers there, else categorical)."""

from __future__ import annotations

from ..errors import ConfigError, InputFileError
from .csv_columns import Column
from .csv_head import CsvHead
from .events import EventSchema, EventSource


def _column(head: CsvHead, name: str, why: str) -> None:
    if name not in head.names:
        raise InputFileError(f"{head.path} has no column {name!r} ({why}); its columns are: {', '.join(head.names)}")


def choose_columns(src: EventSource, head: CsvHead, need_labels: bool) -> EventSchema:
    def why(flag: str) -> str:
        return "the trained model reads it" if src.fixed_schema else f"named by {flag}"

    if not src.sequence_col:
        raise ConfigError(f"name the column that holds the sequence id with --sequence_col (columns: {', '.join(head.names)})")
    _column(head, src.sequence_col, why("--sequence_col"))
    if src.order_col:
        _column(head, src.order_col, why("--order_col"))
    label_col = _label_column(src, head, need_labels)
    reserved = {src.sequence_col, src.order_col, label_col if src.labels is None else None}
    for flag, cols in (("--categorical_cols", src.categorical_cols), ("--numeric_cols", src.numeric_cols)):
        for c in cols or []:
            _column(head, c, why(flag))
            if c in reserved:
                raise ConfigError(f"{flag} lists {c!r}, which is the sequence, order or label column; drop it")
    chosen = set(src.categorical_cols or []) | set(src.numeric_cols or [])
    rest = [n for n in head.names if n not in reserved and n not in chosen]
    numeric_cols = src.numeric_cols if src.numeric_cols is not None else [n for n in rest if head.is_number(n)]
    categorical_cols = src.categorical_cols
    if categorical_cols is None:
        categorical_cols = [n for n in rest if n not in numeric_cols]
    if not categorical_cols and not numeric_cols:
        raise InputFileError(f"{head.path} has no event fields to learn from besides the id/order/label columns "
                             f"(columns: {', '.join(head.names)})")
    return EventSchema("generic", src.sequence_col, src.order_col, label_col, categorical_cols, numeric_cols)


def _label_column(src: EventSource, head: CsvHead, need_labels: bool) -> str | None:
    label_col = src.label_col
    if src.labels is None and label_col is None and "label" in head.names:
        label_col = "label"
    if src.labels is None and need_labels:
        if label_col is None:
            raise InputFileError(
                f"no labels: {head.path} has no column 'label'; name the label column with --label_col "
                f"or give --labels labels.csv keyed by {src.sequence_col} (columns: {', '.join(head.names)})"
            )
        _column(head, label_col, "named by --label_col")
    return label_col


def columns_to_read(schema: EventSchema, head: CsvHead, src: EventSource, need_labels: bool) -> list[Column]:
    """Each column read, with its kind and what to do about a value that does not fit it
    (the label column only where labels are needed: predicting ignores it)."""
    seq = schema.sequence_col
    out = [Column(seq, "integer", "the ids in its first rows are whole numbers, so every id must be one")
           if head.is_whole_number(seq) else Column(seq, "text", "")]
    if schema.order_col:
        number = head.is_number(schema.order_col)
        out.append(Column(schema.order_col, "number" if number else "text", "its first rows hold numbers, so all must"))
    if need_labels and schema.label_col in head.names and src.labels is None:
        out.append(Column(schema.label_col, "text", ""))
    fix = "the model was trained on numbers there" if src.fixed_schema else "or list it in --categorical_cols"
    out += [Column(c, "text", "") for c in schema.categorical_cols]
    out += [Column(c, "number", fix) for c in schema.numeric_cols]
    return out
