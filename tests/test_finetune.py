"""Fine-tuning on text with characters the checkpoint lacks: the vocabulary is extended (old ids
kept), the per-token rows of the model and of Adam's moments grow, and the run records its parent."""

import json
import math
from pathlib import Path

import pytest
import torch

from rnnkit.cli.parser import main
from rnnkit.core.checkpoint import Checkpoint, load_checkpoint
from rnnkit.errors import ConfigError, InputFileError
from rnnkit.model.language_model import (
    LanguageModel,
    ModelConfig,
    model_from_checkpoint,
)
from rnnkit.sampling.generator import Generator
from rnnkit.text.corpus import preprocess
from rnnkit.text.vocab import Vocab
from rnnkit.training import TrainConfig, resume_config, train
from rnnkit.training.optimizer import build_optimizer
from rnnkit.training.state import (
    NEW_TOKEN_PRIOR,
    TrainState,
    grow_vocabulary,
    vocabulary_growth,
)

GROWN = ("embed.weight", "head.weight", "head.bias")


def trained_checkpoint(vocab: Vocab) -> Checkpoint:
    """A model and its fused AdamW after a few updates (non-zero moments), as a checkpoint in memory."""
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(len(vocab), rnn_size=16, wordvec_size=8))
    optimizer = build_optimizer(model, 1e-2, 0.1, fused=True)
    for _ in range(3):
        x = torch.randint(1, len(vocab) + 1, (4, 12))
        loss = torch.nn.functional.cross_entropy(model(x)[0].reshape(-1, len(vocab)), x.reshape(-1) - 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tensors, meta = TrainState(model, optimizer).state_dict(0.0)
    meta.update(model=model.config.to_dict(), vocab=vocab.to_json_dict())
    return Checkpoint(meta, tensors, Path("parent.json"))


def test_growth_keeps_old_rows_and_starts_new_tokens_unlikely():
    old = Vocab.build("abcdefgh \n", "char")
    ckpt = trained_checkpoint(old)
    grown = grow_vocabulary(ckpt, len(old) + 3, seed=0)
    V, before, after = len(old), ckpt.prefixed("model."), grown.prefixed("model.")
    assert grown.meta["model"]["vocab_size"] == V + 3 and ckpt.meta["model"]["vocab_size"] == V  # a copy
    assert torch.equal(after["embed.weight"][:V + 1], before["embed.weight"])
    assert torch.equal(after["head.weight"][:V], before["head.weight"])
    assert torch.equal(after["head.bias"][:V], before["head.bias"])
    new_embed = after["embed.weight"][V + 1:]
    mean, spread = before["embed.weight"][1:].mean(0), before["embed.weight"][1:].std(0)
    assert ((new_embed - mean).abs() <= 0.5 * spread).all() and not torch.equal(new_embed[0], new_embed[1])
    assert torch.equal(after["head.weight"][V:], torch.zeros(3, 16))
    expected_bias = torch.logsumexp(before["head.bias"], 0) + math.log(NEW_TOKEN_PRIOR)
    assert torch.allclose(after["head.bias"][V:], expected_bias.expand(3))
    for name in before:  # nothing else changed
        if name not in GROWN:
            assert torch.equal(after[name], before[name])
    # the old tokens keep their logits; the new ones take ~NEW_TOKEN_PRIOR each of the probability
    model, grown_model = model_from_checkpoint(ckpt), model_from_checkpoint(grown)
    x = torch.randint(1, V + 1, (2, 20))
    with torch.no_grad():
        old_logits, new_logits = model(x)[0], grown_model(x)[0]
    assert torch.allclose(new_logits[..., :V], old_logits, atol=1e-6)
    assert (torch.softmax(new_logits, -1)[..., V:].sum(-1) < 10 * 3 * NEW_TOKEN_PRIOR).all()


def test_growth_keeps_adams_moments_for_old_rows_and_zeros_for_new():
    old = Vocab.build("abcdefgh \n", "char")
    ckpt = trained_checkpoint(old)
    grown = grow_vocabulary(ckpt, len(old) + 2, seed=0)
    changed = 0
    for name, before in ckpt.prefixed("optim.").items():
        after = grown.tensors[f"optim.{name}"]
        if after.shape == before.shape:
            assert torch.equal(after, before)
            continue
        changed += 1
        assert torch.equal(after[:len(before)], before) and not after[len(before):].any()
        assert before.abs().sum() > 0  # real moments, not zeros, were kept
    assert changed == 6  # exp_avg and exp_avg_sq of the embedding, the output weights and biases
    # the grown state loads into a model and optimizer of the new size, and trains on
    model = model_from_checkpoint(grown)
    state = TrainState(model, build_optimizer(model, 1e-2, 0.1, fused=True))
    state.load_weights_and_optimizer(grown.tensors, grown.meta, "grown")
    moments = state.optimizer.state[model.head.weight]
    assert torch.equal(moments["exp_avg"][:len(old)], ckpt.tensors[_optim_key(ckpt, "head.weight", "exp_avg")])
    x = torch.randint(1, len(old) + 3, (2, 8))
    torch.nn.functional.cross_entropy(model(x)[0].reshape(-1, len(old) + 2), x.reshape(-1) - 1).backward()
    state.optimizer.step()


def _optim_key(ckpt: Checkpoint, name: str, moment: str) -> str:
    shape = ckpt.tensors[f"model.{name}"].shape
    keys = [k for k in ckpt.tensors if k.startswith("optim.") and k.endswith(moment) and ckpt.tensors[k].shape == shape]
    assert len(keys) == 1
    return keys[0]


def test_only_a_vocabulary_that_keeps_the_old_ids_is_grown_into():
    old = Vocab(["a", "b", "\n"])
    assert vocabulary_growth(old, Vocab(["a", "b", "\n", "z"]), "ck.json", "new.json") == ["z"]
    assert vocabulary_growth(old, Vocab(["a", "b", "\n"]), "ck.json", "new.json") == []
    with pytest.raises(InputFileError, match=r"id 2 is 'b' in the checkpoint but 'z' here.*--vocab ck.json"):
        vocabulary_growth(old, Vocab(["a", "z", "b", "\n"]), "ck.json", "new.json")
    with pytest.raises(InputFileError, match="id 3 is '\\\\n' in the checkpoint but missing here"):
        vocabulary_growth(old, Vocab(["a", "b"]), "ck.json", "new.json")


def test_preprocess_with_vocab_appends_new_characters_and_says_so(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("abcabc\n")
    (tmp_path / "new.txt").write_text("cabé\nz")
    preprocess(input_txt=[str(tmp_path / "old.txt")], output_h5=str(tmp_path / "o.h5"),
               output_json=str(tmp_path / "o.json"), quiet=True)
    preprocess(input_txt=[str(tmp_path / "new.txt")], output_h5=str(tmp_path / "n.h5"),
               output_json=str(tmp_path / "n.json"), vocab=str(tmp_path / "o.json"))
    assert Vocab.load(tmp_path / "n.json").tokens == ["a", "b", "c", "\n", "é", "z"]
    assert "2 new characters appended as ids 5-6 ('é', 'z'); old ids keep their meaning" in capsys.readouterr().out
    words = tmp_path / "w.json"
    preprocess(input_txt=[str(tmp_path / "old.txt")], output_h5=str(tmp_path / "w.h5"), output_json=str(words),
               tokens="word", quiet=True)
    preprocess(input_txt=[str(tmp_path / "new.txt")], output_h5=str(tmp_path / "w2.h5"),
               output_json=str(tmp_path / "w2.json"), vocab=str(words), tokens="word", quiet=True)
    assert Vocab.load(tmp_path / "w2.json").tokens == Vocab.load(words).tokens  # word mode: unknown words are <unk>


def test_finetune_is_init_from_with_reset_iterations():
    cfg = TrainConfig(input_txt=["x.txt"], finetune="run/ck_10.json")
    assert (cfg.init_from, cfg.reset_iterations, cfg.finetune) == ("run/ck_10.json", True, None)
    with pytest.raises(ConfigError, match="--finetune CKPT means"):
        TrainConfig(input_txt=["x.txt"], finetune="a.json", init_from="b.json")
    with pytest.raises(ConfigError, match="--finetune CKPT means"):
        TrainConfig(input_txt=["x.txt"], finetune="a.json", reset_iterations=False)


# ---- end to end --------------------------------------------------------------------------------------
SMALL = dict(rnn_size=64, wordvec_size=32, batch_size=16, seq_length=32, learning_rate=5e-3, checkpoint_every=0,
             progress="none", quiet=True)
DIGITS = "0123456789"


@pytest.fixture(scope="module")
def parent(tmp_path_factory, corpus):
    """A model of Python source with every digit taken out: the second text's digits are new to it."""
    folder = tmp_path_factory.mktemp("finetune")
    old_text = "".join(c for c in corpus[:150_000] if c not in DIGITS)
    (folder / "old.txt").write_text(old_text, encoding="utf-8")
    (folder / "new.txt").write_text(corpus[150_000:250_000], encoding="utf-8")
    result = train(TrainConfig(input_txt=[str(folder / "old.txt")], checkpoint_name=str(folder / "base/ck"),
                               max_iters=150, **SMALL))
    return folder, result.checkpoint


def test_finetuning_beats_training_from_scratch_and_keeps_the_old_characters(parent):
    """Same number of updates for both (the machine's other load makes wall clock too noisy to compare)."""
    folder, base = parent
    old_vocab = Vocab.load(base)
    new_text = (folder / "new.txt").read_text()
    assert set(DIGITS) <= set(new_text) and not set(DIGITS) & set(old_vocab.tokens)
    tuned = train(TrainConfig(input_txt=[str(folder / "new.txt")], finetune=str(base),
                              checkpoint_name=str(folder / "tuned/ck"), max_iters=60, **SMALL))
    scratch = train(TrainConfig(input_txt=[str(folder / "new.txt")], checkpoint_name=str(folder / "scratch/ck"),
                                max_iters=60, **SMALL))
    print("validation loss after 60 updates: fine-tuned", tuned.best_val_loss, "from scratch", scratch.best_val_loss)
    assert tuned.best_val_loss < scratch.best_val_loss - 0.2
    gen = Generator.load(tuned.checkpoint, "cpu")
    assert gen.vocab.tokens[:len(old_vocab)] == old_vocab.tokens  # every old id still means its character
    assert set(gen.vocab.tokens[len(old_vocab):]) >= set(DIGITS)
    sample = gen.generate(length=600, seed=0, temperature=0.8)[0]
    old_share = sum(c in old_vocab.tokens for c in sample) / len(sample)
    assert old_share > 0.9 and len(set(sample) & set(old_vocab.tokens)) >= 20
    parent_path = str(base.resolve())
    assert load_checkpoint(tuned.checkpoint).meta["parent"] == parent_path
    assert json.loads((folder / "tuned/config.json").read_text())["parent"] == parent_path


def test_a_resumed_finetuning_run_keeps_its_parent(parent):
    folder, base = parent
    # the run folder means its best checkpoint, recorded as the numbered checkpoint it stands for
    first = train(TrainConfig(input_txt=[str(folder / "new.txt")], finetune=str(base.parent),
                              checkpoint_name=str(folder / "resumed/ck"), max_iters=4, **SMALL))
    result = train(resume_config(str(folder / "resumed"), {"max_iters": 6}))
    assert result.iteration == 6
    assert load_checkpoint(result.checkpoint).meta["parent"] == load_checkpoint(first.checkpoint).meta["parent"] \
        == str(base.resolve())


def test_a_vocabulary_whose_ids_changed_meaning_is_one_line_exit_2(parent, tmp_path, capsys):
    folder, base = parent
    preprocess(input_txt=[str(folder / "new.txt")], output_h5=str(tmp_path / "n.h5"),
               output_json=str(tmp_path / "n.json"), quiet=True)  # its own vocabulary, in its own order
    code = main(["train", "--input_h5", str(tmp_path / "n.h5"), "--input_json", str(tmp_path / "n.json"),
                 "--init_from", str(base), "--checkpoint_name", str(tmp_path / "run/ck"), "--max_iters", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "ids changed meaning" in err[0] and f"--vocab {base}" in err[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written
