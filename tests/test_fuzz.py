"""Property tests: arbitrary text, bytes and option values never crash with anything but a documented error."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import h5py
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnnkit.errors import RnnkitError
from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.sampling.generator import Generator, SampleOptions
from rnnkit.text.corpus import preprocess
from rnnkit.text.vocab import WORD_PATTERN, Vocab, byte_of_token, token_of_byte

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- vocab round trips ---------------------------------------------------------------------
def through_json(vocab: Vocab) -> Vocab:
    """As a run folder stores it: torch-rnn's JSON layout, written and read back."""
    return Vocab.from_json_dict(json.loads(json.dumps(vocab.to_json_dict(), ensure_ascii=False)))


@FUZZ
@given(st.text(max_size=300))
def test_char_vocab_round_trips_any_unicode(text):
    vocab = through_json(Vocab.build(text, "char"))
    ids = vocab.encode(text)
    assert len(ids) == len(text) and (len(ids) == 0 or ids.min() >= 1)
    assert vocab.decode(ids) == text


@FUZZ
@given(st.binary(max_size=300))
def test_bytes_vocab_round_trips_any_bytes(data):
    vocab = through_json(Vocab([token_of_byte(b) for b in dict.fromkeys(data)], "bytes"))
    ids = vocab.encode(data)
    assert bytes(byte_of_token(vocab.tokens[i - 1]) for i in ids) == data
    assert vocab.decode(ids) == data.decode("utf-8", errors="replace")


@FUZZ
@given(st.text(max_size=300))
def test_word_vocab_decoded_text_encodes_to_the_same_ids(text):
    vocab = through_json(Vocab.from_word_counts(Counter(WORD_PATTERN.findall(text)), None))
    ids = vocab.encode(text)
    assert vocab.encode(vocab.decode(ids)).tolist() == ids.tolist()


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_encoding_unseen_characters_raises_the_documented_error(text):
    vocab = Vocab.build("abc", "char")
    try:
        assert vocab.decode(vocab.encode(text)) == text
    except RnnkitError as e:
        assert "vocabulary does not have" in str(e)


# ---- preprocess ------------------------------------------------------------------------------
@FUZZ
@given(
    data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8"))),
    kind=st.sampled_from([("utf-8", "char"), ("bytes", "char"), ("utf-8", "word")]),
    val_frac=st.one_of(st.just(0.1), st.floats(0, 0.5), st.floats(-1, 2)),
    test_frac=st.one_of(st.just(0.1), st.floats(0, 0.5), st.floats(-1, 2)),
)
def test_preprocess_any_small_input(data, kind, val_frac, test_frac):
    encoding, tokens = kind
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "in.txt").write_bytes(data)
        try:
            stats = preprocess(input_txt=[str(d / "in.txt")], output_h5=str(d / "o.h5"), output_json=str(d / "o.json"),
                               encoding=encoding, tokens=tokens, val_frac=val_frac, test_frac=test_frac, quiet=True)
        except RnnkitError as e:
            assert str(e) and "\n" not in str(e)
            event(f"refused: {type(e).__name__}")
            return
        event("preprocessed")
        vocab = Vocab.load(d / "o.json")
        with h5py.File(d / "o.h5") as f:
            sizes = {s: len(f[s]) for s in ("train", "val", "test")}
            ids = [int(i) for s in ("train", "val", "test") for i in f[s][()]]
        assert sizes == stats.split_sizes and sum(sizes.values()) == stats.total_tokens
        assert all(1 <= i <= len(vocab) for i in ids)
        if tokens == "char":  # the splits, joined, are the input again
            text = vocab.decode(ids)
            assert text == (data.decode("utf-8", errors="replace") if encoding == "bytes" else data.decode("utf-8"))


# ---- sampling options ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    vocab = Vocab.build("abc de\n\u00e9", "char")
    model = LanguageModel(ModelConfig(len(vocab), "lstm", wordvec_size=4, rnn_size=8, num_layers=1))
    return Generator(model, vocab)


finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-30, 1e3), st.floats(0.05, 1))
options = st.fixed_dictionaries({
    "length": st.integers(-1, 30),
    "start_text": st.text(max_size=8) | st.text("abc de\n", max_size=8),
    "sample": st.booleans(),
    "temperature": finite_or_not,
    "top_k": st.none() | st.integers(-3, 12),
    "top_p": st.none() | finite_or_not,
    "num_samples": st.integers(0, 3),
    "seed": st.none() | st.integers(-2**70, 2**70),
    "stop_at": st.none() | st.text(max_size=3),
    "skip_unknown": st.booleans(),
})


@FUZZ
@given(opts=options, stream=st.booleans())
def test_sampling_any_options(generator, opts, stream):
    try:
        o = SampleOptions(**opts)
        texts = ["".join(generator.stream(o))] if stream and o.num_samples == 1 else generator.generate(o)
    except RnnkitError as e:
        assert str(e) and "\n" not in str(e)
        event(f"refused: {type(e).__name__}")
        return
    event("sampled")
    assert len(texts) == o.num_samples
    for t in texts:
        assert t.startswith(o.start_text)
        assert len(t) <= len(o.start_text) + o.length
        if o.stop_at is None:
            assert len(t) == len(o.start_text) + o.length
