"""preprocess: text files -> token ids in torch-rnn's HDF5 layout + its JSON vocabulary.

Two streaming passes over the input in fixed-size chunks, so memory stays bounded
whatever the corpus size: the first builds the vocabulary (in order of first
appearance, as torch-rnn does) and counts tokens; the second encodes each chunk with a
NumPy lookup table and writes it straight into pre-sized HDF5 datasets.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ..core.atomic import atomic_write_text, ensure_writable_folder
from ..errors import ConfigError, InputFileError, OutputExistsError
from .vocab import WORD_PATTERN, Vocab, token_of_byte

CHUNK_BYTES = 4 << 20
SPLITS = ("train", "val", "test")
# The HDF5 attribute and JSON key that tie the two files of one preprocess run together;
# torch-rnn ignores both, so the files stay torch-rnn's.
FINGERPRINT_KEY = "rnnkit_fingerprint"


@dataclass
class PreprocessConfig:
    input_txt: list[str]
    output_h5: str
    output_json: str
    val_frac: float = 0.1
    test_frac: float = 0.1
    encoding: str = "utf-8"  # or "bytes"
    tokens: str = "char"  # or "word"
    vocab: str | None = None  # reuse this vocabulary (preprocess JSON or checkpoint JSON), extended with new symbols
    max_vocab: int = 10000  # word mode: most frequent words kept, the rest become <unk>
    quiet: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.input_txt, (str, Path)):
            self.input_txt = [str(self.input_txt)]
        if not self.input_txt:
            raise ConfigError("give at least one input text file (--input_txt)")
        for name in ("val_frac", "test_frac"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise ConfigError(f"--{name} must be in [0, 1), got {v}")
        if self.val_frac + self.test_frac >= 1:
            raise ConfigError("--val_frac + --test_frac must leave some text for training (sum below 1)")
        if self.encoding not in ("utf-8", "utf8", "bytes"):
            raise ConfigError(f"--encoding {self.encoding!r}: use utf-8 or bytes")
        if self.tokens not in ("char", "word"):
            raise ConfigError(f"--tokens {self.tokens!r}: use char or word")
        if self.tokens == "word" and self.encoding == "bytes":
            raise ConfigError("--tokens word works on utf-8 text; drop --encoding bytes")
        if self.max_vocab < 2:
            raise ConfigError("--max_vocab must be at least 2")

    @property
    def kind(self) -> str:
        return "bytes" if self.encoding == "bytes" else self.tokens


@dataclass
class CorpusStats:
    vocab_size: int
    total_tokens: int
    split_sizes: dict[str, int]
    dtype: str
    sources: list[str] = field(default_factory=list)

    def report(self) -> str:
        s = self.split_sizes
        return (
            f"Total vocabulary size: {self.vocab_size}\n"
            f"Total tokens in file: {self.total_tokens}\n"
            f"  Training size: {s['train']}\n"
            f"  Val size: {s['val']}\n"
            f"  Test size: {s['test']}\n"
            f"Using dtype {self.dtype}"
        )


# ---- reading input ------------------------------------------------------------------------
def input_files(paths: list[str]) -> list[Path]:
    """Files named, with folders expanded to their non-hidden files, sorted."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise InputFileError(f"{p} is a folder with no files in it")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise InputFileError(f"{p} is not a regular file")
        else:
            raise InputFileError(f"{p}: no such file")
    if sum(f.stat().st_size for f in files) == 0:
        raise InputFileError(f"{', '.join(map(str, paths))}: the input is empty; give a text file with some text in it")
    return files


def iter_chunks(files: list[Path], kind: str) -> Iterator[str | bytes]:
    """The corpus in chunks: bytes (bytes mode) or str, never splitting a word in word mode."""
    for path in files:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        offset = 0
        carry = ""
        with open(path, "rb") as f:
            while True:
                raw = f.read(CHUNK_BYTES)
                final = not raw
                if kind == "bytes":
                    if raw:
                        yield raw
                else:
                    try:
                        text = decoder.decode(raw, final=final)
                    except UnicodeDecodeError as e:
                        raise InputFileError(
                            f"{path} is not valid UTF-8 (byte {offset + e.start}); "
                            "convert it to UTF-8, or read it as raw bytes with rnnkit preprocess --encoding bytes"
                        ) from None
                    if kind == "word":
                        text = carry + text
                        cut = len(text) if final else max(text.rfind(" "), text.rfind("\n")) + 1
                        text, carry = text[:cut], text[cut:]
                    if text:
                        yield text
                if final:
                    break
                offset += len(raw)


# ---- pass 1: vocabulary ---------------------------------------------------------------------
def scan_vocab(files: list[Path], kind: str, max_vocab: int) -> tuple[Vocab, int]:
    if kind == "word":
        counts: Counter = Counter()
        for text in iter_chunks(files, kind):
            counts.update(WORD_PATTERN.findall(text))
        return Vocab.from_word_counts(counts, max_vocab), sum(counts.values())
    seen: dict[int, None] = {}
    known = np.zeros(0x110000, dtype=bool)  # every code point (or byte) met so far
    total = 0
    probe = Vocab([], kind) if kind == "bytes" else Vocab(["a"], kind)
    for chunk in iter_chunks(files, kind):
        codes = probe.symbols(chunk)
        total += len(codes)
        # O(n) check for new symbols; the sort that orders them by first appearance only
        # runs on chunks that have any, which after the first chunk is rare
        new = ~known[codes]
        if new.any():
            fresh = codes[new]
            uniq, first = np.unique(fresh, return_index=True)
            for code in uniq[np.argsort(first)].tolist():
                seen.setdefault(code, None)
            known[uniq] = True
    tokens = [token_of_byte(c) if kind == "bytes" else chr(c) for c in seen]
    return Vocab(tokens, kind), total


def reuse_vocab(files: list[Path], base: Vocab) -> tuple[Vocab, int, list[str]]:
    """(vocabulary, token count, tokens added) for --vocab: the base vocabulary with the symbols
    of the text that it lacks appended, in order of first appearance, so every old id keeps
    its meaning and a model trained on the old one can grow into it (fine-tuning). A word
    vocabulary is kept as it is: unknown words are <unk>, as in the text it was built from."""
    if base.kind == "word":
        return base, sum(len(base.encode(chunk)) for chunk in iter_chunks(files, "word")), []
    found, total = scan_vocab(files, base.kind, 0)
    added = [t for t in found.tokens if base.id_of(t) is None]
    return base.extended(added), total, added


def describe_reuse(vocab_path: str, base: Vocab, added: list[str]) -> str:
    if not added:
        return f"Reused the vocabulary of {vocab_path} (the text has nothing it lacks)"
    names = base.describe_tokens(added[:10]) + ([f"and {len(added) - 10} more"] if len(added) > 10 else [])
    what = "byte" if base.kind == "bytes" else "character"
    return (f"Extended the vocabulary of {vocab_path}: {len(added)} new {what}{'s' * (len(added) > 1)} "
            f"appended as ids {len(base) + 1}-{len(base) + len(added)} ({', '.join(names)}); old ids keep their meaning")


# ---- pass 2: encode + write -----------------------------------------------------------------
def corpus_fingerprint(vocab: Vocab, sizes: dict[str, int]) -> str:
    """A short hash of the vocabulary and split sizes: equal in the HDF5 and JSON files of one
    preprocess run, different (barring a collision) for files of runs that disagree on either."""
    canonical = json.dumps({"tokens": vocab.tokens, "splits": [sizes[s] for s in SPLITS]},
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def split_sizes(total: int, val_frac: float, test_frac: float) -> dict[str, int]:
    val = int(val_frac * total)
    test = int(test_frac * total)
    return {"train": total - val - test, "val": val, "test": test}


def write_h5(path: Path, files: list[Path], vocab: Vocab, sizes: dict[str, int]) -> None:
    bounds = np.cumsum([0] + [sizes[s] for s in SPLITS])
    with h5py.File(path, "w") as h5:
        h5.attrs[FINGERPRINT_KEY] = corpus_fingerprint(vocab, sizes)
        # contiguous (unchunked) datasets: readers can memory-map them
        dsets = [h5.create_dataset(s, shape=(sizes[s],), dtype=vocab.dtype) for s in SPLITS]
        pos = 0
        for chunk in iter_chunks(files, vocab.kind):
            ids = vocab.encode(chunk).astype(vocab.dtype, copy=False)
            end = pos + len(ids)
            for k, dset in enumerate(dsets):
                lo, hi = max(pos, bounds[k]), min(end, bounds[k + 1])
                if lo < hi:
                    dset[lo - bounds[k]: hi - bounds[k]] = ids[lo - pos: hi - pos]
            pos = end


def preprocess(config: PreprocessConfig | None = None, **kwargs) -> CorpusStats:
    """Python API for `rnnkit preprocess`."""
    cfg = config or PreprocessConfig(**kwargs)
    files = input_files(cfg.input_txt)
    out_h5, out_json = Path(cfg.output_h5), Path(cfg.output_json)
    _check_outputs(files, [out_h5, out_json], cfg.force)
    reused = None
    if cfg.vocab:
        base = Vocab.load(cfg.vocab)
        if (base.kind == "bytes") != (cfg.kind == "bytes"):
            raise ConfigError(f"--vocab {cfg.vocab} is a {base.kind} vocabulary; match it with --encoding/--tokens")
        vocab, total, added = reuse_vocab(files, base)
        reused = describe_reuse(cfg.vocab, base, added)
    else:
        vocab, total = scan_vocab(files, cfg.kind, cfg.max_vocab)
    sizes = split_sizes(total, cfg.val_frac, cfg.test_frac)
    stats = CorpusStats(len(vocab), total, sizes, np.dtype(vocab.dtype).name, [str(f.resolve()) for f in files])
    if not cfg.quiet:
        print(stats.report())
        if reused:
            print(reused)

    # Write next to the targets, then rename: a failure leaves earlier files untouched.
    fd, tmp = tempfile.mkstemp(prefix=f".{out_h5.name}.", suffix=".tmp", dir=out_h5.parent)
    os.close(fd)
    try:
        write_h5(Path(tmp), files, vocab, sizes)
        os.replace(tmp, out_h5)
    finally:
        Path(tmp).unlink(missing_ok=True)
    meta = vocab.to_json_dict()
    meta["rnnkit_sources"] = stats.sources
    meta[FINGERPRINT_KEY] = corpus_fingerprint(vocab, sizes)
    atomic_write_text(out_json, json.dumps(meta, ensure_ascii=False))
    return stats


def _check_outputs(inputs: list[Path], outputs: list[Path], force: bool) -> None:
    resolved_inputs = {p.resolve() for p in inputs}
    for out in outputs:
        ensure_writable_folder(out.parent, str(out))
        if out.resolve() in resolved_inputs:
            raise OutputExistsError(f"{out} is also an input file; choose another output name")
        if out.is_dir():
            raise InputFileError(f"{out} is a folder; give a file name")
        if out.exists() and not force and not _is_preprocess_output(out):
            raise OutputExistsError(
                f"{out} already exists and is not a file rnnkit preprocess wrote; "
                "pass --force to replace it or choose another output name"
            )


def _is_preprocess_output(path: Path) -> bool:
    """An earlier preprocess result: made again from the text at will, as torch-rnn does."""
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return "train" in f
        return "idx_to_token" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False
