import json
from collections import Counter

import numpy as np
import pytest

from rnnkit.text.vocab import UNKNOWN_WORD, WORD_PATTERN, UnknownTokensError, Vocab


def test_char_round_trip_non_ascii():
    text = "naïve café — 日本語 ✓\n\tend"
    v = Vocab.build(text, "char")
    ids = v.encode(text)
    assert ids.min() == 1 and ids.max() == len(v)
    assert v.decode(ids) == text


def test_ids_follow_first_appearance_like_torch_rnn():
    v = Vocab.build("hello world", "char")
    assert v.tokens[:5] == ["h", "e", "l", "o", " "]
    assert v.to_json_dict()["token_to_idx"]["h"] == 1


def test_bytes_round_trip_and_torch_rnn_json_names():
    data = "é😀 ok".encode("utf-8")
    from rnnkit.text.vocab import token_of_byte

    v = Vocab([token_of_byte(b) for b in dict.fromkeys(data)], "bytes")
    assert "[195]" in v.tokens  # torch-rnn writes bytes > 127 as "[N]"
    assert v.decode(v.encode(data)) == data.decode("utf-8")
    again = Vocab.from_json_dict(json.loads(json.dumps(v.to_json_dict())))
    assert again.kind == "bytes" and again.tokens == v.tokens


def test_torch_rnn_json_without_rnnkit_keys_loads_as_char():
    data = {"token_to_idx": {"a": 1, "b": 2}, "idx_to_token": {"1": "a", "2": "b"}}
    v = Vocab.from_json_dict(data)
    assert v.kind == "char" and v.decode([2, 1]) == "ba"


def test_unknown_characters_are_named():
    v = Vocab.build("abc", "char")
    with pytest.raises(UnknownTokensError, match="'z'"):
        v.encode("abz")
    assert list(v.encode("abz", unknown="skip")) == [1, 2]


def test_word_mode_caps_vocabulary_and_rejoins_with_spacing():
    text = 'Hello, world! It is "fine" and don\'t worry.\nNew line (here).'
    counts = Counter(WORD_PATTERN.findall(text))
    v = Vocab.from_word_counts(counts, None)
    assert v.decode(v.encode(text)) == text
    capped = Vocab.from_word_counts(counts, 5)
    assert len(capped) == 5 and capped.tokens[0] == UNKNOWN_WORD
    ids = capped.encode("zebra world")
    assert ids[0] == 1  # unknown word


def test_encoding_is_vectorized_lookup():
    v = Vocab.build("ab", "char")
    ids = v.encode("ab" * 100_000)
    assert isinstance(ids, np.ndarray) and len(ids) == 200_000
