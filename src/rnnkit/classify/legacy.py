"""rnnkit 0.1's classifier checkpoints (two classes; no `classifier_format` in their JSON)
read into this rnnkit's format, so that predict and eval give the probabilities they gave:

- The LSTM's head had one output z, the positive class's logit: p = sigmoid(z). A 2-class
  softmax head with weight rows [0, w] and biases [0, b] gives the logits [0, z], and
  softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)].
- The bag-of-events baseline was a torch logistic regression: an EmbeddingBag averaging a
  weight over every field's id of every event (L events x C fields), plus a Linear over
  [numeric means, log1p(length)]. That average is each field's value frequencies times its
  weights, over C: scikit-learn's binary LogisticRegression on bag_features (baseline.py)
  with coef [weights / C, Linear weights] and the Linear's bias as intercept.
- The training prior was P(positive); the class frequencies are [1 - p, p].

Continuing a 0.1 run's training is not offered: its optimizer state is for the 1-output head.
"""

from __future__ import annotations

import torch

from ..core.checkpoint import Checkpoint
from ..errors import CheckpointError

BINARY = 1  # the classifier_format rnnkit 0.1 wrote, implied by its absence


def classifier_format(meta: dict) -> int:
    return meta.get("classifier_format", BINARY)


def from_binary(ckpt: Checkpoint, current_format: int) -> Checkpoint:
    """A 0.1 checkpoint as this rnnkit writes one: LSTM weights with a 2-class head, the
    baseline as scikit-learn coefficients, the prior as class frequencies."""
    meta, tensors = ckpt.meta, ckpt.tensors
    try:
        model = {k: v for k, v in tensors.items() if k.startswith("model.")}
        model.update(_softmax_head(tensors["model.head.weight"], tensors["model.head.bias"]))
        bag = _bag_coefficients(tensors, meta["model"]["vocab_sizes"])
        prior = float(meta["train"]["prior"])
        upgraded = {**meta, "classifier_format": current_format, "model": {**meta["model"], "num_classes": 2},
                    "train": {**meta["train"], "prior": [1.0 - prior, prior]}}
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt.path} is an incomplete rnnkit 0.1 classifier checkpoint ({e}); retrain it") from None
    return Checkpoint(upgraded, {**model, **bag}, ckpt.path)


def _softmax_head(weight: torch.Tensor, bias: torch.Tensor) -> dict[str, torch.Tensor]:
    """(1, H) and (1,) -> (2, H) and (2,): the negative class's logit fixed at 0."""
    if weight.shape[0] != 1 or bias.shape != (1,):
        raise ValueError(f"a one-output head, not {tuple(weight.shape)}")
    return {"model.head.weight": torch.cat([torch.zeros_like(weight), weight]),
            "model.head.bias": torch.cat([torch.zeros_like(bias), bias])}


def _bag_coefficients(tensors: dict[str, torch.Tensor], vocab_sizes: list[int]) -> dict[str, torch.Tensor]:
    """bag.values.weight (V, 1), bag.dense.weight (1, F + 1), bag.dense.bias (1,) -> BagOfEvents.tensors()."""
    values = tensors["bag.values.weight"].double()[:, 0]
    if vocab_sizes and len(values) != sum(vocab_sizes):
        raise ValueError(f"{len(values)} baseline weights for vocabularies of {sum(vocab_sizes)} values")
    categorical = values / len(vocab_sizes) if vocab_sizes else values[:0]  # no fields: one unused weight
    dense = tensors["bag.dense.weight"].double()[0]
    return {"bag.coef": torch.cat([categorical, dense])[None, :],
            "bag.intercept": tensors["bag.dense.bias"].double().reshape(1),
            "bag.classes": torch.tensor([0, 1])}
