"""Event sequences for the classifier: one CSV row per event, grouped into ordered sequences.

Reads a generic CSV (labels in a column or a separate file keyed by sequence id) or the
YOOCHOOSE RecSys 2015 layout (clicks + buys; label = the session has a buy), encodes
categorical fields as ids and numeric fields as normalized floats, splits by sequence id,
and writes a synthetic set whose label lives only in the order of two events.

Truncation: a sequence longer than max_length keeps its LAST max_length events by default
(keep_last: the events just before the label is decided), or its first with keep_first.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputFileError, RnnkitError

FORMATS = ("generic", "yoochoose")
TRUNCATE = ("keep_last", "keep_first")
PAD_ID, UNKNOWN_ID = 0, 1  # categorical ids; real values start at 2

# YOOCHOOSE files have no header; these are the column names rnnkit gives them.
YOOCHOOSE_CLICKS = ("session", "timestamp", "item", "category")
YOOCHOOSE_BUYS = ("session", "timestamp", "item", "price", "quantity")
YOOCHOOSE_GAP = "log_seconds_since_previous"  # derived numeric field: log1p of the click gap

_KNOWN_POSITIVE = {("0", "1"): "1", ("false", "true"): "true", ("no", "yes"): "yes", ("neg", "pos"): "pos"}


# ---- what to read -----------------------------------------------------------------------
@dataclass
class EventSource:
    """Where the events are and how to read them. Unset column lists are inferred."""

    events: str
    format: str | None = None  # None: generic (or, continuing a run, the checkpoint's)
    labels: str | None = None  # generic: a CSV of sequence id + label
    buys: str | None = None  # yoochoose: the buys file (labels)
    sequence_col: str | None = None
    order_col: str | None = None
    label_col: str | None = None
    categorical_cols: list[str] | None = None
    numeric_cols: list[str] | None = None
    fixed_schema: bool = False  # columns come from a trained model, not from flags

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
class EventTable:
    """Events grouped by sequence and in order: sequence i owns rows offsets[i]:offsets[i+1]."""

    sequence_ids: list[str]
    offsets: np.ndarray  # int64 [S + 1]
    categorical: dict[str, list[str]]
    numeric: dict[str, np.ndarray]  # float64 [N], NaN where empty
    labels: list[str | None] | None  # raw label per sequence, None where it has none

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, keep: np.ndarray) -> "EventTable":
        rows = ranges(self.offsets[:-1][keep], self.lengths[keep])
        return EventTable(
            sequence_ids=[self.sequence_ids[i] for i in keep],
            offsets=np.concatenate([[0], np.cumsum(self.lengths[keep])]).astype(np.int64),
            categorical={c: [v[r] for r in rows] for c, v in self.categorical.items()},
            numeric={c: v[rows] for c, v in self.numeric.items()},
            labels=None if self.labels is None else [self.labels[i] for i in keep],
        )


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [starts[0], ..., starts[0]+lengths[0]-1, starts[1], ...]."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    first_slot = np.cumsum(lengths) - lengths
    return np.repeat(starts - first_slot, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


# ---- reading files ----------------------------------------------------------------------
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


def _read_headerless(path: str, width: int, what: str, layout: tuple[str, ...]) -> list[list[str]]:
    _, rows = read_csv(path, what, header=False)
    skip = 0 if rows[0][0].strip().isdigit() else 1  # tolerate a header line
    rows = rows[skip:]
    for line, r in enumerate(rows, start=1 + skip):
        if len(r) != width:
            raise InputFileError(
                f"{path} line {line} has {len(r)} fields; the YOOCHOOSE {what} layout is {','.join(layout)}"
            )
    if not rows:
        raise InputFileError(f"{path} holds no {what}")
    return rows


def _timestamps_ms(values: list[str], path: str) -> np.ndarray:
    try:
        return np.asarray([v.strip().rstrip("Z") for v in values], dtype="datetime64[ms]").astype(np.int64)
    except ValueError as e:
        raise InputFileError(f"{path}: a timestamp is not ISO 8601 like 2014-04-07T10:51:09.277Z ({e})") from None


def load_yoochoose(src: EventSource, need_labels: bool) -> tuple[EventTable, EventSchema]:
    if need_labels and not src.buys:
        raise ConfigError("YOOCHOOSE labels come from the buys file: add --buys yoochoose-buys.dat")
    rows = _read_headerless(src.events, 4, "clicks", YOOCHOOSE_CLICKS)
    ms = _timestamps_ms([r[1] for r in rows], src.events)
    ids, perm, offsets = group_rows([r[0].strip() for r in rows], ms)
    ms = ms[perm]
    gap = np.diff(ms, prepend=ms[:1]).astype(np.float64) / 1000.0
    gap[offsets[:-1]] = 0.0  # first click of a session has no previous click
    table = EventTable(
        sequence_ids=ids,
        offsets=offsets,
        categorical={"item": [rows[i][2].strip() for i in perm], "category": [rows[i][3].strip() for i in perm]},
        numeric={YOOCHOOSE_GAP: np.log1p(np.maximum(gap, 0.0))},
        labels=None,
    )
    if src.buys:
        bought = {r[0].strip() for r in _read_headerless(src.buys, 5, "buys", YOOCHOOSE_BUYS)}
        table.labels = ["1" if sid in bought else "0" for sid in ids]
    schema = EventSchema("yoochoose", "session", "timestamp", None, ["item", "category"], [YOOCHOOSE_GAP])
    return table, schema


def load_table(src: EventSource, need_labels: bool = True) -> tuple[EventTable, EventSchema]:
    """Events grouped into sequences; with need_labels, a missing label source is an error."""
    src.check_label_source()
    return load_yoochoose(src, need_labels) if src.format == "yoochoose" else load_generic(src, need_labels)


def source_for(schema: EventSchema, events: str, labels: str | None = None, buys: str | None = None) -> EventSource:
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
    )


# ---- labels -----------------------------------------------------------------------------
def binary_classes(labels: list[str | None], positive: str | None = None) -> list[str]:
    """[negative, positive]: 1/true/yes is positive, else --positive_label, else the rarer class."""
    counts = Counter(v for v in labels if v is not None)
    if not counts:
        raise InputFileError("no labels: no sequence has a label; give --label_col or --labels labels.csv")
    if len(counts) == 1:
        only = next(iter(counts))
        raise InputFileError(
            f"every labelled sequence has the label {only!r}; a classifier needs two classes: check the label column"
        )
    if len(counts) > 2:
        shown = ", ".join(repr(c) for c in sorted(counts)[:6]) + (", ..." if len(counts) > 6 else "")
        raise InputFileError(
            f"found {len(counts)} label values ({shown}); classify handles two classes: check the label column"
        )
    classes = sorted(counts)
    if positive is not None:
        if positive not in counts:
            raise ConfigError(f"--positive_label {positive!r} is not a label; the labels are {classes[0]!r} and {classes[1]!r}")
    else:
        positive = _KNOWN_POSITIVE.get(tuple(c.lower() for c in classes))
        positive = next((c for c in classes if c.lower() == positive), None) if positive else None
        if positive is None:
            positive = min(classes, key=lambda c: (counts[c], c != classes[1]))
    return [c for c in classes if c != positive] + [positive]


def encode_labels(labels: list[str | None], classes: list[str]) -> np.ndarray:
    """1 for the positive class, 0 for the negative, -1 for unlabelled or unknown."""
    return np.asarray([1 if v == classes[1] else 0 if v == classes[0] else -1 for v in labels], dtype=np.int64)


# ---- encoding ---------------------------------------------------------------------------
@dataclass
class EncodedEvents:
    sequence_ids: list[str]
    offsets: np.ndarray  # int64 [S + 1]
    categorical: np.ndarray  # int64 [N, C]
    numeric: np.ndarray  # float32 [N, F]


@dataclass
class Encoding:
    """Categorical value -> id (fit on the training split) and numeric mean/std."""

    schema: EventSchema
    vocabularies: dict[str, dict[str, int]] = field(default_factory=dict)
    numeric_stats: dict[str, list[float]] = field(default_factory=dict)  # col -> [mean, std]

    @classmethod
    def fit(cls, table: EventTable, schema: EventSchema, sequences: np.ndarray, max_vocab: int) -> "Encoding":
        rows = ranges(table.offsets[:-1][sequences], table.lengths[sequences])
        vocabularies = {}
        for col in schema.categorical_cols:
            counts = Counter(table.categorical[col][r] for r in rows)
            kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
            vocabularies[col] = {value: UNKNOWN_ID + 1 + i for i, (value, _) in enumerate(kept)}
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
        cat = np.zeros((n, len(self.schema.categorical_cols)), dtype=np.int64)
        for j, col in enumerate(self.schema.categorical_cols):
            vocab = self.vocabularies[col]
            cat[:, j] = np.fromiter((vocab.get(v, UNKNOWN_ID) for v in table.categorical[col]), np.int64, n)
        num = np.zeros((n, len(self.schema.numeric_cols)), dtype=np.float32)
        for j, col in enumerate(self.schema.numeric_cols):
            mean, std = self.numeric_stats[col]
            x = (table.numeric[col] - mean) / std
            num[:, j] = np.where(np.isfinite(x), x, 0.0)  # missing -> the mean
        return EncodedEvents(list(table.sequence_ids), table.offsets, cat, num)

    def to_meta(self) -> dict:
        return {"schema": vars(self.schema), "vocabularies": self.vocabularies, "numeric_stats": self.numeric_stats}

    @classmethod
    def from_meta(cls, meta: dict) -> "Encoding":
        return cls(EventSchema(**meta["schema"]), meta["vocabularies"], meta["numeric_stats"])


def truncated_spans(offsets: np.ndarray, max_length: int, truncate: str) -> tuple[np.ndarray, np.ndarray]:
    """(start row, length) per sequence after truncation to max_length events."""
    lengths = np.minimum(np.diff(offsets), max_length)
    starts = offsets[1:] - lengths if truncate == "keep_last" else offsets[:-1].copy()
    return starts.astype(np.int64), lengths.astype(np.int64)


# ---- splitting --------------------------------------------------------------------------
SPLIT_RULE = (
    "stratified by label: each class's sequence ids are sorted, shuffled with "
    "numpy.random.default_rng(seed) (class 0 first), then cut into test, validation, train"
)


def split_sequences(ids: list[str], y: np.ndarray, val_frac: float, test_frac: float, seed: int) -> dict[str, np.ndarray]:
    """Sequence indices per split; a sequence is in exactly one. Independent of file order."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in (0, 1):
        members = np.flatnonzero(y == c)
        members = members[np.argsort(np.asarray([ids[i] for i in members]), kind="stable")]
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_test = max(1, round(n * test_frac)) if test_frac > 0 else 0
        n_val = max(1, round(n * val_frac))
        if n - n_test - n_val < 1:
            need = 1 + (n_test > 0) + 1
            raise RnnkitError(
                f"too few sequences to split: class {c} has {n} labelled sequence(s), at least {need} are needed "
                "(one each for train, validation" + (", test" if test_frac > 0 else "") + "); "
                "add labelled sequences" + (" or set --test_frac 0" if test_frac > 0 else "")
            )
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


# ---- synthetic data ---------------------------------------------------------------------
SYNTH_FILLERS = ("C", "D", "E", "F", "G", "H")
SYNTH_ITEMS = {"A": "214536502", "B": "214536500", "C": "214577561", "D": "214662742",
               "E": "214825110", "F": "214757390", "G": "214757407", "H": "214551617"}
SYNTH_CATEGORIES = {"A": "0", "B": "0", "C": "S", "D": "1", "E": "2", "F": "3", "G": "3", "H": "12"}


@dataclass
class SynthSequence:
    label: int
    events: list[str]
    values: np.ndarray  # numeric field, independent of the label
    gaps: np.ndarray  # seconds since the previous event


def synth_sequences(n: int, seed: int = 0, positive_rate: float = 0.3,
                    min_events: int = 6, max_events: int = 30) -> list[SynthSequence]:
    """Every sequence holds exactly one A and one B among fillers C..H; label 1 iff A comes first.

    Both classes have the same counts of every event and the same lengths, so a bag of
    events carries no signal: only the order does.
    """
    if n < 1 or not 0 < positive_rate < 1 or not 2 <= min_events <= max_events:
        raise ConfigError("synth needs --sequences >= 1, 0 < --positive_rate < 1 and 2 <= --min_events <= --max_events")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        label = int(rng.random() < positive_rate)
        length = int(rng.integers(min_events, max_events + 1))
        events = [str(e) for e in rng.choice(SYNTH_FILLERS, size=length)]
        first, second = sorted(rng.choice(length, size=2, replace=False))
        events[first], events[second] = ("A", "B") if label else ("B", "A")
        values = np.round(rng.normal(size=length), 3)
        gaps = np.round(rng.exponential(20.0, size=length), 3)
        out.append(SynthSequence(label, events, values, gaps))
    return out


def write_synth_csv(path: str | Path, seqs: list[SynthSequence], seed: int = 0) -> int:
    """session_id,timestamp,event,value,label; rows sorted by time, so sessions interleave."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for sid, s in enumerate(seqs, start=1):
        t = 1_700_000_000 + float(rng.uniform(0, 86_400)) + np.cumsum(s.gaps)
        rows += [(round(float(ti), 3), sid, e, float(v), s.label) for ti, e, v in zip(t, s.events, s.values)]
    rows.sort()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["session_id", "timestamp", "event", "value", "label"])
        w.writerows((sid, f"{t:.3f}", e, v, y) for t, sid, e, v, y in rows)
    return len(rows)


def write_synth_yoochoose(clicks: str | Path, buys: str | Path, seqs: list[SynthSequence], seed: int = 0) -> int:
    """clicks: session,timestamp,item,category; buys: session,timestamp,item,price,quantity (no headers)."""
    rng = np.random.default_rng(seed + 1)
    start = np.datetime64("2014-04-01T00:00:00.000", "ms")
    n_clicks = 0
    with open(clicks, "w", newline="") as fc, open(buys, "w", newline="") as fb:
        wc, wb = csv.writer(fc), csv.writer(fb)
        for sid, s in enumerate(seqs, start=1):
            t = start + np.timedelta64(int(rng.uniform(0, 180 * 86_400_000)), "ms")
            for e, gap in zip(s.events, s.gaps):
                t = t + np.timedelta64(int(gap * 1000), "ms")
                wc.writerow([sid, f"{t}Z", SYNTH_ITEMS[e], SYNTH_CATEGORIES[e]])
                n_clicks += 1
            if s.label:
                for _ in range(int(rng.integers(1, 3))):
                    t = t + np.timedelta64(int(rng.exponential(60_000)), "ms")
                    item = SYNTH_ITEMS[str(rng.choice(s.events))]
                    wb.writerow([sid, f"{t}Z", item, int(rng.integers(1, 200)) * 10, int(rng.integers(1, 4))])
    return n_clicks
