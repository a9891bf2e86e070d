"""A list corpus: one short item per line (names, titles, words), where each line is an item
of its own rather than a piece of running text.

Such a corpus is evaluated line by line, each line from the start-of-line context (the
newline before it) and its own newline included, as it is generated in list mode and as
makemore scores names: the loss is then per item, not helped by the line before it.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

MAX_MEAN_LINE = 40  # tokens per line, newline included: longer lines are running text
MAX_ODD_LINES = 0.01  # blank or indented lines: a list has (almost) none, prose and code many
MIN_ITEMS = 20
MAX_TOKENS = 20_000_000  # beyond this the split is evaluated as lanes (a list that large is rare)


def list_items(data: np.ndarray, newline_id: int | None, indent_ids: tuple[int, ...] = ()) -> list[np.ndarray] | None:
    """The split's complete lines (each ending in its newline) when it reads as a list of short
    items, else None. The first line is left out: a split starts wherever the one before ended."""
    if newline_id is None or not MIN_ITEMS < len(data) <= MAX_TOKENS:
        return None
    data = np.asarray(data)
    ends = np.flatnonzero(data == newline_id)
    if len(ends) < MIN_ITEMS + 1 or len(data) / len(ends) > MAX_MEAN_LINE:
        return None
    firsts = data[ends[:-1] + 1]  # the first token of every line after the first newline
    odd = np.isin(firsts, (newline_id, *indent_ids)).mean()
    if odd > MAX_ODD_LINES:
        return None
    return [data[s + 1: e + 1] for s, e in zip(ends[:-1], ends[1:])]


def item_batches(items: list[np.ndarray], newline_id: int, batch: int = 256) -> Iterator[tuple[torch.Tensor, ...]]:
    """(x, y, mask) batches of items of similar length: x starts with the newline (the context a
    line starts from) and y is the item itself, its newline included; mask marks real tokens."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    for start in range(0, len(order), batch):
        chunk = [items[i] for i in order[start: start + batch]]
        width = max(len(item) for item in chunk)
        x = np.full((len(chunk), width), newline_id, dtype=np.int64)
        y = np.full((len(chunk), width), newline_id, dtype=np.int64)
        mask = np.zeros((len(chunk), width), dtype=bool)
        for row, item in enumerate(chunk):
            x[row, 1: len(item)] = item[:-1]
            y[row, : len(item)] = item
            mask[row, : len(item)] = True
        yield torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)
