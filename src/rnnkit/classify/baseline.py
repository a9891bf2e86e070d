"""The baselines beside the LSTM: the majority class (the training split's class
frequencies for every sequence) and bag-of-events, scikit-learn's multinomial logistic
regression on what a sequence holds, blind to order: each categorical field's value
frequencies, the numeric fields' means and the log length, over the same truncated events."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .events import ranges
from .model import Batcher

MAX_ITER = 1000


def bag_features(batcher: Batcher, idx: np.ndarray, vocab_sizes: list[int]) -> scipy.sparse.csr_matrix:
    """(n, sum(vocab_sizes) + numeric fields + 1): frequencies, means, log1p(length)."""
    lengths = batcher.lengths[idx]  # every sequence has one event at least
    rows = np.repeat(np.arange(len(idx)), lengths)
    events = torch.from_numpy(ranges(batcher.starts[idx], lengths))
    share = np.repeat(1.0 / lengths, lengths)
    blocks = [scipy.sparse.csr_matrix((share, (rows, batcher.cat[events, j].numpy())), shape=(len(idx), size))
              for j, size in enumerate(vocab_sizes)]
    first_slot = np.cumsum(lengths) - lengths
    means = np.add.reduceat(batcher.num[events].double().numpy(), first_slot, axis=0) / lengths[:, None] \
        if len(idx) else np.zeros((0, batcher.num.shape[1]))
    dense = np.column_stack([means, np.log1p(lengths)])
    return scipy.sparse.hstack(blocks + [scipy.sparse.csr_matrix(dense)], format="csr")


class BagOfEvents:
    def __init__(self, model: LogisticRegression, vocab_sizes: list[int], num_classes: int):
        self.model, self.vocab_sizes, self.num_classes = model, vocab_sizes, num_classes

    @classmethod
    def fit(cls, batcher: Batcher, idx: np.ndarray, y: np.ndarray, vocab_sizes: list[int],
            class_weights: np.ndarray | None, num_classes: int) -> BagOfEvents:
        """L2-regularized (scikit-learn's C=1), lbfgs; class_weights as in the LSTM's loss."""
        weights = None if class_weights is None else {c: float(w) for c, w in enumerate(class_weights)}
        model = LogisticRegression(max_iter=MAX_ITER, class_weight=weights)
        with warnings.catch_warnings():  # reported in report.json instead
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(bag_features(batcher, idx, vocab_sizes), y)
        return cls(model, vocab_sizes, num_classes)

    @property
    def converged(self) -> bool:
        return bool(np.all(self.model.n_iter_ < MAX_ITER))

    def probabilities(self, batcher: Batcher, idx: np.ndarray) -> np.ndarray:
        """(n, K); a class the fit never saw gets 0."""
        out = np.zeros((len(idx), self.num_classes))
        out[:, self.model.classes_] = self.model.predict_proba(bag_features(batcher, idx, self.vocab_sizes))
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"bag.coef": torch.from_numpy(self.model.coef_), "bag.intercept": torch.from_numpy(self.model.intercept_),
                "bag.classes": torch.from_numpy(self.model.classes_.astype(np.int64))}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], vocab_sizes: list[int], num_classes: int) -> BagOfEvents:
        """A fitted model again, from its coefficients (nothing unpickled)."""
        model = LogisticRegression(max_iter=MAX_ITER)
        model.coef_ = tensors["bag.coef"].numpy()
        model.intercept_ = tensors["bag.intercept"].numpy()
        model.classes_ = tensors["bag.classes"].numpy()
        model.n_features_in_ = model.coef_.shape[1]
        model.n_iter_ = np.zeros(1, dtype=np.int32)
        return cls(model, vocab_sizes, num_classes)


def majority_probabilities(prior: np.ndarray, n: int) -> np.ndarray:
    """Every sequence gets the training split's class frequencies: the majority class wins."""
    return np.tile(np.asarray(prior, dtype=np.float64), (n, 1))
