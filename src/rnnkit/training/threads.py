"""The CPU thread count, chosen again when the steps slow down.

PyTorch's threads wait for each other at every operation, so when another process takes a
core, two threads can run several times slower than one. The probe picks the count at
start-up (probe.pick_threads); this watches the step time while training and, when it
jumps, tries the other count for a window of steps and keeps the faster. It also tries the
other count now and then, so a machine that becomes idle again gets its threads back.
"""

from __future__ import annotations

import statistics
import time

import torch

WINDOW = 40  # steps per measurement
SLOWDOWN = 1.5  # a window this much slower than the best at this count means something changed
RECHECK_EVERY = 25  # windows between routine tries of the other count


class ThreadWatch:
    def __init__(self, most: int, notice):
        self.counts = (most, 1)
        self.notice = notice
        self.current = torch.get_num_threads()
        self.recent: dict[int, float] = {}  # seconds per step at each count, last measured
        self.baseline: float | None = None  # the best window at the current count since it was chosen
        self.trying_from: int | None = None  # during a trial: the count to go back to
        self.times: list[float] = []
        self.last: float | None = None
        self.windows = 0

    def step_done(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.times.append(now - self.last)
        self.last = now
        if len(self.times) >= WINDOW:
            self._window_done(statistics.median(self.times))  # the median leaves out evaluations
            self.times = []

    def _window_done(self, per_step: float) -> None:
        self.windows += 1
        self.recent[self.current] = per_step
        if self.trying_from is not None:
            self._trial_done(per_step)
        elif self.baseline is None:
            self.baseline = per_step
        elif per_step > SLOWDOWN * self.baseline or self.windows % RECHECK_EVERY == 0:
            self.trying_from = self.current
            self._set(self.counts[1] if self.current == self.counts[0] else self.counts[0])
        else:
            self.baseline = min(self.baseline, per_step)

    def _trial_done(self, per_step: float) -> None:
        before, self.trying_from = self.trying_from, None
        if per_step < self.recent[before]:
            self.notice(f"note: steps run faster on {self.current} thread(s) now ({per_step * 1e3:.1f} vs "
                        f"{self.recent[before] * 1e3:.1f} ms a step); continuing with {self.current}")
            self.baseline = per_step
        else:
            self._set(before)
            self.baseline = self.recent[before]

    def _set(self, n: int) -> None:
        torch.set_num_threads(n)
        self.current = n
        self.last = None  # the step that spans the switch does not count
