"""The split by sequence id: stratified by label, seeded, independent of file order."""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError

SPLITS = ("train", "val", "test")
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
