import json

import h5py
import numpy as np
import pytest

from rnnkit.errors import InputFileError
from rnnkit.text.corpus import FINGERPRINT_KEY, preprocess
from rnnkit.text.splits import MismatchedPairError, check_pair
from rnnkit.text.vocab import Vocab


def test_layout_matches_torch_rnn(tmp_path, small_corpus):
    stats = preprocess(input_txt=[str(small_corpus)], output_h5=str(tmp_path / "c.h5"),
                       output_json=str(tmp_path / "c.json"), quiet=True)
    text = small_corpus.read_text(encoding="utf-8")
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert set(f.keys()) == {"train", "val", "test"}
        train, val, test = (f[k][()] for k in ("train", "val", "test"))
    assert train.dtype == np.uint8 and train.ndim == 1
    assert len(val) == int(0.1 * len(text)) and len(test) == int(0.1 * len(text))
    assert len(train) + len(val) + len(test) == len(text) == stats.total_tokens
    data = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    idx_to_token = data["idx_to_token"]
    assert set(idx_to_token) == {str(i) for i in range(1, len(idx_to_token) + 1)}  # 1-based
    assert all(data["token_to_idx"][tok] == int(i) for i, tok in idx_to_token.items())
    decoded = "".join(idx_to_token[str(i)] for i in np.concatenate([train, val, test]))
    assert decoded == text  # train, then val, then test, in file order


def test_report_printed_like_torch_rnn(tmp_path, small_corpus, capsys):
    preprocess(input_txt=[str(small_corpus)], output_h5=str(tmp_path / "c.h5"), output_json=str(tmp_path / "c.json"))
    out = capsys.readouterr().out
    assert "Total vocabulary size:" in out and "Total tokens in file: 100000" in out
    assert "  Training size: 80000" in out and "  Val size: 10000" in out


def test_folder_and_several_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "b.txt").write_text("second\n")
    (folder / "a.txt").write_text("first\n")
    stats = preprocess(input_txt=[str(folder)], output_h5=str(tmp_path / "c.h5"),
                       output_json=str(tmp_path / "c.json"), quiet=True, val_frac=0, test_frac=0)
    v = Vocab.load(tmp_path / "c.json")
    with h5py.File(tmp_path / "c.h5") as f:
        assert v.decode(f["train"][()]) == "first\nsecond\n"
    assert len(stats.sources) == 2


def test_reuse_vocab_and_extend_it_with_new_characters(tmp_path):
    (tmp_path / "old.txt").write_text("abcabc")
    (tmp_path / "new.txt").write_text("cab")
    (tmp_path / "bad.txt").write_text("cabz")
    preprocess(input_txt=[str(tmp_path / "old.txt")], output_h5=str(tmp_path / "o.h5"),
               output_json=str(tmp_path / "o.json"), quiet=True, val_frac=0, test_frac=0)
    preprocess(input_txt=[str(tmp_path / "new.txt")], output_h5=str(tmp_path / "n.h5"),
               output_json=str(tmp_path / "n.json"), vocab=str(tmp_path / "o.json"), quiet=True, val_frac=0, test_frac=0)
    assert Vocab.load(tmp_path / "n.json").tokens == Vocab.load(tmp_path / "o.json").tokens
    with h5py.File(tmp_path / "n.h5") as f:
        assert list(f["train"][()]) == [3, 1, 2]
    # a new character extends the vocabulary: the old ids keep their meaning, 'z' gets the next one
    preprocess(input_txt=[str(tmp_path / "bad.txt")], output_h5=str(tmp_path / "b.h5"),
               output_json=str(tmp_path / "b.json"), vocab=str(tmp_path / "o.json"), quiet=True, val_frac=0, test_frac=0)
    assert Vocab.load(tmp_path / "b.json").tokens == [*Vocab.load(tmp_path / "o.json").tokens, "z"]
    with h5py.File(tmp_path / "b.h5") as f:
        assert list(f["train"][()]) == [3, 1, 2, 4]


def test_streams_across_chunk_boundaries(tmp_path, monkeypatch):
    import rnnkit.text.corpus as corpus

    monkeypatch.setattr(corpus, "CHUNK_BYTES", 7)  # cut multi-byte characters and words
    text = "héllo wörld ✓ the end\n" * 20
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    for tokens in ("char", "word"):
        preprocess(input_txt=[str(tmp_path / "t.txt")], output_h5=str(tmp_path / "t.h5"), tokens=tokens,
                   output_json=str(tmp_path / "t.json"), quiet=True, val_frac=0, test_frac=0)
        v = Vocab.load(tmp_path / "t.json")
        with h5py.File(tmp_path / "t.h5") as f:
            decoded = v.decode(f["train"][()])
        assert decoded == text


def test_bytes_encoding(tmp_path):
    raw = "caf\u00e9\n".encode("utf-8") + b"\xff\xfe"
    (tmp_path / "b.bin").write_bytes(raw)
    preprocess(input_txt=[str(tmp_path / "b.bin")], output_h5=str(tmp_path / "b.h5"),
               output_json=str(tmp_path / "b.json"), encoding="bytes", quiet=True, val_frac=0, test_frac=0)
    v = Vocab.load(tmp_path / "b.json")
    assert v.kind == "bytes" and len(v) == len(set(raw))
    with h5py.File(tmp_path / "b.h5") as f:
        assert bytes(int(v.tokens[i - 1][1:-1]) if len(v.tokens[i - 1]) > 1 else ord(v.tokens[i - 1]) for i in f["train"][()]) == raw


def test_invalid_utf8_suggests_bytes(tmp_path):
    (tmp_path / "x.txt").write_bytes(b"ok\xff\xfe")
    with pytest.raises(InputFileError, match="--encoding bytes"):
        preprocess(input_txt=[str(tmp_path / "x.txt")], output_h5=str(tmp_path / "x.h5"), output_json=str(tmp_path / "x.json"))


def _fingerprints(tmp_path, text: str, name: str, **kwargs) -> tuple[str, str]:
    (tmp_path / f"{name}.txt").write_text(text)
    preprocess(input_txt=[str(tmp_path / f"{name}.txt")], output_h5=str(tmp_path / f"{name}.h5"),
               output_json=str(tmp_path / f"{name}.json"), quiet=True, **kwargs)
    with h5py.File(tmp_path / f"{name}.h5") as f:
        in_h5 = f.attrs[FINGERPRINT_KEY]
    return in_h5, json.loads((tmp_path / f"{name}.json").read_text())[FINGERPRINT_KEY]


def test_fingerprint_ties_the_pair_together(tmp_path):
    in_h5, in_json = _fingerprints(tmp_path, "abc def\n" * 400, "base")
    assert in_h5 == in_json and len(in_h5) == 16 and int(in_h5, 16) >= 0
    assert _fingerprints(tmp_path, "abc def\n" * 400, "again") == (in_h5, in_json)  # same text: same pair
    other_sizes = _fingerprints(tmp_path, "abc def\n" * 400, "sizes", val_frac=0.2)
    other_vocab = _fingerprints(tmp_path, "abd cef\n" * 400, "order")  # same characters, other order
    assert other_sizes[0] == other_sizes[1] != in_h5
    assert other_vocab[0] == other_vocab[1] != in_h5
    for tokens in ("word", "char"):  # every writer stamps it, --vocab reuse included
        assert len(set(_fingerprints(tmp_path, "abc def\n" * 400, tokens, tokens=tokens))) == 1
    reused = _fingerprints(tmp_path, "abc def\n" * 300, "reused", vocab=str(tmp_path / "base.json"))
    assert reused[0] == reused[1] != in_h5
    assert check_pair(tmp_path / "base.h5", tmp_path / "again.json") is None


def test_pair_with_one_fingerprint_is_a_mismatch(tmp_path):
    _fingerprints(tmp_path, "abc def\n" * 400, "c")
    data = json.loads((tmp_path / "c.json").read_text())
    del data[FINGERPRINT_KEY]
    (tmp_path / "plain.json").write_text(json.dumps(data))
    with pytest.raises(MismatchedPairError, match=r"c\.h5 and .*plain\.json .* \(fingerprints [0-9a-f]{16} vs none\)"):
        check_pair(tmp_path / "c.h5", tmp_path / "plain.json")
    with h5py.File(tmp_path / "c.h5", "a") as f:
        del f.attrs[FINGERPRINT_KEY]
    assert "carry no fingerprint" in check_pair(tmp_path / "c.h5", tmp_path / "plain.json")
    with pytest.raises(MismatchedPairError, match="vs [0-9a-f]{16}"):
        check_pair(tmp_path / "c.h5", tmp_path / "c.json")
