"""The n-gram mixture (--ngram): the weight's fit, the mixed distribution, and that training,
sampling, list mode, scoring and the server all read the same mixture from the checkpoint."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_cli, train_briefly

from rnnkit.model.mixture import Histories, Mixture, fit_weight, mixed_nats
from rnnkit.model.ngram import NGram
from rnnkit.sampling import score as scoring
from rnnkit.sampling.generator import Generator, SampleOptions
from rnnkit.training import TrainConfig, train


# ---- the weight ------------------------------------------------------------------------------
def test_fit_weight_finds_the_minimum_of_the_mixed_loss():
    rng = np.random.default_rng(0)
    net_nats = rng.gamma(2.0, 1.0, 5000)
    ngram_logp = -rng.gamma(2.0, 1.0, 5000)
    weight, loss = fit_weight(net_nats, ngram_logp)
    grid = np.linspace(0.001, 0.999, 999)
    losses = [mixed_nats(net_nats, ngram_logp, w).mean() for w in grid]
    assert abs(weight - grid[int(np.argmin(losses))]) < 2e-3
    assert loss <= min(losses) + 1e-9
    assert loss < min(net_nats.mean(), -ngram_logp.mean())  # two different errors: the mixture beats both


def test_fit_weight_leans_on_the_better_model():
    rng = np.random.default_rng(1)
    good = rng.gamma(1.0, 0.5, 4000)
    weight, _ = fit_weight(good, -(good + 3.0))  # the n-gram is 3 nats worse on every token
    assert weight > 0.95


# ---- the mixed distribution ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ngram(corpus):
    alphabet = sorted(set(corpus[:20000]))
    ids = np.array([alphabet.index(c) + 1 for c in corpus[:20000]])
    return NGram.fit(ids, len(alphabet), 4), ids


def test_mix_logits_is_the_weighted_sum_of_the_two_distributions(ngram):
    model, ids = ngram
    logits = np.random.default_rng(2).normal(size=(3, model.vocab_size)).astype(np.float32)
    history = Histories(ids[:50], 3, 3)
    mixed = np.exp(Mixture(model, 0.3).mix_logits(logits, history.ids))
    net = torch.softmax(torch.from_numpy(logits).double(), -1).numpy()
    expected = 0.3 * net + 0.7 * model.next_distributions(history.ids)
    np.testing.assert_allclose(mixed, expected, rtol=1e-6)
    np.testing.assert_allclose(mixed.sum(-1), 1.0, rtol=1e-6)


def test_histories_start_from_the_prime_and_follow_the_samples():
    h = Histories(np.array([7, 8]), 2, 4)
    assert h.ids.tolist() == [[0, 0, 7, 8], [0, 0, 7, 8]]
    h.push(np.array([1, 2]))
    assert h.ids.tolist() == [[0, 7, 8, 1], [0, 7, 8, 2]]


# ---- a trained run with its mixture ----------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory, corpus):
    """A briefly trained model on code, where the n-gram knows much the network has not learned."""
    folder = tmp_path_factory.mktemp("mixture")
    return folder, train_briefly(folder, corpus[:150_000], max_iters=60, rnn_size=32, ngram=5)


def test_training_keeps_a_mixture_that_beats_the_network_alone(run):
    folder, result = run
    meta = json.loads(result.checkpoint.read_text())
    record = meta["ngram"]
    assert 2 <= record["order"] <= 5 and 0 < record["weight"] < 1
    assert (folder / "run" / record["file"]).is_file()
    assert record["val_loss_mixed"] < record["val_loss_network"] - 0.002
    assert result.mixed_val_loss == pytest.approx(record["val_loss_mixed"])
    events = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e for e in events if e.get("event") == "ngram"][0]["val_loss_mixed"] == pytest.approx(record["val_loss_mixed"])
    assert json.loads((folder / "run" / "ck_best.json").read_text())["ngram"]["sha256"] == record["sha256"]


def test_the_reported_mixed_loss_is_what_scoring_the_validation_split_gives(run):
    """The fit's figure and the scorer's agree: both read the same mixture the same way."""
    import h5py

    folder, result = run
    gen = Generator.load(result.checkpoint, "cpu")
    with h5py.File(folder / "run" / "corpus.h5") as f:
        val = f["val"][:].astype(np.int64)
    scored = scoring.score_ids(scoring.Reader(gen.model, None, gen.mixture), val, None)
    assert scored.nats_per_token == pytest.approx(gen.meta["ngram"]["val_loss_mixed"], rel=1e-6)
    alone = scoring.score_ids(scoring.Reader(gen.model), val, None)
    assert alone.nats_per_token == pytest.approx(gen.meta["ngram"]["val_loss_network"], rel=1e-6)


def test_the_mixture_is_fitted_on_what_an_evaluation_reads(tmp_path, corpus):
    """--eval_tokens N: the weight is fitted (and the mixed loss reported) on the first N validation
    tokens, not the whole split: fitting costs what one evaluation costs."""
    import h5py

    result = train_briefly(tmp_path, corpus[:80_000], max_iters=20, rnn_size=16, ngram=4, eval_tokens=1500)
    record = json.loads(result.checkpoint.read_text())["ngram"]
    assert record["val_tokens"] == 1500
    gen = Generator.load(result.checkpoint, "cpu")
    with h5py.File(tmp_path / "run" / "corpus.h5") as f:
        val = f["val"][:].astype(np.int64)
    assert len(val) > 5000
    scored = scoring.score_ids(scoring.Reader(gen.model, None, gen.mixture), val[:1501], None)
    assert scored.nats_per_token == pytest.approx(record["val_loss_mixed"], rel=1e-6)


def test_score_next_tokens_and_sampling_use_the_mixture(run):
    _, result = run
    mixed, alone = Generator.load(result.checkpoint, "cpu"), Generator.load(result.checkpoint, "cpu", ngram=False)
    assert mixed.mixture is not None and alone.mixture is None
    text = "def __init__(self, name):\n    return self.name\n"
    assert mixed.score(text).nats_per_token < alone.score(text).nats_per_token
    ids = mixed.vocab.encode("    return")
    with torch.inference_mode():
        logits, _ = mixed.model(torch.from_numpy(ids.astype(np.int64)).unsqueeze(0))
    expected = np.exp(mixed.mixture.mix_logits(logits[0, -1:].numpy(), ids[None]))[0]
    top = mixed.next_tokens("    return", 3)
    assert [p for _, p in top] == pytest.approx(sorted(expected, reverse=True)[:3], rel=1e-5)
    # the first sampled token comes from that same distribution: argmax agrees
    first = mixed.generate(length=1, start_text="    return", sample=False)[0][-1]
    assert first == top[0][0]


def test_numpy_and_torch_sampling_paths_agree_with_the_mixture(run):
    _, result = run
    gen = Generator.load(result.checkpoint, "cpu")
    opts = SampleOptions(length=120, num_samples=3, seed=5, start_text="import ")
    fast = gen.generate(opts)
    slow_gen = Generator.load(result.checkpoint, "cpu")
    slow_gen.fast_path = False
    assert slow_gen.generate(opts) == fast
    assert gen.generate(opts) != Generator.load(result.checkpoint, "cpu", ngram=False).generate(opts)


def test_lines_are_scored_with_the_mixture(run):
    _, result = run
    mixed, alone = Generator.load(result.checkpoint, "cpu"), Generator.load(result.checkpoint, "cpu", ngram=False)
    lines = ["import os", "    def __init__(self):"]
    got = mixed.score_lines(lines)
    for line, r in zip(lines, got):
        ids = np.concatenate([[mixed.vocab.id_of("\n")], mixed.vocab.encode(line), [mixed.vocab.id_of("\n")]])
        net = scoring.item_nats(scoring.Reader(alone.model), [ids])[0]
        expected = mixed_nats(net, mixed.mixture.ngram.log_prob(ids)[1:], mixed.mixture.weight).sum()
        assert r.total_nats == pytest.approx(expected, rel=1e-6)  # padded batches: float32 rounding


def test_the_server_samples_with_the_mixture(run):
    import warnings

    from rnnkit.serve.app import create_app

    with warnings.catch_warnings():  # starlette 1.x nudges toward httpx2; httpx works the same here
        warnings.simplefilter("ignore", UserWarning)
        from starlette.testclient import TestClient
    _, result = run
    gen = Generator.load(result.checkpoint, "cpu")
    with TestClient(create_app(gen)) as client:
        reply = client.post("/generate", json={"length": 80, "seed": 3, "start_text": "def "})
    assert reply.status_code == 200
    assert reply.json()["samples"] == gen.generate(length=80, seed=3, start_text="def ")


# ---- the command line ---------------------------------------------------------------------------------
def test_cli_score_with_and_without_the_ngram(run):
    folder, result = run
    sample = folder / "sample.txt"
    sample.write_text("class Name:\n    pass\n", encoding="utf-8")
    with_ngram = run_cli("score", "--checkpoint", str(result.checkpoint), str(sample))
    without = run_cli("score", "--checkpoint", str(result.checkpoint), str(sample), "--no_ngram")
    assert with_ngram.returncode == 0 and without.returncode == 0
    nats = [float(p.stdout.splitlines()[1].split()[2]) for p in (with_ngram, without)]
    assert nats[0] < nats[1]


def test_a_damaged_ngram_file_is_one_line_and_no_ngram_still_samples(run, tmp_path):
    import shutil

    folder, result = run
    copy = tmp_path / "run"
    shutil.copytree(folder / "run", copy)
    table = copy / json.loads(result.checkpoint.read_text())["ngram"]["file"]
    table.write_bytes(table.read_bytes()[:-10])
    ckpt = copy / result.checkpoint.name
    broken = run_cli("sample", "--checkpoint", str(ckpt), "--length", "20")
    assert broken.returncode != 0
    assert broken.stderr.count("\n") == 1 and "--no_ngram" in broken.stderr and table.name in broken.stderr
    alone = run_cli("sample", "--checkpoint", str(ckpt), "--length", "20", "--no_ngram", "--seed", "1")
    assert alone.returncode == 0 and len(alone.stdout.strip()) > 0


def test_ngram_flag_values(tmp_path):
    bad = run_cli("train", "--input_h5", "x.h5", "--input_json", "x.json", "--ngram", "1", cwd=tmp_path)
    assert bad.returncode == 2 and "--ngram must be 0 (off) or an order from 2 to" in bad.stderr


def test_no_budget_means_no_ngram_as_torch_rnn(tmp_path, corpus):
    (tmp_path / "t.txt").write_text(corpus[:30_000], encoding="utf-8")
    train(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "run/ck"), max_iters=5,
                      rnn_size=16, wordvec_size=8, batch_size=8, seq_length=16, progress="none", quiet=True))
    assert not list((tmp_path / "run").glob("*ngram*"))
    assert "ngram" not in json.loads((tmp_path / "run" / "ck_5.json").read_text())


def test_math_sanity_of_mixed_nats():
    assert mixed_nats(np.array([1.0]), np.array([-1.0]), 0.5)[0] == pytest.approx(1.0)
    assert mixed_nats(np.array([0.0]), np.array([-math.inf]), 0.25)[0] == pytest.approx(-math.log(0.25))


def test_the_tables_file_reads_back_with_safetensors_alone(run):
    """The file is plain safetensors: NGram.from_state_dict(load_file(...)) is the whole reader."""
    from safetensors.numpy import load_file

    folder, result = run
    record = json.loads(result.checkpoint.read_text())["ngram"]
    ngram = NGram.from_state_dict(load_file(folder / "run" / record["file"]))
    loaded = Generator.load(result.checkpoint, "cpu").mixture.ngram
    history = np.array([[0, 0, 5, 6]])
    np.testing.assert_array_equal(ngram.next_distributions(history), loaded.next_distributions(history))


def test_a_bad_ngram_record_is_one_line(run, tmp_path):
    import shutil

    from rnnkit.errors import CheckpointError

    folder, result = run
    copy = tmp_path / "run"
    shutil.copytree(folder / "run", copy)
    ckpt = copy / result.checkpoint.name
    meta = json.loads(ckpt.read_text())
    del meta["ngram"]["weight"]
    ckpt.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="--no_ngram"):
        Generator.load(ckpt, "cpu")
