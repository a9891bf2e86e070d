"""The chunked YOOCHOOSE reader gives what the list-based reader it replaced gave, on plain
and odd files, whatever the chunk size, and fails with the same one-line errors."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from rnnkit.classify import csv_chunks
from rnnkit.classify.events import EventSource
from rnnkit.classify.read import load_table
from rnnkit.classify.synth import synth_sequences, write_synth_yoochoose
from rnnkit.errors import ConfigError, InputFileError

BLOCKS = [1, 7, 64, csv_chunks.BLOCK]  # bytes per chunk: one line per chunk up to the default
LAYOUT = "the YOOCHOOSE clicks layout is session,timestamp,item,category"


def reference(clicks: Path, buys: Path) -> dict:
    """The list-based reader of rnnkit 0.1.0 (all rows as lists of strings), the reference."""

    def rows(path: Path) -> list[list[str]]:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r]
        return rows[0 if rows[0][0].strip().isdigit() else 1:]

    events = rows(clicks)
    ms = np.asarray([r[1].strip().rstrip("Z") for r in events], dtype="datetime64[ms]").astype(np.int64)
    index: dict[str, int] = {}
    seq = np.array([index.setdefault(r[0].strip(), len(index)) for r in events])
    perm = np.lexsort((np.arange(len(seq)), ms, seq))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(seq))])
    ms = ms[perm]
    gap = np.diff(ms, prepend=ms[:1]).astype(np.float64) / 1000.0
    gap[offsets[:-1]] = 0.0
    bought = {r[0].strip() for r in rows(buys)}
    return {"sequence_ids": list(index), "offsets": offsets.tolist(),
            "item": [events[i][2].strip() for i in perm], "category": [events[i][3].strip() for i in perm],
            "gap": np.log1p(np.maximum(gap, 0.0)).tolist(), "labels": ["1" if s in bought else "0" for s in index]}


def loaded(clicks: Path, buys: Path) -> dict:
    table, schema = load_table(EventSource(str(clicks), format="yoochoose", buys=str(buys)))
    assert (schema.sequence_col, schema.order_col, schema.label_col) == ("session", "timestamp", None)
    assert schema.categorical_cols == ["item", "category"] and schema.numeric_cols == ["log_seconds_since_previous"]
    gap = table.numeric["log_seconds_since_previous"]
    assert table.offsets.dtype == np.int64 and gap.dtype == np.float64
    return {"sequence_ids": table.sequence_ids, "offsets": table.offsets.tolist(),
            "item": table.categorical["item"].tolist(), "category": table.categorical["category"].tolist(),
            "gap": gap.tolist(), "labels": table.labels}


def edit(line: str, session=None, time=None, item=None, category=None) -> str:
    """A click line with some fields rewritten: each argument maps the old field to the new."""
    fields = line.split(",")
    return ",".join(f(v) if f else v for f, v in zip((session, time, item, category), fields))


def messy(line: str, rng: random.Random) -> str:
    """The same click to csv.reader, behind spaces, quotes or tabs, or with a non-ASCII category."""
    return rng.choice([
        edit(line, session=lambda v: f" {v} ", item=lambda v: f" {v}\t", category=lambda v: f"{v} "),
        edit(line, session=lambda v: f'"{v}"', time=lambda v: f'"{v}"', category=lambda v: f'"{v},é"'),
        edit(line, category=lambda v: v + "Ä"),
    ])


def tie(lines: list[str]) -> list[str]:
    """Every 4th click at the time of the click before it."""
    return [edit(x, time=lambda _, i=i: lines[i - 1].split(",")[1]) if i % 4 == 3 else x for i, x in enumerate(lines)]


VARIANTS = {
    "as written: CRLF, grouped by session": lambda lines, rng: "\r\n".join(lines) + "\r\n",
    "LF, sessions interleaved and out of time order": lambda lines, rng: "\n".join(rng.sample(lines, len(lines))),
    "BOM, header, blank lines, no final newline":
        lambda lines, rng: "\ufeffsession,timestamp,item,category\r\n\n" + "\n\n".join(lines),
    "quotes, spaces, tabs, non-ASCII from the middle on":
        lambda lines, rng: "\n".join(lines[:len(lines) // 2] + [messy(x, rng) for x in lines[len(lines) // 2:]]),
    "timestamps without Z or milliseconds": lambda lines, rng: "\n".join(
        edit(x, time=lambda t, i=i: t.rstrip("Z") if i % 2 else t[:19]) for i, x in enumerate(lines)),
    "same-millisecond clicks keep their file order": lambda lines, rng: "\n".join(tie(lines)),
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[list[str], Path]:
    folder = tmp_path_factory.mktemp("yoochoose")
    clicks, buys = folder / "clicks.dat", folder / "buys.dat"
    write_synth_yoochoose(clicks, buys, synth_sequences(40, seed=5, min_events=2, max_events=6), seed=5)
    with open(buys, "a") as f:  # a buy of a session without clicks, and a second buy of session 2
        f.write("999,2014-04-07T10:51:09.277Z,214536502,100,1\r\n2,2014-04-07T10:51:09.277Z,214536502,100,1\r\n")
    return clicks.read_text().splitlines(), buys


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_the_list_based_reader(synthetic, tmp_path, monkeypatch, variant, block):
    lines, buys = synthetic
    clicks = tmp_path / "clicks.dat"
    clicks.write_bytes(VARIANTS[variant](lines, random.Random(0)).encode())
    monkeypatch.setattr(csv_chunks, "BLOCK", block)
    monkeypatch.setattr(csv_chunks, "CSV_ROWS", 5)
    assert loaded(clicks, buys) == reference(clicks, buys)


def test_many_sessions_over_many_chunks_match(tmp_path, monkeypatch):
    """The real file's shape: short sessions, grouped, read by the vectorized path in chunks."""
    monkeypatch.setattr(csv_chunks, "BLOCK", 1 << 16)
    clicks, buys = tmp_path / "clicks.dat", tmp_path / "buys.dat"
    write_synth_yoochoose(clicks, buys, synth_sequences(20_000, seed=1, min_events=2, max_events=6), seed=1)
    assert loaded(clicks, buys) == reference(clicks, buys)


GOOD = "1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.868Z,214536500,0\n"


@pytest.mark.parametrize("block", [7, csv_chunks.BLOCK])
@pytest.mark.parametrize("clicks, message", [
    ("", "clicks.dat is empty; the clicks file needs one row per event"),
    ("\n\r\n", "clicks.dat is empty; the clicks file needs one row per event"),
    ("session,timestamp,item,category\n", "clicks.dat holds no clicks"),
    (GOOD * 3 + "2,2014-04-07T10:51:09.277Z,214536502\n", f"clicks.dat line 7 has 3 fields; {LAYOUT}"),
    (GOOD + '2,"2014-04-07T10:51:09.277Z,1",2\n', f"clicks.dat line 3 has 3 fields; {LAYOUT}"),
    ("1,2014-04-07T10:51:09.277Z,1,2,3\n" + GOOD, f"clicks.dat line 1 has 5 fields; {LAYOUT}"),
    (GOOD + "2,yesterday,214536502,0\n", "clicks.dat: a timestamp is not ISO 8601 like 2014-04-07T10:51:09.277Z "
                                         '(Error parsing datetime string "yesterday" at position 0)'),
    (GOOD.encode() + "2,2014-04-07T10:51:09.277Z,214536502,Ä\n".encode("latin-1"),
     "clicks.dat is not UTF-8 text; save the clicks file as UTF-8 CSV"),
    # stricter than the list-based reader, which took any text for a session id
    (GOOD + "x2,2014-04-07T10:51:09.277Z,214536502,0\n", "clicks.dat line 3: session id 'x2' is not a whole number"),
    (GOOD + "02,2014-04-07T10:51:09.277Z,214536502,0\n", "clicks.dat line 3: session id '02' is not a whole number"),
])
def test_errors_are_one_line_and_name_the_problem(tmp_path, monkeypatch, block, clicks, message):
    path = tmp_path / "clicks.dat"
    path.write_bytes(clicks if isinstance(clicks, bytes) else clicks.encode())
    monkeypatch.setattr(csv_chunks, "BLOCK", block)
    with pytest.raises(InputFileError) as e:
        load_table(EventSource(str(path), format="yoochoose"), need_labels=False)
    assert str(e.value).startswith(str(path.parent) + "/" + message) and "\n" not in str(e.value)


def test_buys_errors_and_missing_files(tmp_path):
    clicks, buys = tmp_path / "clicks.dat", tmp_path / "buys.dat"
    clicks.write_text(GOOD)
    buys.write_text("1,2014-04-07T10:51:09.277Z,214536502,100\n")
    with pytest.raises(InputFileError, match=r"buys.dat line 1 has 4 fields; the YOOCHOOSE buys layout is "
                                             r"session,timestamp,item,price,quantity$"):
        load_table(EventSource(str(clicks), format="yoochoose", buys=str(buys)))
    with pytest.raises(InputFileError, match="nope.dat: no such buys file; check the path"):
        load_table(EventSource(str(clicks), format="yoochoose", buys=str(tmp_path / "nope.dat")))
    with pytest.raises(InputFileError, match="nope.dat: no such clicks file; check the path"):
        load_table(EventSource(str(tmp_path / "nope.dat"), format="yoochoose", buys=str(buys)))
    with pytest.raises(ConfigError, match="add --buys yoochoose-buys.dat"):
        load_table(EventSource(str(clicks), format="yoochoose"))
    buys.write_text("1,whenever,214536502,100,1\n")  # buys are read for their session ids only
    table, _ = load_table(EventSource(str(clicks), format="yoochoose", buys=str(buys)))
    assert table.labels == ["1"]
