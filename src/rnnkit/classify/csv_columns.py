"""A generic event CSV read by pyarrow into typed NumPy columns, a block at a time:
numbers as float64 (NaN where empty), whole-number ids as int64, text as int32 codes into
its distinct values (Codes). About 4 to 8 bytes per field of an event, whatever the text.

The fast path lets pyarrow's multi-threaded reader convert every block. Where a value does
not fit its column's type it fails; then the file is read again block by block as text and
converted here, so the bad rows can be named (or left out with --skip_bad_rows).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .bad_rows import BadRows
from .csv_head import (
    NULLS,
    CsvHead,
    arrow_errors,
    parse_options,
    read_options,
    text_columns,
)
from .events import Codes

TEXT = pa.dictionary(pa.int32(), pa.string())
ARROW_TYPES = {"integer": pa.int64(), "number": pa.float64(), "text": TEXT}
MISSING_ID = np.iinfo(np.int64).min  # an empty whole-number id


@dataclass
class Column:
    name: str
    kind: str  # integer | number | text
    hint: str  # what to do about a value that does not fit, for the message


def read_columns(head: CsvHead, columns: list[Column], bad: BadRows) -> tuple[dict, np.ndarray | None]:
    """{name: int64 / float64 array or Codes} in file order, and the rows to keep (None: all)."""
    raw = [head.raw_names[head.names.index(c.name)] for c in columns]
    try:
        chunks = _read_fast(head, columns, raw, bad, quoted_newlines=False)
        if bad.counts:  # a line break inside quotes splits a row: read again, minding quotes
            bad.counts.clear()
            chunks = _read_fast(head, columns, raw, bad, quoted_newlines=True)
        keep = None
    except pa.ArrowInvalid as e:
        if "conversion error" not in str(e):
            raise
        bad.counts.clear()  # the second read counts them again
        chunks, keep = _read_checked(head, columns, raw, bad)
    bad.check_width()
    return {c.name: _finish(chunks, c) for c in columns}, keep


def _read_fast(head: CsvHead, columns: list[Column], raw: list[str], bad: BadRows, quoted_newlines: bool) -> dict:
    convert = pcsv.ConvertOptions(column_types={r: ARROW_TYPES[c.kind] for r, c in zip(raw, columns)},
                                  include_columns=raw, strings_can_be_null=False)
    with arrow_errors(head.path, head.what, passing="conversion error"):
        table = pcsv.read_csv(head.path, read_options=read_options(), convert_options=convert,
                              parse_options=parse_options(bad.wrong_width, quoted_newlines))
    return {c.name: table.column(i).chunks for i, c in enumerate(columns)}


def _read_checked(head: CsvHead, columns: list[Column], raw: list[str], bad: BadRows):
    chunks: dict[str, list] = {c.name: [] for c in columns}
    keep: list[np.ndarray] = []
    with arrow_errors(head.path, head.what):
        reader = pcsv.open_csv(head.path, read_options=read_options(use_threads=False),
                               convert_options=text_columns(raw, only=True), parse_options=parse_options(bad.wrong_width))
        with closing(reader):  # csv_head.read_head says why
            for batch in reader:
                ok = np.ones(batch.num_rows, dtype=bool)
                for i, c in enumerate(columns):
                    chunks[c.name].append(_convert(batch.column(i), c, bad, ok, sum(map(len, keep))))
                keep.append(ok)
    return chunks, np.concatenate(keep) if keep else np.ones(0, dtype=bool)


def _convert(text: pa.Array, column: Column, bad: BadRows, ok: np.ndarray, offset: int) -> pa.Array:
    """One block of a column, as text, into its type; values that do not fit are bad rows."""
    if column.kind == "text":
        return pc.dictionary_encode(text)
    stripped = pc.utf8_trim_whitespace(text)
    empty = pc.is_in(stripped, pa.array(NULLS)).to_numpy(zero_copy_only=False)
    target = ARROW_TYPES[column.kind]
    values = pc.if_else(pa.array(empty), None, stripped)
    try:
        return pc.cast(values, target)
    except pa.ArrowInvalid:
        pass
    parse = int if column.kind == "integer" else float
    parsed, misfit = [], np.zeros(len(text), dtype=bool)
    for i, v in enumerate(values.to_pylist()):
        try:
            parsed.append(None if v is None else parse(v))
        except ValueError:
            parsed.append(None)
            misfit[i] = True
    what = "a whole number" if column.kind == "integer" else "a number"
    bad.found(misfit, "values that do not fit their column",
              lambda i: f"column {column.name!r} holds {text[i].as_py()!r}, not {what} ({column.hint})", offset)
    ok &= ~misfit
    return pa.array(parsed, type=target)


def _finish(all_chunks: dict[str, list], column: Column) -> np.ndarray | Codes:
    """One column as NumPy; its pyarrow blocks are handed back to the system before the next
    column is copied (pyarrow's allocator would keep them: about 30% of the peak at 10M rows)."""
    try:
        return _to_numpy(all_chunks.pop(column.name), column.kind)
    finally:
        pa.default_memory_pool().release_unused()


def _to_numpy(chunks: list, kind: str) -> np.ndarray | Codes:
    column = pa.chunked_array(chunks, type=ARROW_TYPES[kind] if not chunks else None)
    if kind == "number":
        return column.to_numpy().astype(np.float64, copy=False) if column.null_count == 0 \
            else pc.fill_null(column, np.nan).to_numpy()
    if kind == "integer":
        return pc.fill_null(column, MISSING_ID).to_numpy() if column.null_count else column.to_numpy()
    return text_codes(column.unify_dictionaries() if len(chunks) else column)


def text_codes(column: pa.ChunkedArray) -> Codes:
    """Dictionary chunks sharing one dictionary -> Codes, values stripped of spaces (as csv did)."""
    if not column.num_chunks:
        return Codes(np.zeros(0, dtype=np.int32), [])
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in column.chunks]).astype(np.int32, copy=False)
    values = column.chunk(0).dictionary
    stripped = pc.utf8_trim_whitespace(values)
    if not pc.all(pc.equal(stripped, values)).as_py():  # " a" and "a" become one value
        merged = pc.dictionary_encode(stripped)
        codes = merged.indices.to_numpy()[codes].astype(np.int32)
        stripped = merged.dictionary
    return Codes(codes, stripped.to_pylist())
