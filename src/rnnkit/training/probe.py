"""How fast this machine trains networks of each width, measured at start-up.

Machines differ several-fold (a laptop's AVX2 core against a server's AVX-512 one, a GPU),
and a busy machine is slower than an idle one, so `auto` sizes the network from a short
measurement instead of a table: a few real training steps (forward, backward, AdamW) of
the candidate widths, at the run's vocabulary size, device, precision and thread count.
Widths are measured from small to large until one no longer fits the budget; the time
spent counts in the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..model.language_model import LanguageModel, ModelConfig

PROBE_BATCH, PROBE_SEQ = 16, 64  # characters/s hardly depend on the batch at these sizes
TIMED_STEPS = 2  # after one warm-up step; the faster of the two counts


@dataclass
class Speeds:
    """Training characters/s measured per (layers, width), and the threads they were measured with."""

    threads: int
    chars_per_second: dict[tuple[int, int], float] = field(default_factory=dict)
    thread_note: str = ""


def step_seconds(model: LanguageModel, device: torch.device, autocast_dtype, steps: int = TIMED_STEPS) -> float:
    """Seconds of the fastest of `steps` training steps (after one warm-up)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(1, model.config.vocab_size + 1, (PROBE_BATCH, PROBE_SEQ), device=device)
    best = float("inf")
    for i in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x.reshape(-1) - 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def measure(layers: int, width: int, vocab_size: int, model_type: str, device: torch.device, autocast_dtype) -> float:
    """Training characters/s of one network shape on this machine, as it is now."""
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size, model_type, 64, width, layers)).to(device)
    return PROBE_BATCH * PROBE_SEQ / step_seconds(model, device, autocast_dtype)


def pick_threads(vocab_size: int, model_type: str, width: int, autocast_dtype) -> tuple[int, str]:
    # (threads, a note for the reason); training.threads.ThreadWatch may change it later
    """Of one thread and PyTorch's default, the faster on a mid-size network right now: on a
    machine where another process holds a core, threads that wait on each other lose."""
    most = torch.get_num_threads()
    rates = {}
    for n in (most, 1):
        torch.set_num_threads(n)
        rates[n] = measure(2, width, vocab_size, model_type, torch.device("cpu"), autocast_dtype)
    best = max(rates, key=rates.get)
    torch.set_num_threads(best)
    return best, f"{best} of {most} thread(s), measured faster than {min(rates, key=rates.get)} ({rates[best]:,.0f} vs {min(rates.values()):,.0f} characters/s)"
