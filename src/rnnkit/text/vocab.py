"""Vocab: one tokenizer for characters, raw bytes or words, stored in torch-rnn's JSON layout.

Ids are 1-based, as torch-rnn writes them; id 0 is never used (the model reserves it).
Encoding is vectorized: text becomes an array of code points (or bytes) and a lookup
table maps them to ids, so no Python loop runs per character.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputFileError, RnnkitError

KINDS = ("char", "bytes", "word")
UNKNOWN_WORD = "<unk>"
CHECKPOINT_FORMAT = "rnnkit-checkpoint"  # core/checkpoint.py's FORMAT: a checkpoint's JSON holds its vocabulary
# Words are runs of word characters, single punctuation marks, or newlines; spaces are
# implied between tokens and put back by decode().
WORD_PATTERN = re.compile(r"\w+|[^\w\s]|\n")
_NO_SPACE_BEFORE = set(".,;:!?)]}'%\n")
_NO_SPACE_AFTER = set("([{\n'")


@dataclass
class Vocab:
    """Ordered tokens; tokens[i] has id i + 1."""

    tokens: list[str]
    kind: str = "char"
    _index: dict[str, int] = field(init=False, repr=False)
    _table: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RnnkitError(f"unknown tokenization {self.kind!r}; use one of {', '.join(KINDS)}")
        self._index = {tok: i + 1 for i, tok in enumerate(self.tokens)}
        if len(self._index) != len(self.tokens):
            raise InputFileError("the vocabulary lists a token twice; regenerate it with rnnkit preprocess")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def dtype(self) -> type:
        return np.uint8 if len(self.tokens) <= 255 else np.uint32

    def id_of(self, token: str) -> int | None:
        return self._index.get(token)

    def extended(self, tokens: Iterable[str]) -> "Vocab":
        """This vocabulary with the tokens it lacks appended: every old id keeps its meaning."""
        return Vocab(self.tokens + [t for t in dict.fromkeys(tokens) if t not in self._index], self.kind)

    def first_difference(self, base: "Vocab") -> int | None:
        """The first id that means another token here than in `base` (or that this vocabulary
        lacks); None when this one extends `base`: the same kind, base's tokens at the same ids."""
        if self.kind != base.kind:
            return 1
        for i, tok in enumerate(base.tokens):
            if i >= len(self.tokens) or self.tokens[i] != tok:
                return i + 1
        return None

    # ---- building -------------------------------------------------------------------
    @classmethod
    def build(cls, symbols_in_order: Iterable[str], kind: str) -> "Vocab":
        return cls(list(dict.fromkeys(symbols_in_order)), kind)

    @classmethod
    def from_word_counts(cls, counts: Counter, max_size: int | None) -> "Vocab":
        ranked = [w for w, _ in counts.most_common()]
        if max_size is not None and len(ranked) > max_size - 1:
            ranked = ranked[: max_size - 1]
        words = sorted(ranked, key=lambda w: (-counts[w], w))
        return cls([UNKNOWN_WORD] + words, "word")

    # ---- text <-> ids ---------------------------------------------------------------
    def symbols(self, text: str | bytes) -> np.ndarray:
        """Text as an array of raw symbols: code points (char), byte values (bytes)."""
        if self.kind == "bytes":
            data = text if isinstance(text, (bytes, bytearray)) else text.encode("utf-8")
            return np.frombuffer(bytes(data), dtype=np.uint8).astype(np.uint32)
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)

    def _lookup_table(self) -> np.ndarray:
        if self._table is None:
            codes = [self._symbol_code(t) for t in self.tokens]
            table = np.zeros(max(codes) + 1 if codes else 1, dtype=np.uint32)
            table[codes] = np.arange(1, len(codes) + 1, dtype=np.uint32)
            self._table = table
        return self._table

    def _symbol_code(self, token: str) -> int:
        if self.kind == "bytes":
            return byte_of_token(token)
        return ord(token)

    def encode(self, text: str | bytes, unknown: str = "error") -> np.ndarray:
        """Token ids (1-based) for `text`. unknown: 'error' | 'skip' (drop unseen tokens)."""
        if self.kind == "word":
            assert isinstance(text, str)
            unk = self._index[UNKNOWN_WORD]
            return np.array([self._index.get(w, unk) for w in WORD_PATTERN.findall(text)], dtype=np.int64)
        codes = self.symbols(text)
        table = self._lookup_table()
        ids = np.zeros(codes.shape, dtype=np.int64)
        in_range = codes < len(table)
        ids[in_range] = table[codes[in_range]]
        missing = ids == 0
        if missing.any():
            if unknown == "skip":
                return ids[~missing]
            raise UnknownTokensError(self.describe_codes(np.unique(codes[missing])))
        return ids

    def describe_codes(self, codes: np.ndarray) -> list[str]:
        if self.kind == "bytes":
            return [f"byte {int(c)}" for c in codes]
        return [repr(chr(int(c))) for c in codes]

    def describe_tokens(self, tokens: Iterable[str]) -> list[str]:
        """Tokens as messages name them: 'a', '\\n', byte 195."""
        if self.kind == "word":
            return [repr(t) for t in tokens]
        return self.describe_codes(np.array([self._symbol_code(t) for t in tokens], dtype=np.int64))

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        toks = [self.tokens[int(i) - 1] for i in ids]
        if self.kind == "bytes":
            return bytes(byte_of_token(t) for t in toks).decode("utf-8", errors="replace")
        if self.kind == "word":
            dec = self.decoder()
            return "".join(dec.feed(i) for i in ids)
        return "".join(toks)

    def decoder(self) -> "StreamDecoder":
        """Turns ids into text one at a time, for streaming output."""
        return StreamDecoder(self)

    # ---- torch-rnn JSON -------------------------------------------------------------
    def to_json_dict(self) -> dict:
        return {
            "token_to_idx": {t: i + 1 for i, t in enumerate(self.tokens)},
            "idx_to_token": {str(i + 1): t for i, t in enumerate(self.tokens)},
            "rnnkit_tokens": self.kind,
        }

    @classmethod
    def from_json_dict(cls, data: dict) -> "Vocab":
        if not isinstance(data, dict) or "idx_to_token" not in data:
            raise InputFileError("the JSON file has no idx_to_token table; is it the JSON written by preprocess?")
        idx_to_token = data["idx_to_token"]
        try:
            pairs = sorted((int(k), v) for k, v in idx_to_token.items())
        except (ValueError, AttributeError) as e:
            raise InputFileError(f"the JSON file's idx_to_token table is malformed ({e})") from None
        if [k for k, _ in pairs] != list(range(1, len(pairs) + 1)):
            raise InputFileError("the JSON file's token ids are not 1..N; regenerate it with rnnkit preprocess")
        tokens = [v for _, v in pairs]
        kind = data.get("rnnkit_tokens")
        if kind is None:  # a torch-rnn file: bytes mode writes non-ASCII bytes as "[N]"
            kind = "bytes" if any(_is_byte_token(t) for t in tokens) else "char"
        return cls(tokens, kind)

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """From preprocess's (or torch-rnn's) JSON file, or from a checkpoint's JSON file."""
        data = read_vocab_json(path)
        if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT and "vocab" in data:
            data = data["vocab"]
        return cls.from_json_dict(data)


def read_vocab_json(path: str | Path) -> dict:
    """The parsed JSON file that preprocess wrote (or torch-rnn's), not yet checked as a vocabulary."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path} is a folder; give the JSON file written by preprocess") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path} is not valid JSON ({e}); give the JSON file written by preprocess") from None


class UnknownTokensError(RnnkitError):
    def __init__(self, shown: list[str]):
        self.shown = shown
        more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
        super().__init__("characters the vocabulary does not have: " + ", ".join(shown[:10]) + more)


class StreamDecoder:
    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.prev = "\n"
        self.quote_open = False
        self._bytes = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        tok = self.vocab.tokens[int(token_id) - 1]
        if self.vocab.kind == "bytes":
            return self._bytes.decode(bytes([byte_of_token(tok)]))
        if self.vocab.kind == "word":
            space = tok[0] not in _NO_SPACE_BEFORE and self.prev[-1] not in _NO_SPACE_AFTER
            if tok == '"':  # alternate opening and closing quotes
                space = space and not self.quote_open
                self.quote_open = not self.quote_open
            elif self.prev == '"' and self.quote_open:
                space = False
            self.prev = tok
            return (" " + tok) if space else tok
        return tok

    def flush(self) -> str:
        return self._bytes.decode(b"", final=True) if self.vocab.kind == "bytes" else ""


def token_of_byte(b: int) -> str:
    """torch-rnn's bytes mode writes bytes above 127 as "[N]" in its JSON."""
    return chr(b) if b < 128 else f"[{b}]"


def byte_of_token(token: str) -> int:
    if _is_byte_token(token):
        return int(token[1:-1])
    return ord(token)


def _is_byte_token(token: str) -> bool:
    return len(token) > 2 and token[0] == "[" and token[-1] == "]" and token[1:-1].isdigit()
