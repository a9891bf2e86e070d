"""The interpolated Kneser-Ney n-gram model (rnnkit.model.ngram) against a brute-force reference."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from rnnkit.model.ngram import NGram


def text_ids(text: str) -> tuple[np.ndarray, int]:
    alphabet = sorted(set(text))
    return np.array([alphabet.index(c) + 1 for c in text], dtype=np.int64), len(alphabet)


def random_ids(n: int, vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, vocab_size + 1, n)


class ReferenceKN:
    """Interpolated Kneser-Ney written from its definition with tuples and dicts, one
    probability at a time (raw counts at the top order, continuation counts below)."""

    def __init__(self, seq, vocab_size: int, order: int, discount: float | None):
        self.V, self.n = vocab_size, order
        seq = [int(t) for t in seq]
        raw = Counter(tuple(seq[i - k + 1: i + 1]) for k in range(1, order + 1) for i in range(k - 1, len(seq)))
        before = defaultdict(set)  # gram -> distinct tokens seen before it
        for gram in raw:
            if len(gram) > 1:
                before[gram[1:]].add(gram[0])
        self.a = {g: (c if len(g) == order else len(before[g])) for g, c in raw.items()}
        self.D = {k: discount if discount is not None else self._estimate(k) for k in range(1, order + 1)}

    def _estimate(self, k: int) -> float:
        counts = [c for g, c in self.a.items() if len(g) == k]
        n1, n2 = counts.count(1), counts.count(2)
        return min(1.0, max(0.05, n1 / (n1 + 2 * n2))) if n1 + 2 * n2 else 0.75

    def prob(self, w: int, history: tuple) -> float:
        p = 1 / self.V
        for k in range(1, min(self.n, len(history) + 1) + 1):
            h = history[len(history) - (k - 1):] if k > 1 else ()
            followers = {g[-1]: c for g, c in self.a.items() if len(g) == k and g[:-1] == h}
            total = sum(followers.values())
            if total == 0:
                continue
            types = sum(1 for c in followers.values() if c > 0)
            d = self.D[k]
            p = (max(followers.get(w, 0) - d, 0) + d * types * p) / total
        return p

    def log_prob(self, seq) -> list[float]:
        seq = [int(t) for t in seq]
        return [math.log(self.prob(w, tuple(seq[max(0, i - self.n + 1): i]))) for i, w in enumerate(seq)]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("discount", [0.75, None])
def test_matches_the_reference(order, discount):
    train, V = text_ids("the cat sat on the mat. a cat ate the rat; the rat sat.")
    held_out = np.array([*train[5:30], V, 1, V, V], dtype=np.int64)  # with contexts never seen
    ours = NGram.fit(train, V, order, discount=discount).log_prob(held_out)
    ref = ReferenceKN(train, V, order, discount)
    np.testing.assert_allclose(ours, ref.log_prob(held_out), rtol=0, atol=1e-9)
    model = NGram.fit(train, V, order, discount=discount)
    for history in [(), tuple(train[:3]), (V, V, 1), (int(train[7]),)]:
        expected = [ref.prob(w, history[max(0, len(history) - order + 1):] if order > 1 else ())
                    for w in range(1, V + 1)]
        np.testing.assert_allclose(model.next_distribution(list(history)), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3, 5, 7])
def test_distributions_sum_to_one(order):
    V = 13
    train = random_ids(3000, V - 1, seed=1)  # token V never seen in training
    model = NGram.fit(train, V, order)
    rng = np.random.default_rng(2)
    for _ in range(20):
        context = rng.integers(1, V + 1, rng.integers(0, 9))
        p = model.next_distribution(context)
        assert p.shape == (V,) and (p > 0).all()
        assert abs(p.sum() - 1) < 1e-12
    assert abs(model.next_distribution(train[:6]).sum() - 1) < 1e-12


def test_higher_order_learns_structure():
    pattern = "abcdefg" * 300 + "abcxefg" * 10
    train, V = text_ids(pattern)
    held_out, _ = text_ids("abcdefg" * 50 + "abcxefg")
    unigram = -NGram.fit(train, V, 1).log_prob(held_out).mean()
    fourgram = -NGram.fit(train, V, 4).log_prob(held_out).mean()
    assert unigram > 1.5 and fourgram < 0.1


def test_unseen_token_has_finite_loss():
    train, V = text_ids("abababababab")
    loss = -NGram.fit(train, V + 1, 3).log_prob(np.array([1, 2, V + 1, 1]))
    assert np.isfinite(loss).all() and loss[2] > loss[1]


def test_fit_orders_equals_separate_fits():
    train = random_ids(2000, 7, seed=3)
    held_out = random_ids(300, 7, seed=4)
    together = NGram.fit_orders(train, 7, [2, 3, 5])
    for order, model in together.items():
        np.testing.assert_array_equal(model.log_prob(held_out), NGram.fit(train, 7, order).log_prob(held_out))


def test_state_dict_round_trip():
    train = random_ids(5000, 20, seed=5)
    model = NGram.fit(train, 20, 5)
    state = model.state_dict()
    assert all(isinstance(v, (int, np.ndarray)) for v in state.values())
    assert all(v.dtype != object for v in state.values() if isinstance(v, np.ndarray))
    again = NGram.from_state_dict({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()})
    held_out = random_ids(500, 20, seed=6)
    np.testing.assert_array_equal(again.log_prob(held_out), model.log_prob(held_out))
    np.testing.assert_array_equal(again.next_distribution(held_out[:9]), model.next_distribution(held_out[:9]))


def test_state_dict_fits_safetensors(tmp_path):
    from safetensors.numpy import load_file, save_file

    model = NGram.fit(random_ids(1000, 9, seed=7), 9, 3)
    arrays = {k: np.asarray(v) for k, v in model.state_dict().items()}
    save_file(arrays, tmp_path / "ngram.safetensors")
    loaded = NGram.from_state_dict(load_file(tmp_path / "ngram.safetensors"))
    np.testing.assert_array_equal(loaded.next_distribution([1, 2]), model.next_distribution([1, 2]))


def test_short_and_empty_inputs():
    model = NGram.fit(np.array([1, 2]), 3, 5)
    assert model.log_prob(np.array([], dtype=np.int64)).shape == (0,)
    assert np.isfinite(model.log_prob(np.array([3, 3, 3, 1, 2, 1]))).all()
    assert abs(model.next_distribution([]).sum() - 1) < 1e-12
    with pytest.raises(ValueError):
        NGram.fit(np.array([0, 1]), 3, 2)


def test_sorted_lookup_of_large_tables_matches(monkeypatch):
    from rnnkit.model import ngram

    train, held_out = random_ids(20000, 30, seed=8), random_ids(5000, 30, seed=9)
    model = NGram.fit(train, 30, 4)
    plain = model.log_prob(held_out)
    monkeypatch.setattr(ngram, "SORTED_LOOKUP_KEYS", 64)
    np.testing.assert_array_equal(model.log_prob(held_out), plain)


@pytest.mark.parametrize("path", ["two threads", "argsort"])
def test_every_counting_path_gives_the_same_model(monkeypatch, path):
    """Counting sorts packed (key, position) pairs, on two threads for long texts, or argsorts the
    keys where a pair would not fit 63 bits: each path must count the same k-grams."""
    from rnnkit.model import ngram

    train, held_out = random_ids(30000, 6, seed=3), random_ids(3000, 6, seed=4)
    plain = NGram.fit(train, 6, 5)
    if path == "two threads":
        monkeypatch.setattr(ngram, "PARALLEL_SORT_SIZE", 2)
        monkeypatch.setattr(ngram.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    else:
        monkeypatch.setattr(ngram, "PACKED_BITS", 20)
    other = NGram.fit(train, 6, 5)
    for mine, theirs in zip(plain.levels, other.levels):
        for name in ("keys", "counts", "context_total", "context_types"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
    np.testing.assert_array_equal(other.log_prob(held_out), plain.log_prob(held_out))
    small = random_ids(400, 4, seed=5)
    np.testing.assert_allclose(NGram.fit(small, 4, 3, discount=None).log_prob(small[:60]),
                               ReferenceKN(small, 4, 3, None).log_prob(small[:60]), rtol=0, atol=1e-9)
