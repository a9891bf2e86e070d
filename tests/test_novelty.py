"""novel_substring_fractions against torch-rnn's brute-force loop, collisions forced, and speed."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.cli.parser import main
from rnnkit.sampling.novelty import format_table, novel_substring_fractions


def brute_force(sample: str, train: str, lengths) -> dict[int, float]:
    """torch-rnn's scripts/novel_substrings.py, verbatim in spirit."""
    out = {}
    for n in lengths:
        subs = [sample[i : i + n] for i in range(len(sample) - n + 1)]
        if subs:
            out[n] = sum(s not in train for s in subs) / len(subs)
    return out


small_text = st.text(alphabet="abc\n", max_size=60)


@settings(max_examples=150, deadline=None)
@given(sample=small_text, train=small_text)
def test_matches_brute_force(sample, train):
    lengths = range(1, 12)
    assert novel_substring_fractions(sample, train, lengths) == brute_force(sample, train, lengths)


@settings(max_examples=100, deadline=None)
@given(sample=small_text, train=small_text, seed=st.integers(0, 1000))
def test_hash_collisions_never_change_the_answer(sample, train, seed):
    # primes this small make most distinct n-grams share a key; only the text check is left
    lengths = range(1, 12)
    got = novel_substring_fractions(sample, train, lengths, primes=(3, 5), seed=seed)
    assert got == brute_force(sample, train, lengths)


def test_small_example():
    got = novel_substring_fractions("abc", "abxbc", range(1, 5))
    assert got == {1: 0.0, 2: 0.0, 3: 1.0}  # "abc" is new; no length-4 substrings to count


def test_unicode_and_empty_training_text():
    assert novel_substring_fractions("é€😀é", "xx€😀", [1, 2]) == {1: 0.5, 2: 2 / 3}
    assert novel_substring_fractions("abc", "", [1, 3]) == {1: 1.0, 3: 1.0}
    assert novel_substring_fractions("", "abc", [1]) == {}


def test_table():
    assert format_table({1: 0.0, 12: 0.5}).splitlines() == ["length  novel", "     1  0.0000", "    12  0.5000"]


def test_fast_on_a_megabyte_corpus(corpus):
    train = corpus
    # half copied from the corpus (never novel), half lightly scrambled
    copied = train[500_000:505_000]
    scrambled = "".join(train[600_000 + i * 7 % 5000] for i in range(5000))
    sample = copied + scrambled
    start = time.process_time()  # CPU time: a busy CI machine must not fail this
    got = novel_substring_fractions(sample, train, range(1, 31))
    elapsed = time.process_time() - start
    assert elapsed < 3, f"took {elapsed:.2f} s of CPU time"
    assert sorted(got) == list(range(1, 31))
    assert got[1] == 0.0 and 0.45 < got[30] < 0.55
    piece = sample[4800:5200]  # straddles the seam: check a slice exactly
    assert novel_substring_fractions(piece, train, [4, 9]) == brute_force(piece, train, [4, 9])


def test_cli(tmp_path, capsys):
    (tmp_path / "s.txt").write_text("abcab", encoding="utf-8")
    (tmp_path / "t.txt").write_text("xabx", encoding="utf-8")
    assert main(["novelty", str(tmp_path / "s.txt"), str(tmp_path / "t.txt"), "--max_n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    # n=2: "ab" "bc" "ca" "ab" -> bc, ca new
    assert out == ["length  novel", "     1  0.2000", "     2  0.5000", "     3  1.0000"]
    assert main(["novelty", str(tmp_path / "s.txt"), str(tmp_path / "t.txt"), "--max_n", "1", "--json"]) == 0
    assert capsys.readouterr().out.strip() == '{"1": 0.2}'


def test_cli_missing_file(tmp_path, capsys):
    assert main(["novelty", str(tmp_path / "nope.txt"), str(tmp_path / "t.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
