"""rnnkit score: lanes with warm-ups equal one pass from the start, lines from a fresh state,
the next-token distribution, unknown characters, and the command line."""

import csv
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import train_briefly

from rnnkit.cli.parser import main
from rnnkit.core.device import cpu_bf16_rnn_failure, cpu_has_bf16_math
from rnnkit.errors import InputFileError
from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.sampling import score as scoring
from rnnkit.sampling.generator import Generator
from rnnkit.text.vocab import Vocab


@pytest.fixture(scope="module")
def run(tmp_path_factory, corpus):
    """A small model trained briefly, so that its hidden state carries context (a random one's barely does)."""
    folder = tmp_path_factory.mktemp("score")
    return folder, train_briefly(folder, corpus[:120_000]).checkpoint


@pytest.fixture(scope="module")
def gen(run):
    return Generator.load(run[1], "cpu")


def one_pass(gen: Generator, ids: list[int]) -> float:
    """Total nats of ids[1:], reading ids in one pass from a zero state (the definition)."""
    x = torch.tensor(ids, dtype=torch.long).unsqueeze(0)
    with torch.inference_mode():
        logits, _ = gen.model(x[:, :-1])
    return F.cross_entropy(logits[0].double(), x[0, 1:] - 1, reduction="sum").item()


def test_lanes_with_warm_ups_equal_one_pass_from_the_start(gen, corpus, monkeypatch):
    text = corpus[40_000:100_000]
    ids = [gen.vocab.id_of("\n")] + gen.vocab.encode(text).tolist()
    expected = one_pass(gen, ids)
    layout, _ = scoring.lane_layout(len(text), 1, 64)
    assert len(layout) > 30  # really cut into lanes
    result = gen.score(text)
    assert result.tokens == len(text)  # the first character is predicted too, from the start of a line
    assert result.total_nats == pytest.approx(expected, rel=1e-5)
    monkeypatch.setattr(scoring, "BLOCK", 7_000)  # several blocks, each lane 0 warmed up by the one before
    assert gen.score(text).total_nats == pytest.approx(expected, rel=1e-5)
    monkeypatch.setattr(scoring, "WARMUP", 1)  # lanes without context: what the warm-up is for
    assert gen.score(text).total_nats / expected - 1 > 1e-4


def test_the_figures_of_a_result_agree(gen):
    r = gen.score("def f(x):\n    return x\n")
    assert r.tokens == 23 and r.skipped == 0
    assert r.nats_per_token == pytest.approx(r.total_nats / 23)
    assert r.bits_per_token == pytest.approx(r.nats_per_token / math.log(2))
    assert r.perplexity == pytest.approx(math.exp(r.nats_per_token))


def test_without_a_newline_the_first_token_is_context_only():
    torch.manual_seed(0)
    vocab = Vocab.build("abc", "char")
    gen = Generator(LanguageModel(ModelConfig(len(vocab), rnn_size=8, wordvec_size=4)), vocab)
    r = gen.score("abcabca")
    assert r.tokens == 6
    assert r.total_nats == pytest.approx(one_pass(gen, vocab.encode("abcabca").tolist()), rel=1e-6)


def test_each_line_is_scored_from_the_start_of_a_line_with_its_newline(gen, monkeypatch):
    monkeypatch.setattr(scoring, "MAX_COLUMNS", {"cpu": 8, "default": 8})  # long lines in several passes
    lines = ["import os", "", "    def __init__(self, name, value=None):", "x = 1", "return"]
    results = gen.score_lines(lines)
    nl = gen.vocab.id_of("\n")
    for line, r in zip(lines, results):  # in the order given, batched by length inside
        ids = [nl] + gen.vocab.encode(line).tolist() + [nl]
        assert r.tokens == len(line) + 1
        assert r.total_nats == pytest.approx(one_pass(gen, ids), rel=1e-5)


def test_next_tokens_are_what_sampling_draws_from(gen):
    top = gen.next_tokens("    def __", 5)
    assert len(top) == 5 and all(a[1] >= b[1] for a, b in zip(top, top[1:]))
    ids = torch.tensor(gen.vocab.encode("    def __")).unsqueeze(0)
    with torch.inference_mode():
        probs = torch.softmax(gen.model(ids)[0][0, -1], -1)
    assert top[0] == (gen.vocab.tokens[int(probs.argmax())], pytest.approx(float(probs.max()), rel=1e-5))
    everything = gen.next_tokens("", len(gen.vocab))  # no text: the start of a line
    assert sum(p for _, p in everything) == pytest.approx(1.0, abs=1e-5)


def test_unknown_characters_are_named_or_skipped_and_counted(gen):
    with pytest.raises(InputFileError, match="'€'.*--skip_unknown"):
        gen.score("cost = 5€\n")
    r = gen.score("cost = 5€€\n", skip_unknown=True)
    assert (r.skipped, r.unknown, r.tokens) == (2, ["'€'"], 9)
    assert r.total_nats == pytest.approx(gen.score("cost = 5\n").total_nats)


@pytest.mark.skipif(not cpu_has_bf16_math() or cpu_bf16_rnn_failure("lstm") is not None,
                    reason="this CPU has no bfloat16 LSTM (GPU-free skip: needs AVX512-BF16 or AMX)")
def test_bf16_is_close_to_float32(gen, corpus):
    text = corpus[90_000:120_000]
    assert gen.score(text, amp="bf16").nats_per_token == pytest.approx(gen.score(text).nats_per_token, rel=2e-3)


# ---- the command line ----------------------------------------------------------------------------------
def test_cli_scores_files_and_prints_a_total(run, corpus, tmp_path, capsys):
    (tmp_path / "a.txt").write_text(corpus[50_000:60_000])
    (tmp_path / "b.txt").write_text(corpus[60_000:65_000])
    assert main(["score", "--checkpoint", str(run[1]), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["file", "tokens", "nats/token", "bits/token", "perplexity"]
    assert [r.split()[0] for r in rows[1:]] == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "total"]
    assert rows[3].split()[1] == "15,000"


def test_cli_ranks_lines_and_writes_csv_without_overwriting(run, tmp_path, capsys):
    (tmp_path / "l.txt").write_text("import os\n\nzqxj vvkw\n        return self\n")
    out = tmp_path / "ranked.csv"
    args = ["score", "--checkpoint", str(run[1]), str(tmp_path / "l.txt"), "--lines", "--output", str(out)]
    assert main(args) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["line", "nats_per_token", "total_nats", "tokens"]
    assert [r[0] for r in rows[1:]][-1] == "zqxj vvkw"  # least likely last; the blank line left out
    per_token = [float(r[1]) for r in rows[1:]]
    assert per_token == sorted(per_token) and len(rows) == 4
    assert "1 blank line(s) left out" in capsys.readouterr().err
    before = out.read_bytes()
    assert main(args) == 2  # an existing file is never overwritten without --force
    assert out.read_bytes() == before and "already exists" in capsys.readouterr().err


def test_cli_unknown_characters_are_one_line_exit_2(run, tmp_path, capsys):
    (tmp_path / "u.txt").write_text("price: 5€ or 4£\n")
    assert main(["score", "--checkpoint", str(run[1]), str(tmp_path / "u.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'£', '€'" in err[0] and "--skip_unknown" in err[0]
    assert main(["score", "--checkpoint", str(run[1]), str(tmp_path / "u.txt"), "--skip_unknown"]) == 0
    captured = capsys.readouterr()
    assert "left out 2 unknown character(s) ('£', '€')" in captured.err
    assert captured.out.splitlines()[1].split()[1] == "14"


def test_cli_top_k_prints_the_most_likely_next_tokens(run, gen, capsys):
    assert main(["score", "--checkpoint", str(run[1]), "--top_k", "3", "--start_text", "impor"]) == 0
    rows = [line.split(None, 1) for line in capsys.readouterr().out.splitlines()]
    assert rows == [[f"{p:.6f}", repr(token)] for token, p in gen.next_tokens("impor", 3)]
    assert main(["score", "--checkpoint", str(run[1])]) == 2  # neither files nor --top_k
