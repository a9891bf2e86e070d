import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.model.language_model import LanguageModel, ModelConfig


@pytest.mark.parametrize("model_type", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_output_shapes(model_type, num_layers):
    model = LanguageModel(ModelConfig(vocab_size=11, model_type=model_type, rnn_size=16, num_layers=num_layers, wordvec_size=8))
    ids = torch.randint(1, 12, (4, 7))
    logits, state = model(ids)
    assert logits.shape == (4, 7, 11)
    parts = state if isinstance(state, tuple) else (state,)
    assert len(parts) == (2 if model_type == "lstm" else 1)
    assert all(p.shape == (num_layers, 4, 16) for p in parts)
    # carrying the state forward is the same as running the whole sequence at once
    first, s = model(ids[:, :3])
    second, _ = model(ids[:, 3:], s)
    assert torch.allclose(torch.cat([first, second], 1), logits, atol=1e-5)


def test_batchnorm_and_dropout_options():
    model = LanguageModel(ModelConfig(vocab_size=5, rnn_size=8, dropout=0.5, batchnorm=True))
    logits, _ = model(torch.randint(1, 6, (3, 4)))
    assert logits.shape == (3, 4, 5)


@pytest.mark.parametrize("bad", [dict(rnn_size=0), dict(num_layers=-1), dict(dropout=1.0), dict(model_type="transformer")])
def test_invalid_config_is_a_user_error(bad):
    with pytest.raises(ConfigError):
        ModelConfig(vocab_size=5, **bad)
