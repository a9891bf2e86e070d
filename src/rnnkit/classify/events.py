"""Events grouped into ordered sequences: what to read (EventSource), what a model reads
(EventSchema) and what loading gives (EventTable, its text fields as Codes)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field

import numpy as np

from ..core.options import option
from ..errors import ConfigError

FORMATS = ("generic", "yoochoose")


def parse_columns(value: str) -> list[str]:
    """'a,b' -> ['a', 'b']; '' or 'none' -> [] (no such fields)."""
    if value.strip().lower() in ("", "none"):
        return []
    return [c.strip() for c in value.split(",") if c.strip()]


@dataclass
class EventSource:
    """Where the events are and how to read them. Unset column lists are inferred. Each field
    but fixed_schema also makes its flag in the `data` group (core/options.py)."""

    events: str = option(MISSING, "events, one row per event (YOOCHOOSE: the clicks file)", group="data",
                         compared=False, metavar="CSV")
    format: str | None = option(None, "generic CSV with a header (default), or yoochoose clicks/buys files",
                                group="data", choices=FORMATS)  # None: generic (or, continuing a run, the checkpoint's)
    labels: str | None = option(None, "labels in a separate CSV keyed by the sequence id column", group="data",
                                compared=False, metavar="CSV")
    buys: str | None = option(None, "YOOCHOOSE buys file; label = the session has a buy", group="data", compared=False,
                              metavar="DAT")
    sequence_col: str | None = option(None, "column holding the sequence id (a session, a cookie)", group="data",
                                      metavar="COL")
    order_col: str | None = option(None, "column to order events by within a sequence (default: file order)",
                                   group="data", metavar="COL")
    label_col: str | None = option(None, "label column (default: 'label' if the file has one)", group="data",
                                   metavar="COL")
    categorical_cols: list[str] | None = option(
        None, "fields to embed (default: every other column that is not all numbers in the first rows)",
        parse=parse_columns, group="data", metavar="A,B")
    numeric_cols: list[str] | None = option(
        None, "fields to normalize (default: every other column of numbers); 'none' for no such fields",
        parse=parse_columns, group="data", metavar="A,B")
    fixed_schema: bool = option(False, flag=False)  # columns come from a trained model, not from flags
    skip_bad_rows: bool = option(False, "generic CSV: leave out bad rows (counted) instead of stopping at the first",
                                 parse=None, group="data")

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"--format {self.format!r} is unknown; use one of {', '.join(FORMATS)}")

    def check_label_source(self) -> None:
        if self.format == "yoochoose" and self.labels:
            raise ConfigError("--labels is for --format generic; YOOCHOOSE labels come from --buys buys.dat")
        if self.format != "yoochoose" and self.buys:
            raise ConfigError("--buys is for --format yoochoose; for a generic CSV use --label_col or --labels")


@dataclass
class EventSchema:
    """The columns a trained model reads; saved in its checkpoint."""

    format: str
    sequence_col: str
    order_col: str | None
    label_col: str | None
    categorical_cols: list[str]
    numeric_cols: list[str]


@dataclass
class Codes:
    """A text column kept compact: each row's index into its distinct values."""

    codes: np.ndarray  # int32 [N]
    values: list[str]

    def tolist(self) -> list[str]:
        return np.asarray(self.values, dtype=object)[self.codes].tolist()

    def take(self, rows: np.ndarray) -> Codes:
        return Codes(self.codes[rows], self.values)


@dataclass
class EventTable:
    """Events grouped by sequence and in order: sequence i owns rows offsets[i]:offsets[i+1]."""

    sequence_ids: list[str]
    offsets: np.ndarray  # int64 [S + 1]
    categorical: dict[str, Codes]
    numeric: dict[str, np.ndarray]  # float64 [N], NaN where empty
    labels: list[str | None] | None  # raw label per sequence, None where it has none
    notes: list[str] = field(default_factory=list)  # what reading left out, to tell the user

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, keep: np.ndarray) -> EventTable:
        rows = ranges(self.offsets[:-1][keep], self.lengths[keep])
        return EventTable(
            sequence_ids=[self.sequence_ids[i] for i in keep],
            offsets=np.concatenate([[0], np.cumsum(self.lengths[keep])]).astype(np.int64),
            categorical={c: v.take(rows) for c, v in self.categorical.items()},
            numeric={c: v[rows] for c, v in self.numeric.items()},
            labels=None if self.labels is None else [self.labels[i] for i in keep],
            notes=self.notes,
        )


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [starts[0], ..., starts[0]+lengths[0]-1, starts[1], ...]."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    first_slot = np.cumsum(lengths) - lengths
    return np.repeat(starts - first_slot, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
