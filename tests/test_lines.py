"""List mode: complete, bounded, deduplicated, novel lines; where the training text comes from."""

from __future__ import annotations

import pytest
from helpers_serve import make_checkpoint, one_torch_thread

from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.sampling.generator import Generator, SampleOptions
from rnnkit.sampling.lines import (
    generate_lines,
    novel_against,
    training_lines,
    training_sources,
)
from rnnkit.text.vocab import Vocab

NAMES = "Anna\nBella\nCarla\nDora\nEmma\nFrida\nGreta\nHanna\n"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


class ScriptedGenerator:
    """Stands in for Generator: returns the scripted samples (start text included) in order."""

    def __init__(self, continuations: list[str], vocab_text: str = "abc\n"):
        self.continuations = list(continuations)
        self.vocab = Vocab.build(sorted(set(vocab_text)), "char")
        self.calls: list[SampleOptions] = []

    def generate(self, opts: SampleOptions) -> list[str]:
        self.calls.append(opts)
        batch, self.continuations = self.continuations[: opts.num_samples], self.continuations[opts.num_samples :]
        batch += ["zzz"] * (opts.num_samples - len(batch))  # never reaches a newline
        return [opts.start_text + c for c in batch]


def test_keeps_complete_novel_distinct_lines_within_bounds():
    gen = ScriptedGenerator([
        "Anna\n",        # in the training set
        "Zoe\n",         # kept
        "Zoe\n",         # duplicate
        "  Mia \n",      # kept, stripped
        "X\n",           # too short
        "Maximiliana\n", # too long
        "Lena",          # never finished its line
        "\n",            # blank
        "Ida\n",         # kept
    ])
    lines = generate_lines(gen, 3, novel_against={"Anna"}, min_chars=2, max_chars=8, warn=pytest.fail)
    assert lines == ["Zoe", "Mia", "Ida"]
    opts = gen.calls[0]
    assert opts.start_text == "\n" and opts.stop_at == "\n" and opts.length == 9


def test_stops_at_count_and_passes_options_through():
    gen = ScriptedGenerator([f"line{i}\n" for i in range(100)])
    base = SampleOptions(temperature=0.7, top_k=5, seed=10)
    assert generate_lines(gen, 5, options=base) == [f"line{i}" for i in range(5)]
    assert len(gen.calls) == 1
    assert (gen.calls[0].temperature, gen.calls[0].top_k, gen.calls[0].seed) == (0.7, 5, 10)


def test_seeds_differ_per_batch():
    gen = ScriptedGenerator(["a\n"] * 40)  # only one distinct line: keeps sampling
    generate_lines(gen, 2, options=SampleOptions(seed=3), max_attempts=96, warn=lambda m: None)
    assert [c.seed for c in gen.calls] == [3, 4, 5]


def test_start_text_prefixes_every_line():
    gen = ScriptedGenerator(["bba\n", "cc\n"])
    lines = generate_lines(gen, 2, options=SampleOptions(start_text="Ma"), max_chars=6)
    assert lines == ["Mabba", "Macc"]
    assert gen.calls[0].start_text == "\nMa" and gen.calls[0].length == 5


def test_shortfall_warns_with_counts():
    gen = ScriptedGenerator(["abc\n", "abc\n"])
    messages = []
    lines = generate_lines(gen, 3, novel_against=set(), max_attempts=64, warn=messages.append)
    assert lines == ["abc"]
    assert messages == [
        "rnnkit: found only 1 of 3 novel lines of 1..200 characters in 64 tries; loosen --min_chars/--max_chars, "
        "raise --temperature or drop --novel"
    ]


def test_nothing_found_is_an_error():
    with pytest.raises(RnnkitError, match="found only 0 of 2 lines"):
        generate_lines(ScriptedGenerator([]), 2, max_attempts=10)


@pytest.mark.parametrize("count, lo, hi", [(0, 1, 5), (3, 0, 5), (3, 6, 5)])
def test_bad_bounds(count, lo, hi):
    with pytest.raises(ConfigError):
        generate_lines(ScriptedGenerator([]), count, min_chars=lo, max_chars=hi)


def test_model_without_newlines():
    with pytest.raises(RnnkitError, match="never saw a newline"):
        generate_lines(ScriptedGenerator([], vocab_text="abc"), 1)


def test_real_model(tmp_path):
    gen = Generator.load(make_checkpoint(tmp_path / "run", NAMES), "cpu")
    train = training_lines([_write(tmp_path / "names.txt", NAMES)])
    lines = generate_lines(gen, 6, novel_against=train, min_chars=2, max_chars=30, options=SampleOptions(seed=1))
    assert len(lines) == 6 and len(set(lines)) == 6
    for line in lines:
        assert "\n" not in line and 2 <= len(line) <= 30 and line not in train and line == line.strip()


def test_training_lines(tmp_path):
    a = _write(tmp_path / "a.txt", "Anna\n\n  Bella  \r\nCarla")
    b = _write(tmp_path / "b.txt", "Dora\n")
    assert training_lines([a, b]) == {"Anna", "Bella", "Carla", "Dora"}
    with pytest.raises(RnnkitError, match="no such file"):
        training_lines([tmp_path / "gone.txt"])


def test_training_sources_from_the_checkpoint(tmp_path):
    src = _write(tmp_path / "names.txt", NAMES)
    assert training_sources({"data": {"sources": [str(src)]}}) == [src]
    for meta in ({}, {"data": {}}, {"data": {"sources": []}}, {"data": "x"}):
        with pytest.raises(RnnkitError, match="--train_text FILE"):
            training_sources(meta)
    with pytest.raises(RnnkitError, match="gone.*--train_text FILE"):
        training_sources({"data": {"sources": [str(tmp_path / "moved.txt")]}})


def test_novel_against(tmp_path):
    src = _write(tmp_path / "names.txt", "Anna\nBella\n")
    other = _write(tmp_path / "other.txt", "Zoe\n")
    gen = Generator.load(make_checkpoint(tmp_path / "run", NAMES, meta={"data": {"sources": [str(src)]}}), "cpu")
    assert novel_against(gen) == {"Anna", "Bella"}  # remembered by the run
    assert novel_against(gen, other) == {"Zoe"}  # --train_text wins


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path
