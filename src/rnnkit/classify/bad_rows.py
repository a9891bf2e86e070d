"""Bad rows of a generic event CSV: a wrong number of fields, no sequence id, no order
value, a value that does not fit its column, a label that changes within a sequence.

Without --skip_bad_rows the first one found stops the run in one line naming its line;
with it, bad rows are left out and counted. Rows are tracked by their index among the rows
pyarrow returned; the line number is looked up only for a message, by reading the file
again with Python's csv module (so quoted line breaks and blank lines count right).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable

import numpy as np

from ..errors import InputFileError


class BadRows:
    def __init__(self, path: str, n_fields: int, skip: bool):
        self.path, self.n_fields, self.skip = path, n_fields, skip
        self.counts: Counter[str] = Counter()
        self.first: str | None = None  # the first bad row's description, for the summary

    def wrong_width(self, row) -> str:
        """pyarrow's invalid_row_handler: always skip, and stop after the read unless skipping."""
        if row.text.strip():  # a blank line is not a row
            self.counts["wrong number of fields"] += 1
        return "skip"

    def check_width(self) -> None:
        if self.counts["wrong number of fields"] and self.first is None:
            line, fields = first_wrong_width(self.path, self.n_fields)
            self._found(f"line {line} has {fields} fields but the header has {self.n_fields}")

    def found(self, bad: np.ndarray, reason: str, describe: Callable[[int], str],
              data_index: Callable[[int], int] | int = 0) -> None:
        """bad: a mask over some rows; describe(i) says what is wrong with row i of them, and
        data_index(i) (or i + data_index) is its index among the rows pyarrow returned."""
        n = int(np.count_nonzero(bad))
        if not n:
            return
        self.counts[reason] += n
        if self.first is None:
            i = int(np.argmax(bad))
            index = data_index(i) if callable(data_index) else data_index + i
            self._found(f"line {data_row_line(self.path, self.n_fields, index)}: {describe(i)}")

    def _found(self, message: str) -> None:
        self.first = message
        if not self.skip:
            raise InputFileError(f"{self.path} {message}; fix it, or pass --skip_bad_rows to leave such rows out")

    def summary(self) -> str | None:
        if not self.counts:
            return None
        kinds = ", ".join(f"{n} {reason}" for reason, n in self.counts.most_common())
        return f"left out {sum(self.counts.values())} bad rows of {self.path} ({kinds}); the first: {self.first}"


def _rows(path: str):
    """(line number, fields) of each non-blank row after the header."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        line = reader.line_num + 1
        for row in reader:
            if row:
                yield line, row
            line = reader.line_num + 1


def data_row_line(path: str, n_fields: int, index: int) -> int | str:
    """The line where the index-th row with the header's number of fields starts."""
    seen = 0
    for line, row in _rows(path):
        if len(row) == n_fields:
            if seen == index:
                return line
            seen += 1
    return f"? (data row {index + 1})"


def first_wrong_width(path: str, n_fields: int) -> tuple[int | str, int]:
    for line, row in _rows(path):
        if len(row) != n_fields:
            return line, len(row)
    return "?", 0
