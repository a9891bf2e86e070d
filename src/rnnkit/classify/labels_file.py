"""Labels in their own CSV (`--labels labels.csv`): a sequence id column and a label column."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ..errors import InputFileError
from .bad_rows import data_row_line
from .csv_head import arrow_errors, parse_options, read_head, read_options, text_columns


def labels_from_file(path: str, sequence_col: str, label_col: str | None, ids: list[str],
                     whole_numbers: bool = False) -> list[str | None]:
    """The label of each of `ids` (None where the file has none). whole_numbers: the events'
    ids were read as numbers, so '007' here is sequence 7."""
    head = read_head(path, "labels")
    key = _pick(head.names, sequence_col, path, "named by --sequence_col")
    if label_col is None:
        others = [n for n in head.names if n != sequence_col]
        label_col = "label" if "label" in head.names else (others[0] if len(others) == 1 else None)
        if label_col is None:
            raise InputFileError(f"{path}: which column is the label? name it with --label_col "
                                 f"(columns: {', '.join(head.names)})")
    col = _pick(head.names, label_col, path, "named by --label_col")
    raw = [head.raw_names[key], head.raw_names[col]]
    with arrow_errors(path, "labels"):
        table = pcsv.read_csv(path, read_options=read_options(), parse_options=parse_options(),
                              convert_options=text_columns(raw, only=True))
    sids = pc.utf8_trim_whitespace(table.column(0)).to_pylist()
    labels = pc.utf8_trim_whitespace(table.column(1)).to_pylist()
    by_id: dict[str, str] = {}
    for row, (sid, label) in enumerate(zip(sids, labels)):
        if whole_numbers and sid.lstrip("-").isdigit():
            sid = str(int(sid))
        if by_id.setdefault(sid, label) != label:
            line = data_row_line(path, len(head.names), row)
            raise InputFileError(f"{path} line {line}: sequence {sid} is labelled both {by_id[sid]!r} and {label!r}")
    return [by_id.get(sid) or None for sid in ids]


def _pick(names: list[str], name: str, path: str, why: str) -> int:
    if name not in names:
        raise InputFileError(f"{path} has no column {name!r} ({why}); its columns are: {', '.join(names)}")
    return names.index(name)
