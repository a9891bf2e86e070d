"""Auto's dropout, chosen again from the speed training actually runs at.

auto picks dropout from the passes over the data that the start-up probe predicts
(auto.dropout_for). The probe can be wrong by more than the rule's steps: a core busy for
the seconds it measures and free again afterwards (the thread watch then moves to more
threads) makes a run repeat the data more often than predicted, unregularized. So during the
first half of the budget this projects the passes from the speed since its last look, every
CHECKS-th of the budget, and raises dropout when the rule asks for more; it never lowers it.
"""

from __future__ import annotations

from .auto import dropout_for

CHECKS = 16  # looks per budget, in its first half only: later a change has too little time to help


class DropoutWatch:
    def __init__(self, budget: float, train_tokens: int, dropout: float):
        self.budget, self.train_tokens, self.dropout = budget, max(1, train_tokens), dropout
        self.last: tuple[float, int] | None = None  # (clock, tokens trained) at the last look
        self.projected_passes = 0.0

    def start(self, clock: float, tokens: int) -> None:
        self.last = (clock, tokens)

    def due(self, clock: float) -> bool:
        return self.last is not None and clock <= self.budget / 2 and clock - self.last[0] >= self.budget / CHECKS

    def check(self, clock: float, tokens: int) -> float | None:
        """clock: seconds of the budget spent; tokens: trained so far. The new dropout, or None."""
        (clock_before, tokens_before), self.last = self.last, (clock, tokens)
        rate = (tokens - tokens_before) / max(1e-9, clock - clock_before)
        self.projected_passes = (tokens + rate * max(0.0, self.budget - clock)) / self.train_tokens
        wanted = dropout_for(self.projected_passes)
        if wanted <= self.dropout:
            return None
        self.dropout = wanted
        return wanted
