"""Labels: the classes (2 or more, any text), their order, and a class index per sequence.

Two classes are [negative, positive]: 1/true/yes/pos is positive, else --positive_label,
else the rarer class. More classes are sorted: as numbers when every label is a whole
number ('2' before '10'), else as text.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import ConfigError, InputFileError

_KNOWN_POSITIVE = {("0", "1"): "1", ("false", "true"): "true", ("no", "yes"): "yes", ("neg", "pos"): "pos"}


def find_classes(labels: list[str | None], positive: str | None = None) -> list[str]:
    counts = Counter(v for v in labels if v is not None)
    if not counts:
        raise InputFileError("no labels: no sequence has a label; give --label_col or --labels labels.csv")
    if len(counts) == 1:
        only = next(iter(counts))
        raise InputFileError(
            f"every labelled sequence has the label {only!r}; a classifier needs two classes at least: check the label column"
        )
    if len(counts) == 2:
        return binary_classes(counts, positive)
    if positive is not None:
        raise ConfigError(f"--positive_label is for two classes; these labels have {len(counts)}: drop it")
    return sorted(counts, key=_class_sort_key(counts))


def _class_sort_key(counts: Counter):
    if all(c.lstrip("-").isdigit() for c in counts):
        return lambda c: (int(c), c)
    return lambda c: c


def binary_classes(counts: Counter, positive: str | None = None) -> list[str]:
    """[negative, positive]."""
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
    """The class index of each label; -1 for none or a label not among the classes."""
    index = {c: i for i, c in enumerate(classes)}
    return np.fromiter((index.get(v, -1) for v in labels), dtype=np.int64, count=len(labels))
