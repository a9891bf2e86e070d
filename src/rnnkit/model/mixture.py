"""The network mixed with a Kneser-Ney n-gram: P(w | h) = a P_net(w | h) + (1 - a) P_ngram(w | h).

Mikolov's RNNLM toolkit mixed its networks with a KN 5-gram this way: where the budget is
short the counts know what the network has not learned yet, and where it is long the two
still err differently. `a` (the network's share) and the n-gram's order are fitted on the
validation split (training/mixture.py); sampling, scoring, list mode, the server and the
exported page all read the same mixture from the checkpoint.

The n-gram's tables are a safetensors file beside the checkpoint, named and checksummed in
its JSON ("ngram"), so nothing is unpickled and a damaged table is refused like damaged
weights.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from .ngram import NGram

EM_STEPS = 200  # the weight's fit: EM converges in a few dozen steps on a validation split
EM_TOLERANCE = 1e-7


@dataclass
class Mixture:
    ngram: NGram
    weight: float  # the network's share, in (0, 1]

    @property
    def context(self) -> int:
        """Tokens of history the n-gram reads."""
        return self.ngram.order - 1

    # ---- scoring: ln P of the tokens that came ----------------------------------------------
    def mix_nats(self, net_nats: np.ndarray, ngram_logp: np.ndarray) -> np.ndarray:
        """Nats of each token under the mixture, from the network's nats and the n-gram's ln P."""
        return mixed_nats(net_nats, ngram_logp, self.weight)

    def token_nats(self, net_nats: np.ndarray, seq: np.ndarray, first: int) -> np.ndarray:
        """The mixture's nats of seq[first:], each token read after those before it in `seq`."""
        return self.mix_nats(net_nats, self.ngram.log_prob(seq)[first:])

    # ---- sampling: the whole next distribution ----------------------------------------------
    def mix_logits(self, logits: np.ndarray, histories: np.ndarray) -> np.ndarray:
        """ln P_mixture (n, V) as float32, from the network's logits (n, V) and each row's history
        of ids (the last tokens, 0 for none). Temperature, top-k and top-p then apply to it."""
        logits = np.asarray(logits, dtype=np.float64)
        net = np.exp(logits - logits.max(-1, keepdims=True))
        net /= net.sum(-1, keepdims=True)
        mixed = self.weight * net + (1 - self.weight) * self.ngram.next_distributions(histories)
        with np.errstate(divide="ignore"):
            return np.log(mixed).astype(np.float32)

    # ---- the file beside a checkpoint -------------------------------------------------------
    def describe(self) -> str:
        return f"{self.ngram.order}-gram, network weight {self.weight:.2f}"


def mixed_nats(net_nats: np.ndarray, ngram_logp: np.ndarray, weight: float) -> np.ndarray:
    if weight >= 1:
        return np.asarray(net_nats, dtype=np.float64)
    return -np.logaddexp(math.log(weight) - np.asarray(net_nats, dtype=np.float64),
                         math.log1p(-weight) + np.asarray(ngram_logp, dtype=np.float64))


def fit_weight(net_nats: np.ndarray, ngram_logp: np.ndarray) -> tuple[float, float]:
    """The network's share that minimizes the mean mixed nats (EM: the loss is convex in it),
    and that mean. Each step sets the share to the mean posterior that the network made the token."""
    net_nats = np.asarray(net_nats, dtype=np.float64)
    gap = -net_nats - np.asarray(ngram_logp, dtype=np.float64)  # ln P_net - ln P_ngram per token
    weight = 0.5
    for _ in range(EM_STEPS):
        logit = math.log(weight) - math.log1p(-weight) + gap
        new = float(np.mean(0.5 * (1 + np.tanh(0.5 * logit))))  # sigmoid, without overflow
        new = min(max(new, 1e-6), 1 - 1e-6)
        done = abs(new - weight) < EM_TOLERANCE
        weight = new
        if done:
            break
    return weight, float(mixed_nats(net_nats, ngram_logp, weight).mean())


def save_tables(ngram: NGram, path: Path) -> str:
    """Write the n-gram's tables as safetensors (atomically); returns their SHA-256."""
    from safetensors.numpy import save

    from ..core.atomic import atomic_write_bytes

    arrays = {k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else np.array(v, dtype=np.int64)  # ints: 0-d
              for k, v in ngram.state_dict().items()}
    blob = save(arrays)
    atomic_write_bytes(path, blob)
    return hashlib.sha256(blob).hexdigest()


def load_mixture(record: dict, checkpoint_json: Path) -> Mixture:
    """The mixture a checkpoint's "ngram" record names; a missing or damaged table file is one
    line naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = checkpoint_json.parent / str(record.get("file", ""))
    try:
        blob = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise CheckpointError(f"{checkpoint_json}: its n-gram file {path.name} is missing; copy it beside the "
                              "checkpoint, or pass --no_ngram to use the network alone") from None
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise CheckpointError(f"{path} does not match the checksum in {checkpoint_json.name} (truncated or "
                              "corrupted); pass --no_ngram to use the network alone")
    try:
        ngram = NGram.from_state_dict(load(blob))
        weight = float(record["weight"])
    except (SafetensorError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} or the n-gram record in {checkpoint_json.name} is not what rnnkit wrote "
                              f"({type(e).__name__}: {e}); pass --no_ngram to use the network alone") from None
    if not 0 < weight <= 1:
        raise CheckpointError(f"{checkpoint_json.name}: the n-gram weight {weight} is not in (0, 1]; "
                              "pass --no_ngram to use the network alone")
    return Mixture(ngram, weight)


class Histories:
    """The last tokens of each of n samples, as the n-gram reads them while sampling."""

    def __init__(self, prime: np.ndarray, n: int, width: int):
        self.ids = np.zeros((n, width), dtype=np.int64)  # 0: before the start
        tail = np.asarray(prime, dtype=np.int64)[max(0, len(prime) - width):] if width else prime[:0]
        self.ids[:, width - len(tail):] = tail

    def push(self, ids: np.ndarray) -> None:
        if self.ids.shape[1]:
            self.ids[:, :-1] = self.ids[:, 1:]
            self.ids[:, -1] = ids
