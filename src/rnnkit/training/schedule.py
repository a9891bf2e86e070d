"""Learning-rate schedules.

Without a time budget: torch-rnn's step decay (x lr_decay_factor every lr_decay_every
epochs). With --time_budget: a short linear warm-up, then a cosine decay that reaches
its floor exactly when the budget runs out, so the last minutes anneal the model.
"""

from __future__ import annotations

import math

WARMUP_ITERS = 50
FLOOR = 0.1  # the cosine ends at this fraction of the base learning rate
# An evaluation of tinyshakespeare's validation split takes ~1.5 s on 2 cores; every
# budget/8 seconds that is 12% of a 100 s budget, so short budgets evaluate less often.
EVALS_PER_BUDGET = 8
MIN_EVAL_INTERVAL = 25.0  # seconds


def eval_interval(budget: float) -> float:
    """Seconds between evaluations (and checkpoints) under a time budget."""
    return max(budget / EVALS_PER_BUDGET, min(budget, MIN_EVAL_INTERVAL))


class LRSchedule:
    def __init__(self, cfg, batches_per_epoch: int):
        self.base = cfg.learning_rate
        self.decay_every = cfg.lr_decay_every
        self.decay_factor = cfg.lr_decay_factor
        self.budget = cfg.time_budget
        self.batches_per_epoch = max(1, batches_per_epoch)

    def lr(self, iteration: int, elapsed: float) -> float:
        if self.budget is not None:
            warm = min(1.0, iteration / WARMUP_ITERS)
            frac = min(1.0, elapsed / self.budget)
            return self.base * warm * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * frac)))
        if self.decay_every <= 0:
            return self.base
        epochs_done = (iteration - 1) // self.batches_per_epoch
        return self.base * self.decay_factor ** (epochs_done // self.decay_every)
