"""How much of a sample is new: the fraction of its length-n substrings absent from the training text.

This is what torch-rnn's scripts/novel_substrings.py prints, computed without its
O(len(sample) * len(train)) loop. For n = 1, 2, 3, ... it keeps rolling polynomial hashes
of the n-grams still in play: a sample position whose n-gram was not found drops out (every
longer substring starting there is novel too), and a training position stays only while its
n-gram hashes like some live sample n-gram. Hashes only filter: every hash match is checked
against the text itself, so hash collisions can never change the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputFileError

# Two hashes modulo primes below 2**31, packed into one 62-bit key; products fit in uint64.
PRIMES = (2_147_483_647, 2_147_483_629)
DEFAULT_MAX_N = 30


def novel_substring_fractions(
    sample: str,
    train: str,
    lengths: Iterable[int] = range(1, DEFAULT_MAX_N + 1),
    *,
    primes: tuple[int, int] = PRIMES,
    seed: int = 0,
) -> dict[int, float]:
    """{n: fraction of the sample's length-n substrings that occur nowhere in `train`}.

    Lengths longer than the sample are left out (there is nothing to count).
    `primes` and `seed` choose the hash; tests use tiny primes to force collisions.
    """
    wanted = sorted({int(n) for n in lengths if int(n) >= 1 and int(n) <= len(sample)})
    if not wanted:
        return {}
    s, t = _codes(sample), _codes(train)
    rng = np.random.default_rng(seed)
    bases = [np.uint64(rng.integers(min(256, p - 1), p)) for p in primes]
    mods = [np.uint64(p) for p in primes]

    s_pos = np.arange(len(s), dtype=np.int64)  # sample positions found so far
    t_pos = np.arange(len(t), dtype=np.int64)  # training positions still in play
    s_h = [np.zeros(len(s), np.uint64) for _ in primes]
    t_h = [np.zeros(len(t), np.uint64) for _ in primes]
    out: dict[int, float] = {}
    for n in range(1, wanted[-1] + 1):
        # extend each live hash by one symbol; positions whose n-gram would run off the end go
        keep_s, keep_t = s_pos + n <= len(s), t_pos + n <= len(t)
        s_pos, t_pos = s_pos[keep_s], t_pos[keep_t]
        s_h = [_extend(h[keep_s], s[s_pos + n - 1], b, m) for h, b, m in zip(s_h, bases, mods)]
        t_h = [_extend(h[keep_t], t[t_pos + n - 1], b, m) for h, b, m in zip(t_h, bases, mods)]
        s_key, t_key = _pack(s_h), _pack(t_h)

        live = np.isin(t_key, s_key)
        t_pos, t_h, t_key = t_pos[live], [h[live] for h in t_h], t_key[live]
        found = _verified_hits(s, t, s_pos, s_key, t_pos, t_key, n, sample, train)
        s_pos, s_h = s_pos[found], [h[found] for h in s_h]
        if n in wanted:
            total = len(s) - n + 1
            out[n] = (total - len(s_pos)) / total
    return out


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="replace"), dtype=np.uint32).astype(np.uint64)


def _extend(h: np.ndarray, symbols: np.ndarray, base: np.uint64, mod: np.uint64) -> np.ndarray:
    return (h * base + symbols) % mod


def _pack(hashes: list[np.ndarray]) -> np.ndarray:
    return (hashes[0] << np.uint64(31)) | hashes[1]


def _verified_hits(s, t, s_pos, s_key, t_pos, t_key, n, sample: str, train: str) -> np.ndarray:
    """Mask over s_pos: whose n-gram really occurs in the training text."""
    order = np.argsort(t_key, kind="stable")
    sorted_keys = t_key[order]
    at = np.searchsorted(sorted_keys, s_key)
    hit = at < len(sorted_keys)
    hit[hit] = sorted_keys[at[hit]] == s_key[hit]
    if not hit.any():
        return hit
    # compare the actual n-grams of each hash match, all at once
    idx = np.flatnonzero(hit)
    offsets = np.arange(n)
    same = (s[s_pos[idx, None] + offsets] == t[t_pos[order[at[idx]]][:, None] + offsets]).all(axis=1)
    # a collision (same key, different text): settle it exactly, however rare
    for j in idx[~same]:
        i = int(s_pos[j])
        hit[j] = sample[i : i + n] in train
    return hit


def read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path} is a folder; give a text file") from None


def format_table(fractions: dict[int, float]) -> str:
    """The report `rnnkit novelty` prints: one row per substring length."""
    rows = ["length  novel"]
    rows += [f"{n:>6}  {f:.4f}" for n, f in sorted(fractions.items())]
    return "\n".join(rows)
