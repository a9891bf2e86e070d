"""An interpolated Kneser-Ney n-gram language model over token ids (1..V), counted with NumPy.

Chen & Goodman's interpolated Kneser-Ney, one discount per order. For a context h (its
last k-1 tokens) and a token w, level k of an order-n model gives

    P_k(w | h) = (max(a_k(hw) - D_k, 0) + D_k * T_k(h) * P_{k-1}(w | h')) / A_k(h)

where h' is h without its first token, A_k(h) = sum over w of a_k(hw), T_k(h) = the
number of w with a_k(hw) > 0, and a_k is the raw count at the top level (k = n) and the
continuation count below it: a_k(g) = the number of distinct tokens seen before g.
A context with A_k(h) = 0 (never seen) passes P_{k-1} through unchanged. Level 0 is
uniform over the V tokens, so a token never seen in training still has probability > 0.

Counting is exact and vectorized: every k-gram gets a dense id, the index of its key
among the sorted distinct keys of its order, and the key of a k-gram is
(id of its first k-1 tokens) * (V + 1) + its last token, which fits int64 for any
corpus and vocabulary. One sort per order counts the whole corpus.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

DEFAULT_DISCOUNT = 0.75  # where the counts cannot estimate one
MIN_DISCOUNT = 0.05  # a discount of 0 would give lower orders, and unseen tokens, no mass
PARALLEL_SORT_SIZE = 1 << 20  # from this many k-grams, sort on two threads
PACKED_BITS = 63  # a k-gram's key and its position are sorted as one int64 where they fit
SORTED_LOOKUP_KEYS = 1 << 21  # from this many k-grams (16 MB of keys), look them up in sorted order


@dataclass
class Level:
    """The statistics of one order k: its distinct k-grams and their contexts' totals."""

    keys: np.ndarray  # sorted distinct keys: context id * (V + 1) + last token (int64)
    counts: np.ndarray  # a_k of each k-gram (int64)
    context_total: np.ndarray  # A_k of each (k-1)-gram id (int64)
    context_types: np.ndarray  # T_k of each (k-1)-gram id (int64)
    discount: float

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The ids of these keys, -1 where a key is not among this level's k-grams."""
        if len(self.keys) == 0:
            return np.full(np.shape(keys), -1, dtype=np.int64)
        if len(self.keys) >= SORTED_LOOKUP_KEYS and len(keys) >= SORTED_LOOKUP_KEYS // 32:
            # searchsorted starts each search from the previous result: in sorted order the
            # searches stay in cache, several times faster on a table larger than the cache
            order = np.argsort(keys)
            idx = np.empty(len(keys), dtype=np.int64)
            idx[order] = np.searchsorted(self.keys, keys[order])
        else:
            idx = np.searchsorted(self.keys, keys)
        idx = np.minimum(idx, len(self.keys) - 1)
        return np.where(self.keys[idx] == keys, idx, -1)


class NGram:
    """An interpolated Kneser-Ney model of `order` (1 = unigram) over ids 1..vocab_size."""

    def __init__(self, vocab_size: int, levels: list[Level]):
        self.vocab_size = vocab_size
        self.levels = levels  # levels[k - 1] is order k

    @property
    def order(self) -> int:
        return len(self.levels)

    # ---- counting ---------------------------------------------------------------------
    @classmethod
    def fit(cls, ids: np.ndarray, vocab_size: int, order: int, discount: float | None = None) -> NGram:
        """Count `ids` (1-based token ids). discount: one D for every order, or None to
        estimate each order's as n1 / (n1 + 2 n2) from its own count-of-counts."""
        return cls.fit_orders(ids, vocab_size, [order], discount)[order]

    @classmethod
    def fit_orders(cls, ids: np.ndarray, vocab_size: int, orders, discount: float | None = None) -> dict[int, NGram]:
        """Models of several orders from one counting pass: {order: NGram}."""
        orders = sorted(set(orders))
        if not orders or orders[0] < 1:
            raise ValueError(f"orders must be 1 or more, got {orders}")
        ids = _checked_ids(ids, vocab_size)
        grams = _count_grams(ids, vocab_size, orders[-1])
        return {n: cls(vocab_size, [_level(grams, k, n, vocab_size, discount) for k in range(1, n + 1)])
                for n in orders}

    # ---- scoring ----------------------------------------------------------------------
    def log_prob(self, ids: np.ndarray) -> np.ndarray:
        """ln P of each token of `ids`, each predicted from up to order - 1 tokens before
        it in the same sequence (the first token from none)."""
        ids = _checked_ids(ids, self.vocab_size)
        prob = np.full(len(ids), 1.0 / self.vocab_size)
        context = np.zeros(len(ids) + 1, dtype=np.int64)  # the empty context, at positions -1..m-1
        for k, level in enumerate(self.levels, start=1):
            if len(ids) < k:
                break
            grams = np.where(context[:-1] >= 0, level.find(context[:-1] * (self.vocab_size + 1) + ids[k - 1:]), -1)
            prob[k - 1:] = _interpolate(level, context[:-1], grams, prob[k - 1:])
            context = grams  # the k-grams ending at positions k-1..m-1: the next level's contexts
        return np.log(prob)

    def next_distribution(self, context_ids) -> np.ndarray:
        """P(w | context) for w = 1..V as an array of V probabilities (index w - 1)."""
        context = _checked_ids(context_ids, self.vocab_size)
        return self.next_distributions(context[None, max(0, len(context) - (self.order - 1)):])[0]

    def next_distributions(self, histories: np.ndarray) -> np.ndarray:
        """P(w | h) for each row h of `histories` (n, L): the tokens before the next one, 0 where
        there is none (before the start of the text). Returns (n, V), token w at index w - 1.

        Only the tokens seen after each context are touched, so a step costs what the
        contexts hold, not n x V lookups: sampling calls this once per generated token."""
        histories = np.asarray(histories, dtype=np.int64)
        n, V = len(histories), self.vocab_size
        prob = np.full((n, V), 1.0 / V)
        contexts = self._history_context_ids(histories)
        for k, level in enumerate(self.levels, start=1):
            live = np.flatnonzero(contexts[:, k - 1] >= 0)
            if len(live) == 0 or len(level.keys) == 0:
                break  # a longer context containing an unseen one is unseen too
            c = contexts[live, k - 1]
            lo = np.searchsorted(level.keys, c * (V + 1) + 1)
            hi = np.searchsorted(level.keys, (c + 1) * (V + 1))
            lengths = hi - lo
            grams = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            total, types, d = level.context_total[c], level.context_types[c], level.discount
            prob[live] *= np.where(total > 0, d * types / np.maximum(total, 1), 1.0)[:, None]
            share = np.maximum(level.counts[grams] - d, 0.0) / np.repeat(np.maximum(total, 1), lengths)
            prob[np.repeat(live, lengths), level.keys[grams] % (V + 1) - 1] += share
        return prob

    def _history_context_ids(self, histories: np.ndarray) -> np.ndarray:
        """(n, order): the id of each row's last k - 1 tokens among level k's contexts, -1 where
        unseen or reaching before the start (a 0 in the history)."""
        n, width = len(histories), self.order - 1
        h = np.zeros((n, width), dtype=np.int64)
        if width:
            tail = histories[:, max(0, histories.shape[1] - width):]
            h[:, width - tail.shape[1]:] = tail
        out = np.full((n, self.order), -1, dtype=np.int64)
        out[:, 0] = 0  # level 1's context is the empty one
        gram_ids = np.zeros((n, width + 1), dtype=np.int64)  # the empty gram ends at every position
        for k, level in enumerate(self.levels[:width], start=1):
            parents, tokens = gram_ids[:, :-1], h[:, k - 1:]
            keys = np.maximum(parents, 0) * (self.vocab_size + 1) + tokens
            found = level.find(keys.ravel()).reshape(keys.shape)
            gram_ids = np.where((parents >= 0) & (tokens > 0), found, -1)
            out[:, k] = gram_ids[:, -1]
        return out

    # ---- checkpoint -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Arrays and ints only (no pickle), e.g. for a safetensors file."""
        state = {"vocab_size": self.vocab_size, "order": self.order,
                 "discounts": np.array([lv.discount for lv in self.levels], dtype=np.float64)}
        for k, lv in enumerate(self.levels, start=1):
            state[f"keys.{k}"] = lv.keys
            for name in ("counts", "context_total", "context_types"):
                state[f"{name}.{k}"] = _narrow(getattr(lv, name))
        return state

    @classmethod
    def from_state_dict(cls, state: dict) -> NGram:
        discounts = np.asarray(state["discounts"], dtype=np.float64)
        levels = [Level(*(np.asarray(state[f"{name}.{k}"], dtype=np.int64)
                          for name in ("keys", "counts", "context_total", "context_types")),
                        discount=float(discounts[k - 1]))
                  for k in range(1, _scalar(state["order"]) + 1)]
        return cls(_scalar(state["vocab_size"]), levels)


def _scalar(value) -> int:
    """An int stored as a Python int, a 0-d array or a 1-element array (older files)."""
    return int(np.asarray(value).reshape(-1)[0])


def _narrow(counts: np.ndarray) -> np.ndarray:
    """int32 where every count fits (any corpus under 2 billion tokens): 4 bytes saved per entry."""
    return counts.astype(np.int32) if len(counts) == 0 or counts.max() < 2**31 else counts


def _interpolate(level: Level, contexts: np.ndarray, grams: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Level k's probabilities given the contexts' ids, the k-grams' ids (-1: unseen) and
    the probabilities of level k - 1."""
    if len(level.keys) == 0:  # training was shorter than k tokens
        return lower
    seen = contexts >= 0
    safe = np.where(seen, contexts, 0)
    total = np.where(seen, level.context_total[safe], 0)
    types = level.context_types[safe]
    count = np.where(grams >= 0, level.counts[np.maximum(grams, 0)], 0)
    d = level.discount
    with np.errstate(invalid="ignore", divide="ignore"):
        mixed = (np.maximum(count - d, 0.0) + d * types * lower) / total
    return np.where(total > 0, mixed, lower)


@dataclass
class _Grams:
    """Every order's distinct k-grams: keys, raw counts, and each one's suffix (k-1)-gram id."""

    keys: list[np.ndarray]
    raw: list[np.ndarray]
    suffix: list[np.ndarray]  # suffix[k - 1][g]: the id of k-gram g without its first token

    def add(self, keys: np.ndarray, raw: np.ndarray, suffix: np.ndarray) -> None:
        self.keys.append(keys)
        self.raw.append(raw.astype(np.int64, copy=False))
        self.suffix.append(suffix)


def _count_grams(ids: np.ndarray, vocab_size: int, max_order: int) -> _Grams:
    """Order 1 by a bincount; then order k from order k-1's ids, one sort per order."""
    grams = _Grams([], [], [])
    top = min(max_order, len(ids))
    if top:
        counts = np.bincount(ids, minlength=vocab_size + 1)
        present = np.flatnonzero(counts)  # a 1-gram's key is its token: the empty context has id 0
        rank = np.zeros(vocab_size + 1, dtype=np.int64)
        rank[present] = np.arange(len(present))
        grams.add(present, counts[present], np.zeros(len(present), dtype=np.int64))
        previous = rank[ids]  # the id of the 1-gram ending at each position
        space = _Space(len(ids))
    for k in range(2, top + 1):
        m = len(ids) - k + 1  # k-grams, ending at positions k-1..n-1
        key_limit = len(grams.keys[-1]) * (vocab_size + 1)
        pairs = space.sorted_pairs(previous[:m], vocab_size + 1, ids[k - 1:], key_limit)
        starts = space.starts[:m]
        starts[0] = True
        np.not_equal(pairs.keys[1:], pairs.keys[:-1], out=starts[1:])
        first = np.flatnonzero(starts)
        # the (k-1)-gram that ends where the k-gram ends: the suffix, for continuation counts
        grams.add(pairs.keys[first], np.diff(first, append=m), previous[1:][pairs.order[first]])
        if k < top:
            ids_sorted = np.cumsum(starts, out=space.rank[:m])
            ids_sorted -= 1
            previous = previous[:m]  # read for the last time above: its memory takes the new ids
            previous[pairs.order] = ids_sorted
    for lst in (grams.keys, grams.raw, grams.suffix):  # orders longer than the text: no k-grams
        lst += [np.zeros(0, dtype=np.int64)] * (max_order - len(lst))
    return grams


@dataclass
class _Pairs:
    keys: np.ndarray  # sorted
    order: np.ndarray  # the position of each sorted key


class _Space:
    """Working arrays of the corpus's length, reused by every order: allocating (page-faulting)
    arrays this large costs about as much as the arithmetic on them."""

    def __init__(self, n: int):
        self.pairs, self.order, self.rank = (np.empty(n, dtype=np.int64) for _ in range(3))
        self.starts = np.empty(n, dtype=bool)
        self.position_bits = max(1, int(n - 1).bit_length())

    def sorted_pairs(self, context: np.ndarray, scale: int, tokens: np.ndarray, key_limit: int) -> _Pairs:
        """The keys context * scale + tokens, sorted, with their positions. Where a key and its
        position fit one int64, one sort of the packed pairs (NumPy's vectorized sort, on
        two threads) replaces a slower argsort."""
        m, bits = len(tokens), self.position_bits
        keys = np.multiply(context, scale, out=self.pairs[:m])
        keys += tokens
        if key_limit >= 1 << (PACKED_BITS - bits):
            order = np.argsort(keys, kind="stable")
            return _Pairs(keys[order], order)
        keys <<= bits
        keys |= np.arange(m, dtype=np.int64)
        _sort(keys)
        order = np.bitwise_and(keys, (1 << bits) - 1, out=self.order[:m])
        keys >>= bits
        return _Pairs(keys, order)


def _sort(values: np.ndarray) -> None:
    """In place; halves sorted on two threads (np.sort releases the GIL), then merged by a
    stable sort, which finds the two sorted runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or len(values) < PARALLEL_SORT_SIZE:
        values.sort()
        return
    half = len(values) // 2
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(np.ndarray.sort, (values[:half], values[half:])))
    values.sort(kind="stable")


def _level(grams: _Grams, k: int, order: int, vocab_size: int, discount: float | None) -> Level:
    keys = grams.keys[k - 1]
    if k == order:
        counts = grams.raw[k - 1]
    else:  # continuation counts: distinct tokens seen before each k-gram
        counts = np.bincount(grams.suffix[k], minlength=len(keys)).astype(np.int64)
    n_contexts = len(grams.keys[k - 2]) if k > 1 else 1
    contexts = keys // (vocab_size + 1)
    total = np.bincount(contexts, weights=counts, minlength=n_contexts).astype(np.int64)
    types = np.bincount(contexts[counts > 0], minlength=n_contexts).astype(np.int64)
    d = float(discount) if discount is not None else _estimate_discount(counts)
    return Level(keys, counts, total, types, d)


def _estimate_discount(counts: np.ndarray) -> float:
    n1, n2 = int(np.count_nonzero(counts == 1)), int(np.count_nonzero(counts == 2))
    if n1 + 2 * n2 == 0:
        return DEFAULT_DISCOUNT
    return min(1.0, max(MIN_DISCOUNT, n1 / (n1 + 2 * n2)))


def _checked_ids(ids, vocab_size: int) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) and (ids.min() < 1 or ids.max() > vocab_size):
        raise ValueError(f"token ids must be in 1..{vocab_size}, got {ids.min()}..{ids.max()}")
    return ids
