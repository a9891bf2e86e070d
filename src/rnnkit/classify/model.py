"""The classifier: embedded event fields -> LSTM over packed sequences -> the last hidden
state -> one logit per class; padding batches, the batch order and the weighted loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .encode import EncodedEvents, truncated_spans


@dataclass
class ModelConfig:
    vocab_sizes: list[int]  # per categorical field, pad (0) and unknown (1) included
    num_numeric: int
    embedding_size: int = 16
    rnn_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    num_classes: int = 2


class EventLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = nn.ModuleList(nn.Embedding(v, cfg.embedding_size, padding_idx=0) for v in cfg.vocab_sizes)
        input_size = cfg.embedding_size * len(cfg.vocab_sizes) + cfg.num_numeric
        inner_dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.lstm = nn.LSTM(input_size, cfg.rnn_size, cfg.num_layers, batch_first=True, dropout=inner_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.rnn_size, cfg.num_classes)

    def forward(self, cat: torch.Tensor, num: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """cat (B, T, C) ids, num (B, T, F), lengths (B,) on the CPU -> logits (B, K)."""
        parts = [emb(cat[..., i]) for i, emb in enumerate(self.embeddings)]
        x = torch.cat(parts + [num], dim=-1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h[-1]: the top layer at each sequence's own last event
        return self.head(self.drop(h[-1]))


class Batcher:
    """Pads a batch of (truncated) sequences into (B, T, ...) tensors."""

    def __init__(self, enc: EncodedEvents, max_length: int, truncate: str, device: torch.device):
        self.cat = torch.from_numpy(enc.categorical)
        self.num = torch.from_numpy(enc.numeric)
        self.starts, self.lengths = truncated_spans(enc.offsets, max_length, truncate)
        self.device = device

    def __call__(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        starts = torch.from_numpy(self.starts[idx])
        lengths = torch.from_numpy(self.lengths[idx])
        steps = torch.arange(int(lengths.max()))
        valid = steps < lengths[:, None]
        rows = torch.where(valid, starts[:, None] + steps, 0)
        cat = (self.cat[rows] * valid[..., None]).long()
        num = self.num[rows] * valid[..., None]
        return cat.to(self.device), num.to(self.device), lengths


def length_batches(idx: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of similar lengths: shuffle, sort within chunks of 32 batches, shuffle batches."""
    idx = rng.permutation(idx)
    chunk = batch_size * 32
    batches = []
    for s in range(0, len(idx), chunk):
        part = idx[s:s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.no_grad()
def lstm_logits(model: EventLSTM, batcher: Batcher, idx: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits (n, K) aligned with idx; batches go shortest first so little padding is built."""
    model.eval()
    order = np.argsort(batcher.lengths[idx], kind="stable")
    out = np.empty((len(idx), model.cfg.num_classes), dtype=np.float32)
    for s in range(0, len(idx), batch_size):
        pos = order[s:s + batch_size]
        out[pos] = model(*batcher(idx[pos])).float().cpu().numpy()
    return out


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Mean over the batch, each sequence weighted by its class (torch's weighted mean)."""
    return F.cross_entropy(logits.float(), y, weight=class_weights)


def class_weights_for(y: np.ndarray, mode: str, num_classes: int) -> np.ndarray:
    """auto: n / (K n_class), so every class weighs the same in the loss (scikit-learn's
    'balanced'); a class absent from train gets 0. none: 1 each."""
    if mode == "none":
        return np.ones(num_classes)
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    return np.divide(len(y), num_classes * counts, out=np.zeros(num_classes), where=counts > 0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K) from logits, in float64."""
    return scipy.special.softmax(logits.astype(np.float64), axis=1)
