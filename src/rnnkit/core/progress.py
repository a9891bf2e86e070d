"""What training shows while it runs: a live bar on a terminal, plain lines elsewhere.

The bar (tqdm) shows iteration / total, epoch, smoothed train loss, the last validation
loss, tokens per second (characters, for a character model), elapsed time and ETA. With
--time_budget there is no iteration total, so the bar counts seconds of the budget and
shows the iteration beside them.

The plain lines are torch-rnn's (`Epoch 1.00 / 50, i = 1 / 17800, loss = 4.163883`),
printed every --print_every iterations, so logs and CI output stay readable. --quiet
prints neither.
"""

from __future__ import annotations

import math
import os
import sys

from tqdm import tqdm

SMOOTHING_ITERS = 50  # the bar's train loss is an average over about this many iterations
BUDGET_BAR = "{l_bar}{bar}| {n_fmt}/{total_fmt}s [{elapsed}<{remaining}{postfix}]"


class Progress:
    def __init__(self, cfg, total: int | None, batches_per_epoch: int, enabled: bool = True):
        self.cfg = cfg
        self.total = total
        self.batches_per_epoch = batches_per_epoch
        mode = cfg.progress
        if mode == "auto":
            mode = "none" if cfg.quiet else ("bar" if _terminal_width() >= 40 else "lines")
        self.mode = mode if enabled else "none"
        self.bar = None
        self.smoothed: float | None = None
        self.smoothed_at = 0  # the iteration `smoothed` includes
        self.last_val: float | None = None
        self.rates: list[float] = []
        self.postfix: dict[str, str] = {}
        if self.mode == "bar":
            if total is not None:
                self.bar = tqdm(total=total, unit="it", desc="train", dynamic_ncols=True, file=sys.stderr, smoothing=0.05)
            else:  # a time budget: the bar fills with seconds
                self.bar = tqdm(total=math.ceil(cfg.time_budget), desc="train", bar_format=BUDGET_BAR,
                                dynamic_ncols=True, file=sys.stderr)

    def _total_text(self) -> str:
        if self.total is not None:
            return str(self.total)
        return f"? ({self.cfg.time_budget:g}s budget)"

    def smooth(self, iteration: int, loss: float) -> float:
        """Exponential average over iterations, whatever --print_every is."""
        if self.smoothed is None:
            self.smoothed = loss
        else:
            keep = math.exp(-max(1, iteration - self.smoothed_at) / SMOOTHING_ITERS)
            self.smoothed = keep * self.smoothed + (1 - keep) * loss
        self.smoothed_at = iteration
        return self.smoothed

    def update(self, iteration: int, epoch: float, loss: float, tokens_per_s: float, elapsed: float) -> None:
        smoothed = self.smooth(iteration, loss)
        self.rates.append(tokens_per_s)
        if self.mode == "lines":
            epochs = f" / {self.cfg.max_epochs}" if self.cfg.time_budget is None else ""
            print(f"Epoch {epoch:.2f}{epochs}, i = {iteration} / {self._total_text()}, loss = {loss:.6f}", flush=True)
        elif self.mode == "bar":
            if self.total is None:
                self.postfix["i"] = str(iteration)
            self.postfix.update({"epoch": f"{epoch:.2f}", "loss": f"{smoothed:.3f}", "tok/s": f"{tokens_per_s:,.0f}"})
            self.bar.set_postfix(self.postfix, refresh=False)
            self._advance(iteration, elapsed)

    def tick(self, iteration: int) -> None:
        if self.mode == "bar" and self.total is not None:
            self._advance(iteration, None)

    def _advance(self, iteration: int, elapsed: float | None) -> None:
        if self.total is not None:
            self.bar.update(iteration - self.bar.n)
        elif elapsed is not None:
            self.bar.update(max(0, min(int(elapsed), self.bar.total) - self.bar.n))

    def validation(self, iteration: int, val: float | None, path) -> None:
        self.last_val = val
        if self.mode == "none" or val is None:
            return
        if self.mode == "bar":
            self.postfix["val"] = f"{val:.3f}"
            self.bar.set_postfix(self.postfix, refresh=False)
        where = f" (saved {path})" if path else ""
        self.event(f"i = {iteration}: val_loss = {val:.6f}{where}")

    def event(self, message: str, important: bool = False) -> None:
        """A line beside the progress; `important` ones are shown with --progress none too."""
        if self.mode == "bar":
            self.bar.write(message, file=sys.stderr)
        elif self.mode == "lines":
            print(message, flush=True)
        elif self.mode == "none" and important:
            print(message, file=sys.stderr, flush=True)

    def mean_tokens_per_second(self) -> float:
        """Mean of the logged rates, the first (warm-up) one left out."""
        return sum(self.rates[1:]) / max(1, len(self.rates) - 1) if len(self.rates) > 1 else 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _terminal_width() -> int:
    """Columns of the terminal on stderr; 0 when it is not a terminal or reports no size
    (some CI pseudo-terminals), where a bar would print nothing useful."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns if sys.stderr.isatty() else 0
    except (OSError, ValueError, AttributeError):
        return 0
