"""--weight_decay is AdamW's, on the weight matrices only, and old one-group optimizer
states still resume."""

from __future__ import annotations

import pytest
import torch

from rnnkit.core.checkpoint import pack_optimizer, unpack_optimizer
from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.training.optimizer import (
    DECAYED,
    NOT_DECAYED,
    build_optimizer,
    regroup_saved_state,
    set_weight_decay,
)


def small_model(seed: int = 0) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel(ModelConfig(vocab_size=7, wordvec_size=4, rnn_size=6, num_layers=2))


def test_weight_decay_shrinks_the_matrices_and_leaves_the_biases():
    model = small_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build_optimizer(model, lr=0.1, weight_decay=0.5, fused=False)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decay moves a weight
    opt.step()
    for name, p in model.named_parameters():
        # decoupled: a matrix is scaled by 1 - lr * decay (an L2 term in Adam's gradient
        # would move every weight by about lr instead)
        want = before[name] * (1 - 0.1 * 0.5) if p.dim() >= 2 else before[name]
        torch.testing.assert_close(p.detach(), want)
    set_weight_decay(opt, 0.2)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.2, 0.0]


def test_a_one_group_optimizer_state_is_renumbered_for_the_two_groups():
    model = small_model()
    old = torch.optim.Adam(model.parameters(), lr=1e-2)  # how checkpoints were written before
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    old.step()
    tensors, packed = pack_optimizer(old)
    new = build_optimizer(model, lr=1e-2, weight_decay=0.1, fused=False)
    unpack_optimizer(new, tensors, regroup_saved_state(packed, model))
    for p in model.parameters():  # each parameter gets its own moments back, whatever its new number
        torch.testing.assert_close(new.state[p]["exp_avg"], old.state[p]["exp_avg"])
        torch.testing.assert_close(new.state[p]["exp_avg_sq"], old.state[p]["exp_avg_sq"])
    assert all(p.dim() >= 2 for p in new.param_groups[DECAYED]["params"])
    assert all(p.dim() < 2 for p in new.param_groups[NOT_DECAYED]["params"])
    two_groups = pack_optimizer(new)[1]
    assert regroup_saved_state(two_groups, model) is two_groups  # kept as it is
    with pytest.raises(ValueError):  # another model's state does not fit
        regroup_saved_state(packed, LanguageModel(ModelConfig(vocab_size=7, wordvec_size=4, rnn_size=6, num_layers=1)))
