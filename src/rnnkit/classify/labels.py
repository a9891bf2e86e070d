"""Labels: which of the two classes is positive, and 0/1 per sequence."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import ConfigError, InputFileError

_KNOWN_POSITIVE = {("0", "1"): "1", ("false", "true"): "true", ("no", "yes"): "yes", ("neg", "pos"): "pos"}


def binary_classes(labels: list[str | None], positive: str | None = None) -> list[str]:
    """[negative, positive]: 1/true/yes is positive, else --positive_label, else the rarer class."""
    counts = Counter(v for v in labels if v is not None)
    if not counts:
        raise InputFileError("no labels: no sequence has a label; give --label_col or --labels labels.csv")
    if len(counts) == 1:
        only = next(iter(counts))
        raise InputFileError(
            f"every labelled sequence has the label {only!r}; a classifier needs two classes: check the label column"
        )
    if len(counts) > 2:
        shown = ", ".join(repr(c) for c in sorted(counts)[:6]) + (", ..." if len(counts) > 6 else "")
        raise InputFileError(
            f"found {len(counts)} label values ({shown}); classify handles two classes: check the label column"
        )
    classes = sorted(counts)
    if positive is not None:
        if positive not in counts:
            raise ConfigError(f"--positive_label {positive!r} is not a label; the labels are {classes[0]!r} and {classes[1]!r}")
    else:
        positive = _KNOWN_POSITIVE.get(tuple(c.lower() for c in classes))
        positive = next((c for c in classes if c.lower() == positive), None) if positive else None
        if positive is None:
            positive = min(classes, key=lambda c: (counts[c], c != classes[1]))
    return [c for c in classes if c != positive] + [positive]


def encode_labels(labels: list[str | None], classes: list[str]) -> np.ndarray:
    """1 for the positive class, 0 for the negative, -1 for unlabelled or unknown."""
    return np.asarray([1 if v == classes[1] else 0 if v == classes[0] else -1 for v in labels], dtype=np.int64)
