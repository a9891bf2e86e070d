"""--ngram N: count a Kneser-Ney n-gram on the training split and, once training ends, mix it
with the network where that lowers the validation loss (model/mixture.py).

Counting comes first, inside the time budget (at most COUNT_SHARE of it: the speed of
counting is measured on a prefix, and a long split is counted in part). At the end, for
the best checkpoint and the last one, every order from 2 to N is tried: the network's share
is fitted on the validation split, and the order with the lowest mixed loss is kept if it
gains at least MIN_GAIN nats per token over the network alone. The checkpoints' JSON
files then name the tables' file ("ngram"), which sampling, scoring and export read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.checkpoint import load_checkpoint, read_meta, save_checkpoint
from ..model.language_model import LanguageModel, model_from_checkpoint
from ..model.mixture import Mixture, fit_weight, save_tables
from ..model.ngram import NGram

MIN_ORDER = 2
# Of a time budget, at most, spent counting. It binds only on corpora of tens of MB, where the
# network reads a small part of the text in the budget and the counts are the stronger model.
COUNT_SHARE = 0.25
PROBE_TOKENS = 100_000  # counted first, to measure this machine's counting speed
MAX_COUNT_TOKENS = 64_000_000  # counted at most (memory while counting: ~40 bytes a token)
MAX_TABLE_GRAMS = 16_000_000  # k-grams of all levels in the saved tables (~20 bytes each)
FIT_TOKENS = 500_000  # validation tokens the weight and order are fitted on, at most
MIN_GAIN = 0.002  # nats per token the mixture must gain to be kept


@dataclass
class Counted:
    models: dict[int, NGram]  # order -> model, only orders whose tables fit MAX_TABLE_GRAMS
    tokens: int  # training tokens counted
    seconds: float


@dataclass
class Fit:
    mixture: Mixture | None  # None: no order gained MIN_GAIN
    network_loss: float  # mean nats per token on the fitting tokens
    ngram_loss: float  # the best n-gram alone, on the same tokens
    mixed_loss: float
    tokens: int


def count(train: np.ndarray, vocab_size: int, max_order: int, budget: float | None) -> Counted:
    """The n-grams of orders MIN_ORDER..max_order over (the start of) the training split."""
    start = time.perf_counter()
    limit = MAX_COUNT_TOKENS
    if budget is not None and len(train) > PROBE_TOKENS:
        NGram.fit_orders(np.asarray(train[:PROBE_TOKENS]), vocab_size, [max_order])
        rate = PROBE_TOKENS / max(time.perf_counter() - start, 1e-6)
        limit = min(limit, max(PROBE_TOKENS, int(rate * (COUNT_SHARE * budget - (time.perf_counter() - start)))))
    ids = np.asarray(train[:limit], dtype=np.int64)
    orders = range(MIN_ORDER, max_order + 1)
    models = {n: m for n, m in NGram.fit_orders(ids, vocab_size, orders).items() if _grams(m) <= MAX_TABLE_GRAMS}
    return Counted(models, len(ids), time.perf_counter() - start)


def _grams(model: NGram) -> int:
    return sum(len(level.keys) for level in model.levels)


def fit(model: LanguageModel, models: dict[int, NGram], val_ids: np.ndarray | None, items: list | None,
        newline_id: int | None, limit: int | None = None) -> Fit | None:
    """The best of these orders and its weight on the start of the validation split (lines one
    by one for a list corpus, else one stream), at most `limit` and FIT_TOKENS tokens; None when
    there is no validation split."""
    limit = min(FIT_TOKENS, limit or FIT_TOKENS)
    from ..sampling.score import Reader, block_nats, item_nats

    reader = Reader(model)
    if items is not None:
        taken, total = [], 0
        for item in items:
            if total >= limit:
                break
            taken.append(np.concatenate([[newline_id], item]).astype(np.int64))
            total += len(item)
        net = np.concatenate(item_nats(reader, taken))
        ngram_logp = {n: np.concatenate([m.log_prob(seq)[1:] for seq in taken]) for n, m in models.items()}
    elif val_ids is not None and len(val_ids) > 1:
        seq = np.asarray(val_ids[:limit + 1], dtype=np.int64)
        net = block_nats(reader, seq, 1, True)
        ngram_logp = {n: m.log_prob(seq)[1:] for n, m in models.items()}
    else:
        return None
    return choose(net, ngram_logp, models)


def choose(net: np.ndarray, ngram_logp: dict[int, np.ndarray], models: dict[int, NGram]) -> Fit:
    """The order whose fitted mixture scores lowest; kept only if it gains MIN_GAIN."""
    network_loss = float(net.mean())
    best = None
    for order, logp in ngram_logp.items():
        weight, loss = fit_weight(net, logp)
        if best is None or loss < best[2]:
            best = (order, weight, loss)
    if best is None:
        return Fit(None, network_loss, float("nan"), network_loss, len(net))
    order, weight, loss = best
    ngram_loss = float(-ngram_logp[order].mean())
    kept = Mixture(models[order], weight) if loss <= network_loss - MIN_GAIN else None
    return Fit(kept, network_loss, ngram_loss, loss if kept else network_loss, len(net))


def mix_into(checkpoints: list[Path], counted: Counted, tables: Path, device,
             fit_model: Callable[[LanguageModel, dict[int, NGram]], Fit | None]) -> Fit | None:
    """Fit the first checkpoint (the best) over every order, the others with its order only, and
    name the tables and each one's weight in its JSON (rewritten atomically). Checkpoints
    sharing a weights file share a fit. Returns the first one's fit."""
    first: Fit | None = None
    sha = None
    by_weights: dict[str, Fit | None] = {}
    for path in checkpoints:
        meta = read_meta(path)
        if meta["weights_file"] not in by_weights:
            model = model_from_checkpoint(load_checkpoint(path), device).eval()
            models = counted.models if first is None else {first.mixture.ngram.order: first.mixture.ngram}
            by_weights[meta["weights_file"]] = fit_model(model, models)
        f = by_weights[meta["weights_file"]]
        if first is None:
            first = f
            if f is None or f.mixture is None:
                return f
            sha = save_tables(f.mixture.ngram, tables)
        if f is None or f.mixture is None:
            continue
        meta["ngram"] = {"file": tables.name, "sha256": sha, "order": f.mixture.ngram.order,
                         "weight": f.mixture.weight, "val_loss_network": f.network_loss,
                         "val_loss_mixed": f.mixed_loss, "val_tokens": f.tokens}
        save_checkpoint(path, {}, meta, weights_path=path.parent / meta["weights_file"])
    return first


def describe(fit: Fit) -> str:
    if fit.mixture is None:
        return (f"n-gram mixture: not kept (the best order gained less than {MIN_GAIN:g} nats per token: "
                f"network {fit.network_loss:.3f}, mixed {fit.mixed_loss:.3f} on {fit.tokens:,} validation tokens)")
    return (f"n-gram mixture: {fit.mixture.describe()}: validation loss {fit.mixed_loss:.3f} nats per token, "
            f"against {fit.network_loss:.3f} for the network alone and {fit.ngram_loss:.3f} for the n-gram alone "
            f"({fit.tokens:,} tokens); sampling, scoring and export use it (--no_ngram: the network alone)")

