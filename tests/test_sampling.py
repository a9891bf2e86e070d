import pytest
import torch

from rnnkit.core.checkpoint import save_checkpoint
from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.sampling.generator import Generator, SampleOptions
from rnnkit.text.vocab import Vocab


@pytest.fixture
def generator():
    torch.manual_seed(0)
    vocab = Vocab.build("abcdefgh \n", "char")
    return Generator(LanguageModel(ModelConfig(len(vocab), rnn_size=16, wordvec_size=8)), vocab)


def test_seed_makes_sampling_repeatable(generator):
    a = generator.generate(length=100, seed=7)
    b = generator.generate(length=100, seed=7)
    c = generator.generate(length=100, seed=8)
    assert a == b and a != c and len(a[0]) == 100


def test_num_samples_is_one_batch_of_distinct_streams(generator):
    texts = generator.generate(length=50, seed=1, num_samples=4)
    assert len(texts) == 4 and len(set(texts)) > 1


def test_start_text_is_kept_and_can_be_longer_than_training_sequences(generator):
    start = "abc " * 300
    out = generator.generate(length=10, start_text=start, seed=0)[0]
    assert out.startswith(start) and len(out) == len(start) + 10


def test_argmax_is_deterministic(generator):
    assert generator.generate(length=30, sample=False) == generator.generate(length=30, sample=False, seed=5)


def test_top_k_one_equals_argmax(generator):
    assert generator.generate(length=30, top_k=1, seed=3) == generator.generate(length=30, sample=False)


def test_stop_at_ends_each_sample(generator):
    for text in generator.generate(length=500, stop_at="a", num_samples=3, seed=2):
        assert text.endswith("a") and text.count("a") == 1


def test_stream_yields_the_same_text(generator):
    assert "".join(generator.stream(length=40, seed=4, start_text="ab")) == generator.generate(length=40, seed=4, start_text="ab")[0]


def test_unknown_start_characters_are_named(generator):
    with pytest.raises(RnnkitError, match="'Z'"):
        generator.generate(length=5, start_text="abZ")
    assert generator.generate(length=5, start_text="abZ", skip_unknown=True, seed=0)[0].startswith("abZ")


@pytest.mark.parametrize("bad", [dict(temperature=0), dict(length=-1), dict(top_k=0), dict(top_p=1.5), dict(num_samples=0)])
def test_bad_options(bad):
    with pytest.raises(ConfigError):
        SampleOptions(**bad)


def test_load_from_checkpoint_on_cpu(tmp_path, generator):
    m = generator.model
    save_checkpoint(tmp_path / "ck_1.json", {f"model.{k}": v for k, v in m.state_dict().items()},
                    {"kind": "language_model", "model": m.config.to_dict(), "vocab": generator.vocab.to_json_dict(), "iteration": 1})
    loaded = Generator.load(tmp_path, device="cpu")
    assert loaded.generate(length=20, seed=9) == generator.generate(length=20, seed=9)
