"""The language model's optimizer: Adam with decoupled weight decay on the weight matrices.

--weight_decay is AdamW's (each update shrinks a matrix by lr x weight_decay of itself),
not an L2 term added to Adam's gradients, which Adam's scaling mostly cancels. Biases and
BatchNorm scales are not decayed. On tinyshakespeare's 15-minute budget (2x640, dropout
0.3), decay 0.1 took three seeds from 1.409 / 1.413 / 1.428 to 1.387 / 1.391 / 1.399
(two more seeds: 1.392, 1.392; docs/performance.md, "15 minutes").
"""

from __future__ import annotations

import torch

DECAYED, NOT_DECAYED = 0, 1  # the two parameter groups, in this order


def is_decayed(p: torch.Tensor) -> bool:
    """Matrices (embedding, LSTM, output layer) are decayed; biases and norm scales are not."""
    return p.dim() >= 2


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, fused: bool) -> torch.optim.AdamW:
    """AdamW over [matrices, the rest]; fused=True asks for the one-kernel version."""
    params = list(model.parameters())
    groups = [{"params": [p for p in params if is_decayed(p)], "weight_decay": weight_decay},
              {"params": [p for p in params if not is_decayed(p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, **({"fused": True} if fused else {}))


def set_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    for i, group in enumerate(optimizer.param_groups):
        group["weight_decay"] = weight_decay if i == DECAYED else 0.0


def regroup_saved_state(packed: dict, model: torch.nn.Module) -> dict:
    """A one-group optimizer state (checkpoints written before --weight_decay became AdamW's)
    split into build_optimizer's two groups; a two-group state is returned as it is.

    Only the groups' lists of saved parameter ids change: load_state_dict pairs saved ids
    with parameters by their order in the groups, so the saved tensors keep their names."""
    groups = packed["param_groups"]
    if len(groups) != 1:
        return packed
    saved_ids, params = groups[0]["params"], list(model.parameters())
    if len(saved_ids) != len(params):
        raise ValueError(f"the saved state has {len(saved_ids)} parameters, the model {len(params)}")
    base = {k: v for k, v in groups[0].items() if k != "params"}
    decayed = [i for i, p in zip(saved_ids, params) if is_decayed(p)]
    rest = [i for i, p in zip(saved_ids, params) if not is_decayed(p)]
    return {**packed, "param_groups": [{**base, "params": decayed}, {**base, "params": rest}]}
