"""`--rnn_size auto`, `--num_layers auto`, `--batch_size auto`, `--seq_length auto`.

The choice starts from the corpus size and the time budget. The table follows the
advice that torch-rnn users passed around (1 MB -> 2x128 ... 6 MB -> 2x400), scaled by
what this machine can train in the time given: a bigger network only pays when the
budget lets it see the corpus several times.
"""

from __future__ import annotations

from pathlib import Path

# (train tokens up to, rnn_size): the torch-rnn community's rule of thumb
SIZE_TABLE = ((300_000, 128), (1_500_000, 256), (3_000_000, 384), (float("inf"), 512))
AUTO_FIELDS = ("rnn_size", "num_layers", "batch_size", "seq_length")


def choose(train_tokens: int, time_budget: float | None) -> dict:
    rnn_size = next(size for limit, size in SIZE_TABLE if train_tokens <= limit)
    reason = [f"{train_tokens:,} training tokens -> {rnn_size} units"]
    if time_budget is not None and time_budget < 600 and rnn_size > 256:
        rnn_size = 256
        reason.append(f"a {time_budget:g}s budget is too short for a wider network -> 256")
    # Short budgets favour more, smaller updates: fewer lanes, the same unroll length.
    batch_size = 32 if time_budget is not None and time_budget <= 900 else 50
    return {"rnn_size": rnn_size, "num_layers": 2, "batch_size": batch_size, "seq_length": 64,
            "reason": "; ".join(reason)}


def train_tokens_of(options: dict) -> int | None:
    from .data import open_split

    if options.get("input_h5"):
        return len(open_split(options["input_h5"], "train"))
    if options.get("input_txt"):
        from .corpus import input_files

        # bytes are a close enough stand-in for characters here
        return int(0.8 * sum(f.stat().st_size for f in input_files(options["input_txt"])))
    return None


def resolve_auto(config_class, options: dict):
    wanted = [k for k in AUTO_FIELDS if options.get(k) == "auto"]
    if wanted:
        tokens = train_tokens_of(options)
        if tokens is None:
            from .errors import ConfigError

            raise ConfigError("auto sizes need the training data: give a text file or --input_h5")
        picked = choose(tokens, options.get("time_budget"))
        for k in wanted:
            options[k] = picked[k]
        options["auto_choice"] = {**{k: picked[k] for k in wanted}, "reason": picked["reason"]}
    return config_class(**options)


def describe_choice(run_dir: str | Path, choice: dict) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in choice.items() if k != "reason")
    return f"auto: {parts} ({choice['reason']})"
