"""`auto` for --rnn_size, --num_layers, --batch_size, --seq_length, --learning_rate, --dropout,
--weight_decay.

Without a time budget the size follows the corpus, as torch-rnn users advised each
other (1 MB -> 2x128 ... 6 MB -> 2x400), with torch-rnn's batch 50 x 50 and lr 2e-3.

With --time_budget the compute decides. A CPU trains a given width at a nearly fixed
number of characters per second whatever the batch, so a budget is a number of
characters. Measured on tinyshakespeare (1.0M training characters, one thread, CPU
clock; README "Performance"), val loss in nats/char:
  100 s, 2x256: batch 16 / 12 / 8 at lr 3e-3  -> 1.525 / 1.512 / 1.498
  100 s, 2x256, batch 12: lr 2e-3 / 3e-3 / 5e-3 / 7e-3 -> 1.546 / 1.512 / 1.487-1.495 / 1.490
  100 s, batch 12, lr 5e-3: 2x384 -> 1.507 (2x256: 1.487-1.495)
  15 min, batch 16: 2x384 no dropout -> best 1.483, then overfits to 1.576;
                    2x512 dropout 0.1, lr 2e-3 -> 1.427; dropout 0.25, lr 3e-3 -> 1.413
  100 s, 2x256 in bf16 (~5 passes, two threads, wall clock): dropout 0.1 / 0 -> 1.484 / 1.466
  15 min, two threads, wall clock: 2x512 (~13 passes), float32 dropout 0.25 -> 1.4387 (1.4195
    on a partly loaded machine); bf16 dropout 0.25 / 0.3 / 0.4 -> 1.423 / 1.439 / 1.432;
    2x640 (~7 passes) dropout 0.3 / 0.4 -> 1.4146 / 1.4196; dropout 0.3, seeds 123 / 1 / 7 ->
    1.409 / 1.413 / 1.428, and with AdamW weight decay 0.1 on the matrices as well 1.387 /
    1.391 / 1.399 (seeds 2 and 3: 1.392)
  100 s, two threads, 2x256 (auto), seeds 123 / 1: no weight decay 1.475 / 1.470, 0.1 -> 1.453 / 1.454
With --amp bf16 on a CPU that has bf16 instructions (widths up to 512; core/device.py) a step
is ~1.7x faster, so the same budget trains on 1.7x the characters. A second thread trains
1.5-2x the characters (table below); more threads were not measured and count as two.
So: the widest network that still sees ~1.45 characters per weight in the budget, many
small batches at a high learning rate (annealed to the end of the budget, schedule.py)
with AdamW weight decay 0.1, and dropout 0.3 once the budget goes over the corpus more than
6 times. The network is also kept below ~6 weights per training character (char-rnn's
advice: parameters of the order of the data), since beyond that it mostly memorizes. At
100 s on two threads 2x384 would see 1.3 characters per weight and 2x256 is chosen; at 15
minutes 2x640 sees 1.6.
"""

from __future__ import annotations

import sys

from ..core.options import fields_where
from .config import TrainConfig

AUTO_FIELDS = fields_where(TrainConfig, "auto")  # the settings that accept `auto`
# (train tokens up to, rnn_size): the torch-rnn community's rule of thumb
SIZE_TABLE = ((300_000, 128), (1_500_000, 256), (3_000_000, 384), (float("inf"), 512))
# characters/s that (one thread, two threads) train 2 layers of this width at batch 12-16 x 64
# (2-core AMD EPYC, torch 2.13 CPU); a faster machine only makes the choice cautious
CHARS_PER_SECOND = {128: (93_000, 89_000), 192: (38_000, 59_000), 256: (26_000, 42_000), 384: (15_000, 24_000),
                    512: (8_200, 15_000), 640: (5_600, 9_000), 768: (4_000, 6_600)}
BF16_SPEEDUP = 1.7  # 1.64-1.77x measured at widths 128-512, one thread, Zen 5
CHARS_PER_WEIGHT = 1.45  # the budget must show the network this many characters per weight
WEIGHTS_PER_CHAR = 6.0  # and the network holds at most this many weights per training character
WEIGHT_DECAY = 0.1  # AdamW's, under any budget: 100 s 1.470-1.475 -> 1.453-1.454, 15 min ~0.02 lower too
WORDVEC = 64


def lstm_weights(rnn_size: int, layers: int = 2) -> int:
    h = rnn_size
    return 4 * h * (WORDVEC + h) + (layers - 1) * 8 * h * h + layers * 8 * h


def chars_per_second(rnn_size: int, bf16_up_to: int = 0, threads: int = 1) -> float:
    """Training characters/s at this width; bf16_up_to: widths trained in bf16."""
    rate = CHARS_PER_SECOND[rnn_size][1 if threads >= 2 else 0]
    return rate * (BF16_SPEEDUP if rnn_size <= bf16_up_to else 1.0)


def choose(train_tokens: int, time_budget: float | None, bf16_up_to: int = 0, threads: int = 1) -> dict:
    if time_budget is None:
        size = next(size for limit, size in SIZE_TABLE if train_tokens <= limit)
        return {"rnn_size": size, "num_layers": 2, "batch_size": 50, "seq_length": 50, "learning_rate": 2e-3,
                "dropout": 0.0, "weight_decay": 0.0, "reason": f"{train_tokens:,} training tokens -> {size} units (torch-rnn's rule of "
                                          "thumb); torch-rnn's batch 50 x 50, learning rate 2e-3"}
    fits = [h for h in CHARS_PER_SECOND if time_budget * chars_per_second(h, bf16_up_to, threads) >= CHARS_PER_WEIGHT * lstm_weights(h)
            and lstm_weights(h) <= WEIGHTS_PER_CHAR * train_tokens]
    size = max(fits, default=min(CHARS_PER_SECOND))
    seen = time_budget * chars_per_second(size, bf16_up_to, threads)  # characters the budget trains on
    epochs = seen / max(1, train_tokens)
    batch = 12 if seen <= 5e6 else 16 if seen <= 5e7 else 32
    lr = 5e-3 if size <= 256 else 3e-3
    dropout = 0.0 if epochs <= 6 else 0.3
    on = "one thread" if threads < 2 else "two threads" if threads == 2 else f"{threads} threads (counted as two)"
    reason = (f"a {time_budget:g} s budget on {on} trains ~{seen / 1e6:.1f}M characters ({epochs:.1f} passes over "
              f"{train_tokens:,} training tokens); 2x{size} is the widest network shown >= {CHARS_PER_WEIGHT:g} characters "
              f"per weight with <= {WEIGHTS_PER_CHAR:g} weights per training character; batch {batch} x 64 at learning rate {lr:g}, "
              f"weight decay {WEIGHT_DECAY:g}"
              + (f"; dropout {dropout:g} against overfitting" if dropout else "")
              + ("; bfloat16 on this CPU" if size <= bf16_up_to else ""))
    return {"rnn_size": size, "num_layers": 2, "batch_size": batch, "seq_length": 64, "learning_rate": lr,
            "dropout": dropout, "weight_decay": WEIGHT_DECAY, "reason": reason}


def bf16_widths(options: dict) -> int:
    """The widest network that --amp bf16 trains faster on this run's device (0: none)."""
    from ..core.device import CPU_BF16_MAX_RNN_SIZE, cpu_has_bf16_math, resolve_device
    from ..errors import ConfigError

    if options.get("amp") != "bf16" or not cpu_has_bf16_math():
        return 0
    try:
        on_cpu = resolve_device(options.get("device", "auto"), options.get("gpu")).type == "cpu"
    except ConfigError:  # a bad --device is reported once, by the trainer
        return 0
    return CPU_BF16_MAX_RNN_SIZE if on_cpu else 0


def train_threads(options: dict) -> int:
    import torch

    return options.get("threads") or torch.get_num_threads()


def train_tokens_of(options: dict) -> int | None:
    from ..text.splits import open_split

    if options.get("input_h5"):
        return len(open_split(options["input_h5"], "train"))
    if options.get("input_txt"):
        from ..text.corpus import input_files

        # bytes are a close enough stand-in for characters here
        return int(0.8 * sum(f.stat().st_size for f in input_files(options["input_txt"])))
    return None


def resolve_auto(config_class, options: dict):
    """The config with every `auto` value chosen; the choice and its reason are kept in
    auto_choice (written to config.json) and shown on stderr."""
    wanted = [k for k in AUTO_FIELDS if options.get(k) == "auto"]
    if wanted:
        tokens = train_tokens_of(options)
        if tokens is None:
            from ..errors import ConfigError

            raise ConfigError("auto sizes need the training data: give a text file or --input_h5")
        picked = choose(tokens, options.get("time_budget"), bf16_widths(options), train_threads(options))
        for k in wanted:
            options[k] = picked[k]
        options["auto_choice"] = {**{k: picked[k] for k in wanted}, "reason": picked["reason"]}
        from ..core.distributed import rank

        if not options.get("quiet") and rank() == 0:
            print(describe_choice(options["auto_choice"]), file=sys.stderr, flush=True)
    return config_class(**options)


def describe_choice(choice: dict) -> str:
    parts = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in choice.items() if k != "reason")
    return f"auto: {parts} ({choice['reason']})"
