"""The bag-of-events baseline: a logistic regression on which events a sequence holds
(value frequencies, numeric means, log length), blind to their order."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .events import ranges
from .model import Batcher, weighted_bce


class BagOfEvents(nn.Module):
    """Logistic regression on what a sequence holds, not on its order."""

    def __init__(self, vocab_sizes: list[int], num_numeric: int):
        super().__init__()
        self.register_buffer("column_offsets", torch.tensor([0] + list(np.cumsum(vocab_sizes)[:-1]), dtype=torch.long))
        self.values = nn.EmbeddingBag(max(1, sum(vocab_sizes)), 1, mode="mean")  # mean = frequencies . weights
        self.dense = nn.Linear(num_numeric + 1, 1)  # numeric means and log length
        nn.init.zeros_(self.values.weight)
        nn.init.zeros_(self.dense.weight)

    def forward(self, flat_ids: torch.Tensor, bag_offsets: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        out = self.dense(dense).squeeze(-1)
        if flat_ids.numel():  # no categorical fields: numeric means and length only
            out = out + self.values(flat_ids, bag_offsets).squeeze(-1)
        return out

    def inputs(self, batcher: Batcher, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths = batcher.lengths[idx]
        rows = torch.from_numpy(ranges(batcher.starts[idx], lengths))
        n_cols = batcher.cat.shape[1]
        flat = (batcher.cat[rows] + self.column_offsets[:n_cols]).reshape(-1)
        bag_offsets = torch.from_numpy((np.cumsum(lengths) - lengths) * n_cols)
        segment = torch.from_numpy(np.repeat(np.arange(len(idx)), lengths))
        num_sum = torch.zeros(len(idx), batcher.num.shape[1]).index_add_(0, segment, batcher.num[rows])
        length = torch.from_numpy(lengths).float()[:, None]
        return flat, bag_offsets, torch.cat([num_sum / length, torch.log1p(length)], dim=1)

    def scores(self, batcher: Batcher, idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(self(*self.inputs(batcher, idx))).double().numpy()


def fit_bag_of_events(vocab_sizes: list[int], num_numeric: int, batcher: Batcher, idx: np.ndarray,
                      y: np.ndarray, class_weights: np.ndarray, l2: float = 1e-3) -> BagOfEvents:
    """Full-batch L-BFGS with a small L2 penalty, on the CPU."""
    bag = BagOfEvents(vocab_sizes, num_numeric)
    inputs = bag.inputs(batcher, idx)
    target = torch.from_numpy(y)
    weights = torch.from_numpy(class_weights).float()
    opt = torch.optim.LBFGS(bag.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        penalty = bag.values.weight.square().sum() + bag.dense.weight.square().sum()
        loss = weighted_bce(bag(*inputs), target, weights) + l2 * penalty
        loss.backward()
        return loss

    opt.step(closure)
    return bag
