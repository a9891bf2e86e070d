"""YOOCHOOSE (RecSys 2015): headerless clicks `session,timestamp,item,category` and buys
`session,timestamp,item,price,quantity`; the label is whether the session bought something.

The full clicks file holds 33 million rows, so it is read in chunks into typed arrays
(int64 session ids and milliseconds, int32 codes of item and category text); the table
keeps the codes, and Python strings only for the distinct values.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputFileError
from .csv_chunks import read_chunks
from .events import Codes, EventSchema, EventSource, EventTable

# no header in the files; these are the column names rnnkit gives them
YOOCHOOSE_CLICKS = ("session", "timestamp", "item", "category")
YOOCHOOSE_BUYS = ("session", "timestamp", "item", "price", "quantity")
YOOCHOOSE_GAP = "log_seconds_since_previous"  # derived numeric field: log1p of the click gap


class Vocabulary:
    """Text values -> int32 codes, growing chunk by chunk."""

    def __init__(self) -> None:
        self.codes: dict[bytes, int] = {}

    def encode(self, values: np.ndarray) -> np.ndarray:
        distinct, inverse = np.unique(values, return_inverse=True)
        codes = [self.codes.setdefault(v, len(self.codes)) for v in distinct.tolist()]
        return np.asarray(codes, dtype=np.int32)[inverse]

    def decode(self, codes: np.ndarray) -> Codes:
        return Codes(codes, [v.decode() for v in self.codes])


def session_ids(values: np.ndarray, lines: np.ndarray, path: str) -> np.ndarray:
    """int64 ids; only digits without a leading zero, so the id reads back as the same text."""
    n = np.char.str_len(values)
    ok = np.char.isdigit(values) & (n <= 18) & ((n == 1) | ~np.char.startswith(values, b"0"))
    if not ok.all():
        i = int(np.argmin(ok))
        raise InputFileError(
            f"{path} line {lines[i]}: session id {values[i].decode()!r} is not a whole number "
            "(digits, no leading zero) as YOOCHOOSE session ids are"
        )
    return values.astype(np.int64)


def timestamps_ms(values: np.ndarray, path: str) -> np.ndarray:
    try:
        return np.char.rstrip(values, b"Z").astype("datetime64[ms]").astype(np.int64)
    except ValueError as e:
        raise InputFileError(f"{path}: a timestamp is not ISO 8601 like 2014-04-07T10:51:09.277Z ({e})") from None


def first_seen(sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids in order of first appearance, and each row's index into them."""
    # runs of equal ids first: the file lists a session's clicks together, so this is small
    heads = np.flatnonzero(np.concatenate([[True], sessions[1:] != sessions[:-1]]))
    ids, first, inverse = np.unique(sessions[heads], return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return ids[order], np.repeat(rank[inverse], np.diff(heads, append=len(sessions)))


def in_order(seq: np.ndarray, ms: np.ndarray) -> bool:
    """Whether the rows already run session by session and in time order within each."""
    return bool(np.all((seq[1:] > seq[:-1]) | (seq[1:] == seq[:-1]) & (ms[1:] >= ms[:-1])))


def log_gaps(ms: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """log1p of the seconds since the session's previous click, 0 for its first click."""
    gap = np.zeros(len(ms))
    np.subtract(ms[1:], ms[:-1], out=gap[1:], casting="unsafe")  # in place: with 33M clicks each copy counts
    gap /= 1000.0
    gap[offsets[:-1]] = 0.0
    return np.log1p(np.maximum(gap, 0.0, out=gap), out=gap)


def load_yoochoose(src: EventSource, need_labels: bool) -> tuple[EventTable, EventSchema]:
    if need_labels and not src.buys:
        raise ConfigError("YOOCHOOSE labels come from the buys file: add --buys yoochoose-buys.dat")
    items, categories = Vocabulary(), Vocabulary()
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for lines, (session, timestamp, item, category) in read_chunks(src.events, YOOCHOOSE_CLICKS, "clicks"):
        parts[0].append(session_ids(session, lines, src.events))
        parts[1].append(timestamps_ms(timestamp, src.events))
        parts[2].append(items.encode(item))
        parts[3].append(categories.encode(category))
    sessions, ms, item, category = (np.concatenate(parts.pop(0)) for _ in range(4))  # frees each column's chunks
    ids, seq = first_seen(sessions)
    del sessions
    if not in_order(seq, ms):
        perm = np.lexsort((ms, seq))  # stable: clicks at the same ms keep their file order
        seq, ms, item, category = seq[perm], ms[perm], item[perm], category[perm]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(seq, minlength=len(ids)))]).astype(np.int64)
    del seq
    table = EventTable(
        sequence_ids=list(map(str, ids.tolist())),
        offsets=offsets,
        categorical={"item": items.decode(item), "category": categories.decode(category)},
        numeric={YOOCHOOSE_GAP: log_gaps(ms, offsets)},
        labels=None,
    )
    if src.buys:
        buyers = [session_ids(s, lines, src.buys) for lines, (s,) in read_chunks(src.buys, YOOCHOOSE_BUYS, "buys", [0])]
        bought = np.isin(ids, np.concatenate(buyers))
        table.labels = np.array(["0", "1"], dtype=object)[bought.astype(np.intp)].tolist()
    schema = EventSchema("yoochoose", "session", "timestamp", None, ["item", "category"], [YOOCHOOSE_GAP])
    return table, schema
