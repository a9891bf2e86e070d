"""The split by sequence id: stratified by class, seeded, independent of file order; and
split.json, which records it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_text
from ..errors import RnnkitError

SPLITS = ("train", "val", "test")
SPLIT_RULE = (
    "stratified by label: each class's sequence ids are sorted, shuffled with "
    "numpy.random.default_rng(seed) (class 0 first, then 1, ...), then cut into test, validation, train; "
    "a class with too few sequences for every split goes to train only"
)


def split_sequences(ids: list[str], y: np.ndarray, val_frac: float, test_frac: float, seed: int) -> dict[str, np.ndarray]:
    """Sequence indices per split; a sequence is in exactly one. Independent of file order."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    need = 2 + (test_frac > 0)  # one each for train, validation (and test)
    rare: list[tuple[int, int]] = []  # (class, sequences) of classes kept to train
    for c in range(int(y.max()) + 1 if len(y) else 0):
        members = np.flatnonzero(y == c)
        members = members[np.argsort(np.asarray([ids[i] for i in members]), kind="stable")]
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_test = max(1, round(n * test_frac)) if test_frac > 0 else 0
        n_val = max(1, round(n * val_frac))
        if n < need or n - n_test - n_val < 1:
            rare.append((c, n))
            n_test = n_val = 0
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    split = {k: np.sort(np.concatenate(v)) if v else np.zeros(0, dtype=np.int64) for k, v in parts.items()}
    if len(np.unique(y[split["val"]])) < 2:
        _too_few(min(rare, key=lambda r: r[1]) if rare else (0, len(y)), need, test_frac)
    return split


def _too_few(rarest: tuple[int, int], need: int, test_frac: float) -> None:
    c, n = rarest
    raise RnnkitError(
        f"too few sequences to split: class {c} has {n} labelled sequence(s), at least {need} are needed "
        "(one each for train, validation" + (", test" if test_frac > 0 else "") + "); "
        "add labelled sequences" + (" or set --test_frac 0" if test_frac > 0 else "")
    )


def write_split(path: Path, split_meta: dict, split_ids: dict[str, list[str]]) -> None:
    """One line per key, so the file stays readable with many ids."""
    items = {**split_meta, **split_ids}
    body = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items.items())
    atomic_write_text(path, "{\n" + body + "\n}\n")
