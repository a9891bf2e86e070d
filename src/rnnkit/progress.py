"""What training shows while it runs: a live bar on a terminal, plain lines elsewhere.

The plain lines are torch-rnn's (`Epoch 1.00 / 50, i = 1 / 17800, loss = 4.163883`),
printed every --print_every iterations, so logs and CI output stay readable.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, cfg, total: int | None, batches_per_epoch: int, enabled: bool = True):
        self.cfg = cfg
        self.total = total
        self.batches_per_epoch = batches_per_epoch
        mode = cfg.progress
        if mode == "auto":
            mode = "none" if cfg.quiet else ("bar" if sys.stderr.isatty() else "lines")
        self.mode = mode if enabled else "none"
        self.bar = None
        self.smoothed: float | None = None
        self.last_val: float | None = None
        self.rates: list[float] = []
        if self.mode == "bar":
            budget = cfg.time_budget
            self.bar = tqdm(total=total if total is not None else int(budget), unit="it" if total else "s",
                            dynamic_ncols=True, file=sys.stderr, smoothing=0.05)
            self._bar_t0 = time.perf_counter()

    def _total_text(self) -> str:
        if self.total is not None:
            return str(self.total)
        return f"? ({self.cfg.time_budget:g}s budget)"

    def update(self, iteration: int, epoch: float, loss: float, tokens_per_s: float, elapsed: float) -> None:
        self.smoothed = loss if self.smoothed is None else 0.95 * self.smoothed + 0.05 * loss
        self.rates.append(tokens_per_s)
        if self.mode == "lines":
            epochs = f" / {self.cfg.max_epochs}" if self.cfg.time_budget is None else ""
            print(f"Epoch {epoch:.2f}{epochs}, i = {iteration} / {self._total_text()}, loss = {loss:.6f}", flush=True)
        elif self.mode == "bar":
            post = {"epoch": f"{epoch:.2f}", "loss": f"{self.smoothed:.3f}", "tok/s": f"{tokens_per_s:,.0f}"}
            if self.last_val is not None:
                post["val"] = f"{self.last_val:.3f}"
            self.bar.set_postfix(post, refresh=False)
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
        where = f" (saved {path})" if path else ""
        self.event(f"i = {iteration}: val_loss = {val:.6f}{where}")

    def event(self, message: str) -> None:
        if self.mode == "bar":
            self.bar.write(message, file=sys.stderr)
        elif self.mode == "lines":
            print(message, flush=True)
        elif self.mode == "none" and message.startswith(("warning", "restored", "early")):
            print(message, file=sys.stderr, flush=True)

    def mean_tokens_per_second(self, tokens_per_step: int, seconds: float) -> float:
        return sum(self.rates[1:]) / max(1, len(self.rates) - 1) if len(self.rates) > 1 else 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
