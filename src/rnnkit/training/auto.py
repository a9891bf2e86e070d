"""`auto`: the model, batch and regularization settings for this corpus, budget and machine.

Without a time budget the size follows the corpus, as torch-rnn users advised each other
(1 MB -> 2x128 ... 6 MB -> 2x400), with torch-rnn's batch 50 x 50 and learning rate 2e-3.

With --time_budget the compute decides. A machine trains a given network at a nearly fixed
number of characters per second whatever the batch, so a budget is a number of characters,
and how many is measured at start-up (probe.py). The choice is then the largest network
that the budget shows enough characters per weight and that holds no more weights than a
few per training character (char-rnn's advice: parameters of the order of the data), with
many small batches at a high learning rate (annealed to the end of the budget), AdamW weight
decay, dropout once the budget repeats the corpus, and early stopping with frequent
evaluations when it repeats it many times. docs/auto.md has the measurements behind it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable

from ..core import distributed as dist
from ..core.options import fields_where
from .config import TrainConfig

AUTO_FIELDS = fields_where(TrainConfig, "auto")  # the settings that accept `auto`
# (train tokens up to, rnn_size): the torch-rnn community's rule of thumb, without a budget
SIZE_TABLE = ((300_000, 128), (1_500_000, 256), (3_000_000, 384), (float("inf"), 512))
# (layers, width) from small to large; one layer only where data is too small for two
SHAPES = ((1, 16), (1, 24), (1, 32), (1, 48), (2, 48), (2, 64), (2, 96), (2, 128), (2, 192), (2, 256),
          (2, 384), (2, 512), (2, 640), (2, 768), (2, 1024))
CHARS_PER_WEIGHT = 1.45  # the budget must show the network this many characters per weight
WEIGHTS_PER_CHAR = 6.0  # and the network holds at most this many weights per training character
WEIGHT_DECAY = 0.1  # AdamW's, under any budget
PROBE_SHARE = 0.05  # at most this share of the budget goes to measuring speeds
EVAL_PASSES = 1  # with many passes: evaluate (and checkpoint) every this many passes ...
PATIENCE = 2  # ... and stop after this many evaluations without a better validation loss,
PLATEAUS = 2  # having first gone back to the best checkpoint at a lower learning rate this many times
WORDVEC = 64
EVAL_SHARE = 0.01  # of the budget, at most, for one evaluation (a budget has about 8) ...
FORWARD_SPEEDUP = 3  # ... which reads tokens ~3x as fast as training (a forward pass, no backward)
MIN_EVAL_TOKENS = 100_000  # fewer would make the validation loss too noisy to stop early on
NGRAM_ORDER = 7  # under a budget, n-grams of orders 2..7 are counted and the best on validation kept


def network_weights(layers: int, width: int, vocab_size: int = 0) -> int:
    """LSTM weights, with the embedding and the output layer of this vocabulary."""
    h = width
    rnn = 4 * h * (WORDVEC + h) + (layers - 1) * 8 * h * h + layers * 8 * h
    return rnn + vocab_size * (WORDVEC + h + 1)


def choose_without_budget(train_tokens: int) -> dict:
    size = next(size for limit, size in SIZE_TABLE if train_tokens <= limit)
    return {"rnn_size": size, "num_layers": 2, "batch_size": 50, "seq_length": 50, "learning_rate": 2e-3,
            "dropout": 0.0, "weight_decay": 0.0, "early_stopping": None, "lr_plateau": 0, "checkpoint_every": 1000, "ngram": 0,
            "eval_tokens": None,
            "reason": f"{train_tokens:,} training tokens -> {size} units (torch-rnn's rule of thumb); "
                      "torch-rnn's batch 50 x 50, learning rate 2e-3"}


def dropout_for(passes: float) -> float:
    """Dropout for a budget that trains `passes` passes over the training split: none while each
    character is seen a few times, more the more often the network sees it again."""
    return 0.0 if passes <= 6 else 0.3 if passes <= 50 else 0.5


def largest_shape(train_tokens: int, budget: float, vocab_size: int, speed: Callable[[int, int], float]) -> tuple[int, int, float]:
    """(layers, width, characters/s) of the largest shape that fits the data and the budget;
    `speed` tells a shape's characters/s. Shapes are tried small to large."""
    chosen = None
    for layers, width in SHAPES:
        weights = network_weights(layers, width, vocab_size)
        if chosen is not None and weights > WEIGHTS_PER_CHAR * train_tokens:
            break
        rate = speed(layers, width)
        if chosen is not None and budget * rate < CHARS_PER_WEIGHT * weights:
            break
        chosen = (layers, width, rate)
    return chosen


def choose(train_tokens: int, budget: float, vocab_size: int, speed: Callable[[int, int], float],
           machine: str = "", shape: tuple[int, int] | None = None) -> dict:
    """shape: (layers, width) already decided (typed, or a checkpoint's): only it is measured."""
    if shape is None:
        layers, width, rate = largest_shape(train_tokens, budget, vocab_size, speed)
    else:
        (layers, width), rate = shape, speed(*shape)
    seen = budget * rate  # characters the budget trains on
    passes = seen / max(1, train_tokens)
    batch = 12 if seen <= 5e6 else 16 if seen <= 5e7 else 32
    seq = 64
    lr = 5e-3 if width <= 256 else 3e-3
    dropout = dropout_for(passes)
    many = passes > 8 * EVAL_PASSES  # enough passes that overfitting, not the budget, ends the useful part
    per_pass = max(1, train_tokens // (batch * seq))
    choice = {"rnn_size": width, "num_layers": layers, "batch_size": batch, "seq_length": seq, "learning_rate": lr,
              "dropout": dropout, "weight_decay": WEIGHT_DECAY,
              "early_stopping": PATIENCE if many else None, "lr_plateau": PLATEAUS if many else 0,
              "checkpoint_every": EVAL_PASSES * per_pass if many else 1000, "ngram": NGRAM_ORDER,
              "eval_tokens": max(MIN_EVAL_TOKENS, int(EVAL_SHARE * budget * rate * FORWARD_SPEEDUP))}
    choice["reason"] = (
        f"{machine}a {budget:g} s budget trains ~{seen / 1e6:.2g}M characters ({passes:.3g} passes over {train_tokens:,} "
        f"training tokens); {layers}x{width} is the largest network shown >= {CHARS_PER_WEIGHT:g} characters per weight "
        f"with <= {WEIGHTS_PER_CHAR:g} weights per training character; batch {batch} x {seq} at learning rate {lr:g}, "
        f"weight decay {WEIGHT_DECAY:g}" + (f", dropout {dropout:g}" if dropout else "")
        + (f"; evaluated every {EVAL_PASSES} passes; after {PATIENCE} without a better loss, back to the best "
           f"checkpoint at 0.3x the learning rate ({PLATEAUS} times), then stopping" if many else "")
        + f"; evaluations read up to {choice['eval_tokens']:,} validation tokens (~{EVAL_SHARE:.0%} of the budget each)"
        + f"; a Kneser-Ney n-gram of order up to {NGRAM_ORDER} mixed in where it lowers the validation loss")
    return choice


class Prober:
    """Measures shapes on demand within a share of the budget; past it, extrapolates from the
    largest shape measured by the multiply-adds (conservative: larger networks use the
    machine better). Remembers what it measured."""

    def __init__(self, cfg: TrainConfig, vocab_size: int, device, autocast_dtype):
        from .probe import Speeds

        self.cfg, self.vocab_size, self.device, self.autocast_dtype = cfg, vocab_size, device, autocast_dtype
        self.deadline: float | None = None  # set at the first shape: the threads' probe also warms torch up
        self.speeds = Speeds(threads=0)

    def pick_threads(self) -> None:
        import torch

        from .probe import pick_threads

        if self.device.type != "cpu" or self.cfg.threads:
            self.speeds.threads = self.cfg.threads or torch.get_num_threads()
            return
        self.most_threads = torch.get_num_threads()
        if self.most_threads > 1:
            self.speeds.threads, self.speeds.thread_note = pick_threads(self.vocab_size, self.cfg.model_type, 128, self.autocast_dtype)
        else:
            self.speeds.threads = 1

    def __call__(self, layers: int, width: int) -> float:
        from .probe import measure

        now = time.perf_counter()
        if self.deadline is None:
            self.deadline = now + PROBE_SHARE * self.cfg.time_budget
        measured = self.speeds.chars_per_second
        if measured and now > self.deadline:
            (last_layers, last_width), rate = max(measured.items(), key=lambda kv: self.cost(*kv[0]))
            return rate * self.cost(last_layers, last_width) / self.cost(layers, width)
        rate = measure(layers, width, self.vocab_size, self.cfg.model_type, self.device, self.autocast_dtype)
        measured[(layers, width)] = rate
        return rate

    def cost(self, layers: int, width: int) -> int:
        """Multiply-adds per character: the weights that are multiplied (not the embedding's)."""
        return network_weights(layers, width, self.vocab_size) - self.vocab_size * WORDVEC


def resolve_auto(cfg: TrainConfig) -> TrainConfig:
    """The config with every `auto` chosen (on rank 0, shared with the others); the choice and
    its reason are kept in auto_choice (written to config.json) and shown on stderr."""
    wanted = cfg.pending_auto()
    if not wanted:
        return cfg
    choice = dist.from_rank0(_choose, cfg)
    picked = {k: choice[k] for k in wanted}
    auto_choice = {**picked, "reason": choice["reason"]}
    if "amp" in choice:  # --amp auto on a CPU, decided with the sizes
        picked["amp"] = auto_choice["amp"] = choice["amp"]
    if choice.get("threads_tried") and cfg.threads is None:  # measured here, so watched while training
        picked["threads"] = auto_choice["threads"] = choice["threads"]
        auto_choice["threads_tried"] = choice["threads_tried"]
    if "probe_seconds" in choice:
        auto_choice["probe_seconds"] = round(choice["probe_seconds"], 2)
    if not cfg.quiet and dist.rank() == 0:
        print(describe_choice(auto_choice), file=sys.stderr, flush=True)
    return dataclasses.replace(cfg, **picked, auto_choice=auto_choice)


def _choose(cfg: TrainConfig) -> dict:
    from ..core.device import CPU_BF16_MAX_RNN_SIZE, autocast_dtype, resolve_device
    from ..text.splits import open_split
    from ..text.vocab import Vocab

    tokens = len(open_split(cfg.input_h5, "train"))
    if cfg.time_budget is None:
        return choose_without_budget(tokens)
    vocab_size = len(Vocab.load(cfg.input_json))
    device = resolve_device(cfg.device, cfg.gpu)
    start = time.perf_counter()
    amp = cpu_amp(cfg, device)
    for attempt in ("bf16", "off") if amp == "bf16" else (cfg.amp,):
        prober = Prober(cfg, vocab_size, device, autocast_dtype(attempt, device))
        prober.pick_threads()
        machine = f"on {device.type}" + (f" with {prober.speeds.thread_note}" if prober.speeds.thread_note else "") + ", "
        choice = choose(tokens, cfg.time_budget, vocab_size, prober, machine, decided_shape(cfg))
        if attempt != "bf16" or choice["rnn_size"] <= CPU_BF16_MAX_RNN_SIZE:
            break  # wider, bf16 steps are slower than float32's: measure again in float32
    if amp == "bf16":
        choice["amp"] = attempt
        choice["reason"] += ("; bf16 on this CPU's bfloat16 instructions (more steps in the budget: a lower loss on "
                             "the benchmark corpora)" if attempt == "bf16" else f"; float32, as bf16 is slower above "
                             f"{CPU_BF16_MAX_RNN_SIZE} units")
    choice.update(threads=prober.speeds.threads, probe_seconds=time.perf_counter() - start)
    if prober.speeds.thread_note:
        choice["threads_tried"] = sorted({prober.most_threads, 1}, reverse=True)
    return choice


def cpu_amp(cfg: TrainConfig, device) -> str:
    """--amp auto under a budget on a CPU: bf16 where the CPU has bf16 instructions and can train
    this cell type in it (bench_amp.py: as low a loss or lower on every corpus measured)."""
    from ..core.device import cpu_bf16_rnn_failure, cpu_has_bf16_math

    if cfg.amp != "auto" or device.type != "cpu" or not cpu_has_bf16_math():
        return cfg.amp
    return "bf16" if cpu_bf16_rnn_failure(cfg.model_type) is None else cfg.amp


def decided_shape(cfg: TrainConfig) -> tuple[int, int] | None:
    """(layers, width) when auto is not to choose them: a checkpoint's, or both typed."""
    if cfg.init_from:
        from ..core.checkpoint import read_meta, resolve_checkpoint

        model = read_meta(resolve_checkpoint(cfg.init_from)).get("model", {})
        if "num_layers" in model and "rnn_size" in model:
            return model["num_layers"], model["rnn_size"]
    pending = cfg.pending_auto()
    return None if "rnn_size" in pending or "num_layers" in pending else (cfg.num_layers, cfg.rnn_size)


def describe_choice(choice: dict) -> str:
    parts = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in choice.items()
                      if k not in ("reason", "probe_seconds", "threads_tried"))
    return f"auto: {parts} ({choice['reason']})"
