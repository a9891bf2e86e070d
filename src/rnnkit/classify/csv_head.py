"""The start of a CSV with a header: its column names, and what its first block of rows
holds. Column kinds are decided here, from the first megabyte of rows, the way pyarrow and
pandas infer types; a later value that does not fit its column is a bad row."""

from __future__ import annotations

import csv
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ..errors import InputFileError

BLOCK = 1 << 22  # bytes pyarrow parses at a time
SAMPLE = 1 << 20  # bytes whose rows decide the column kinds (pyarrow's own inference reads as many)
NULLS = tuple(pcsv.ConvertOptions().null_values)  # '', 'NA', 'NaN', 'null', ...: empty in number columns
WHOLE_NUMBER = r"^-?(0|[1-9][0-9]{0,17})$"  # reads back as the same text, fits int64


@dataclass
class CsvHead:
    path: str
    what: str  # "events", "labels": for messages
    names: list[str]  # stripped header names
    raw_names: list[str]  # as written, for pyarrow
    sample: dict[str, pa.Array]  # the first block, stripped text

    def is_number(self, name: str) -> bool:
        """Every non-empty value in the first block parses as a number, and one at least is there."""
        values = pc.filter(self.sample[name], pc.invert(pc.is_in(self.sample[name], pa.array(NULLS))))
        if not len(values):
            return False
        try:
            pc.cast(values, pa.float64())
        except pa.ArrowInvalid:
            return False
        return True

    def is_whole_number(self, name: str) -> bool:
        values = self.sample[name]
        return len(values) > 0 and pc.all(pc.match_substring_regex(values, WHOLE_NUMBER)).as_py()


def read_options(block_size: int | None = None, **kwargs) -> pcsv.ReadOptions:
    return pcsv.ReadOptions(block_size=block_size or BLOCK, **kwargs)


def parse_options(invalid_row_handler=None, quoted_newlines: bool = True) -> pcsv.ParseOptions:
    """quoted_newlines: a row may span lines inside quotes, as Python's csv module reads it
    (pyarrow parses about twice as fast without)."""
    return pcsv.ParseOptions(newlines_in_values=quoted_newlines, invalid_row_handler=invalid_row_handler)


def read_head(path: str, what: str) -> CsvHead:
    if not Path(path).is_file():
        raise InputFileError(f"{path}: no such {what} file; check the path")
    raw = _header(path, what)
    names = [n.strip() for n in raw]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputFileError(f"{path}: the header names column {twice[0]!r} twice; give each column its own name")
    with arrow_errors(path, what):
        # closed here, not at interpreter exit: pyarrow's read-ahead thread dying during
        # finalization can abort the process (apache/arrow#34314), even after a clean error
        with closing(pcsv.open_csv(path, read_options=read_options(SAMPLE, use_threads=False),
                                   parse_options=parse_options(lambda row: "skip"),
                                   convert_options=text_columns(raw))) as reader:
            first = next(iter(reader), None)
    if first is None or first.num_rows == 0:
        raise InputFileError(f"{path} has a header but no {what}")
    sample = {n: pc.utf8_trim_whitespace(first.column(i)) for i, n in enumerate(names)}
    return CsvHead(path, what, names, raw, sample)


def _header(path: str, what: str) -> list[str]:
    """The column names as written (Python's csv module reads the one line, quotes and all)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f):
                if row:
                    return row
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text; save the {what} file as UTF-8 CSV") from None
    except csv.Error as e:
        raise InputFileError(f"{path}: not a readable CSV ({e})") from None
    raise InputFileError(f"{path} is empty; the {what} file needs a header and one row per event")


def text_columns(raw_names: list[str] | None, only: bool = False) -> pcsv.ConvertOptions:
    """Every column (or, with only, just these) read as text."""
    types = {n: pa.string() for n in raw_names} if raw_names else None
    return pcsv.ConvertOptions(column_types=types, strings_can_be_null=False, include_columns=raw_names if only else None)


class arrow_errors:
    """pyarrow's errors about the file as one-line InputFileErrors."""

    def __init__(self, path: str, what: str, passing: str | None = None):
        self.path, self.what = path, what
        self.passing = passing  # errors holding this text go on as they are

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if isinstance(error, OSError) and not isinstance(error, pa.ArrowInvalid):
            raise InputFileError(f"{self.path}: cannot read the {self.what} file ({error})") from None
        if not isinstance(error, (pa.ArrowInvalid, UnicodeDecodeError)):
            return False
        text = str(error)
        if isinstance(error, UnicodeDecodeError) or "UTF8" in text or "UTF-8" in text:
            raise InputFileError(f"{self.path} is not UTF-8 text; save the {self.what} file as UTF-8 CSV") from None
        if self.passing and self.passing in text:
            return False
        if "Empty CSV file" in text:
            raise InputFileError(f"{self.path} is empty; the {self.what} file needs a header and one row per event") from None
        raise InputFileError(f"{self.path}: not a readable CSV ({text.splitlines()[0]})") from None
