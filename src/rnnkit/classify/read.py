"""load_table: events grouped into sequences, read by the reader of their format."""

from __future__ import annotations

from .events import EventSchema, EventSource, EventTable
from .read_generic import load_generic
from .read_yoochoose import load_yoochoose


def load_table(src: EventSource, need_labels: bool = True) -> tuple[EventTable, EventSchema]:
    """Events grouped into sequences; with need_labels, a missing label source is an error."""
    src.check_label_source()
    return load_yoochoose(src, need_labels) if src.format == "yoochoose" else load_generic(src, need_labels)


def source_for(schema: EventSchema, events: str, labels: str | None = None, buys: str | None = None,
               skip_bad_rows: bool = False) -> EventSource:
    """Read new events exactly the way a trained model's schema says."""
    return EventSource(
        events=events,
        format=schema.format,
        labels=labels,
        buys=buys,
        sequence_col=schema.sequence_col,
        order_col=schema.order_col,
        label_col=schema.label_col,
        categorical_cols=list(schema.categorical_cols),
        numeric_cols=list(schema.numeric_cols),
        fixed_schema=True,
        skip_bad_rows=skip_bad_rows,
    )
