"""A large headerless CSV read in chunks of rows, each column a NumPy array of bytes.

Plain text (printable ASCII without quotes or spaces, lines ending in \\n or \\r\\n) is split
with vectorized NumPy. From the first chunk that is not plain on, Python's csv module reads
the rest of the file, so quoting, whitespace and non-ASCII text come out exactly as
csv.reader gives them. Fields are stripped, blank lines skipped, and a first row whose
first field is not a whole number is taken for a header and skipped.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import InputFileError

BLOCK = 1 << 24  # bytes per chunk: about 370k YOOCHOOSE clicks
CSV_ROWS = 1 << 18  # rows per chunk where the csv module reads
BOM = b"\xef\xbb\xbf"
PLAIN = np.zeros(256, dtype=bool)
PLAIN[0x21:0x7F] = True  # printable ASCII but space
PLAIN[ord('"')] = False
PLAIN[ord("\n")] = True

Chunk = tuple[np.ndarray, list[np.ndarray]]  # line number of each row; one bytes array per column


def read_chunks(path: str, layout: tuple[str, ...], what: str, columns: list[int] | None = None) -> Iterator[Chunk]:
    """Rows of a file laid out as `layout`, in chunks; only the given columns (default all)."""
    if not Path(path).is_file():
        raise InputFileError(f"{path}: no such {what} file; check the path")
    reader = _ChunkReader(path, layout, what, list(range(len(layout))) if columns is None else columns)
    with open(path, "rb") as f:
        yield from reader.chunks(f)
    if reader.first_row:
        raise InputFileError(f"{path} is empty; the {what} file needs one row per event")
    if not reader.rows:
        raise InputFileError(f"{path} holds no {what}")


class _ChunkReader:
    def __init__(self, path: str, layout: tuple[str, ...], what: str, columns: list[int]):
        self.path, self.layout, self.what, self.columns = path, layout, what, columns
        self.line = 1  # number of the next line to read
        self.first_row = True  # the next non-blank row may be a header
        self.rows = 0

    def chunks(self, f: BinaryIO) -> Iterator[Chunk]:
        pos = len(BOM) if f.read(len(BOM)) == BOM else 0  # the file offset of `data`
        f.seek(pos)
        data = b""
        while True:
            block = f.read(BLOCK)
            data += block if block or not data else b"\n"  # the last line may lack its \n
            cut = data.rfind(b"\n") + 1
            if cut:
                chunk = self._plain(np.frombuffer(data, dtype=np.uint8, count=cut))
                if chunk is None:
                    f.seek(pos)
                    yield from self._csv(f)
                    return
                if len(chunk[0]):
                    yield chunk
                data, pos = data[cut:], pos + cut
            if not block:
                return

    def _check_width(self, fields: int, line: int) -> None:
        if fields != len(self.layout):
            raise InputFileError(
                f"{self.path} line {line} has {fields} fields; "
                f"the YOOCHOOSE {self.what} layout is {','.join(self.layout)}"
            )

    def _skip_header(self, first_field: str) -> bool:
        """True for the file's first non-blank row if it is a header; False for any later row."""
        header, self.first_row = self.first_row and not first_field.strip().isdigit(), False
        return header

    def _plain(self, a: np.ndarray) -> Chunk | None:
        """Whole lines of plain text split into columns; None if the text is not plain."""
        odd = np.flatnonzero(~PLAIN[a])
        if len(odd) and not ((a[odd] == 13).all() and (a[odd + 1] == 10).all()):  # \r only in \r\n
            return None
        ends = np.flatnonzero(a == 10)
        starts = np.concatenate([[0], ends[:-1] + 1])
        lines = self.line + np.arange(len(ends))
        self.line += len(ends)
        commas = np.flatnonzero(a == 44)
        fields = np.bincount(np.searchsorted(ends, commas), minlength=len(ends)) + 1
        ends = ends - (a[ends - 1] == 13)  # a[-1] is the last \n, never a \r
        keep = ends > starts  # blank lines go
        starts, ends, lines, fields = starts[keep], ends[keep], lines[keep], fields[keep]
        if len(lines) and self.first_row and self._skip_header(a[starts[0]:ends[0]].tobytes().decode().split(",")[0]):
            commas = commas[commas >= ends[0]]
            starts, ends, lines, fields = starts[1:], ends[1:], lines[1:], fields[1:]
        wrong = np.flatnonzero(fields != len(self.layout))
        if len(wrong):
            self._check_width(int(fields[wrong[0]]), int(lines[wrong[0]]))
        self.rows += len(lines)
        bounds = np.column_stack([starts - 1, commas.reshape(len(lines), len(self.layout) - 1), ends])
        return lines, _gather(a, [(bounds[:, k] + 1, bounds[:, k + 1]) for k in self.columns])

    def _csv(self, f: BinaryIO) -> Iterator[Chunk]:
        reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", newline=""))
        rows: list[list[str]] = []
        lines: list[int] = []
        read = 0
        try:
            for row in reader:
                line, read = self.line + read, reader.line_num  # a row may span several lines
                if not row or (self.first_row and self._skip_header(row[0])):
                    continue
                if len(row) != len(self.layout):
                    self._check_width(len(row), line)
                rows.append(row)
                lines.append(line)
                if len(rows) == CSV_ROWS:
                    yield self._columns(rows, lines)
                    rows, lines = [], []
        except UnicodeDecodeError:
            raise InputFileError(f"{self.path} is not UTF-8 text; save the {self.what} file as UTF-8 CSV") from None
        except csv.Error as e:
            raise InputFileError(f"{self.path}: not a readable CSV ({e})") from None
        if rows:
            yield self._columns(rows, lines)

    def _columns(self, rows: list[list[str]], lines: list[int]) -> Chunk:
        self.rows += len(rows)
        columns = [np.array([r[k].strip().encode() for r in rows], dtype=np.bytes_) for k in self.columns]
        return np.asarray(lines, dtype=np.int64), columns


def _gather(a: np.ndarray, spans: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Bytes a[start:end] of each span, as one fixed-width bytes array per column."""
    width = max(1, *(int((e - s).max(initial=0)) for s, e in spans))
    padded = np.zeros(len(a) + width, dtype=np.uint8)
    padded[:len(a)] = a
    windows = sliding_window_view(padded, width)
    out = []
    for s, e in spans:
        n = e - s
        w = max(1, int(n.max(initial=0)))
        b = windows[s, :w]
        if (n != w).any():
            b[np.arange(w) >= n[:, None]] = 0  # NUL padding: bytes arrays drop it
        out.append(b.view(f"S{w}").ravel())
    return out
