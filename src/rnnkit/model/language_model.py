"""The character/word language model: embedding -> LSTM | GRU | RNN stack -> logits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn

from ..errors import ConfigError

MODEL_TYPES = ("lstm", "gru", "rnn")


@dataclass
class ModelConfig:
    vocab_size: int
    model_type: str = "lstm"
    wordvec_size: int = 64
    rnn_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    batchnorm: bool = False

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"--model_type {self.model_type!r} is unknown; use lstm, gru or rnn")
        for name in ("vocab_size", "wordvec_size", "rnn_size", "num_layers"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"--{name} must be a positive whole number, got {getattr(self, name)}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class LanguageModel(nn.Module):
    """Token ids (batch, time), 1-based, -> next-token logits (batch, time, vocab_size).

    Row 0 of the embedding is never used (ids start at 1, as in torch-rnn); logits cover
    ids 1..V, so target id t is class t - 1.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size + 1, c.wordvec_size)
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c.model_type]
        # cuDNN's fused kernel runs the whole stack in one call on a GPU; between layers it
        # applies the dropout torch-rnn applies after each layer.
        self.rnn = rnn_class(
            c.wordvec_size, c.rnn_size, num_layers=c.num_layers, batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
        )
        self.norm = nn.BatchNorm1d(c.rnn_size) if c.batchnorm else None
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.rnn_size, c.vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        h, state = self.rnn(self.embed(ids), state)
        if self.norm is not None:
            h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        return self.head(self.drop(h)), state

    def set_dropout(self, p: float) -> None:
        """A new dropout for the rest of training; checkpoints record it."""
        self.config = replace(self.config, dropout=p)
        if self.config.num_layers > 1:
            self.rnn.dropout = p
        self.drop.p = p

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def state_tensors(state) -> dict[str, torch.Tensor]:
    """The carried hidden state as named tensors, for checkpoints."""
    if state is None:
        return {}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"hidden.{i}": s for i, s in enumerate(parts)}


def state_from_tensors(tensors: dict[str, torch.Tensor], model_type: str):
    parts = [tensors[k] for k in sorted(k for k in tensors if k.startswith("hidden."))]
    if not parts:
        return None
    return tuple(parts) if model_type == "lstm" else parts[0]


def model_from_checkpoint(ckpt, device: torch.device | str = "cpu") -> LanguageModel:
    """Rebuild a LanguageModel from a loaded Checkpoint (see core/checkpoint.py)."""
    from ..errors import CheckpointError

    if ckpt.meta.get("kind", "language_model") != "language_model":
        raise CheckpointError(f"{ckpt.path} is a {ckpt.meta.get('kind')} checkpoint, not a language model")
    try:
        config = ModelConfig(**ckpt.meta["model"])
        model = LanguageModel(config)
        model.load_state_dict(ckpt.prefixed("model."))
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt.path}: the weights do not fit the model it describes ({e})") from None
    return model.to(device)
