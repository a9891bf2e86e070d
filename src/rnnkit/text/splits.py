"""Token splits read from HDF5, and the lanes that truncated backprop walks along.

A split is memory-mapped when the HDF5 dataset is contiguous and uncompressed (as both
torch-rnn and rnnkit write it), so a corpus larger than memory trains with only the
pages in use resident. Pages read through a map stay in the process's resident set
until it lets go of them, so scans and long epochs hand them back now and then
(release_pages): memory stays bounded however long the run and however large the file.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ..errors import InputFileError
from .corpus import FINGERPRINT_KEY
from .vocab import Vocab, read_vocab_json

SCAN_CHUNK = 1 << 22  # tokens per block when scanning a split
RELEASE_EVERY = 1000  # batches between handing a memmap's pages back


def open_split(h5_path: str | Path, name: str) -> np.ndarray:
    """The split as a read-only array: a memmap when possible, else loaded."""
    h5_path = Path(h5_path)
    with _open_h5(h5_path) as f:
        dset = _split(f, h5_path, name)
        offset = dset.id.get_offset()
        if offset is not None and dset.chunks is None and dset.compression is None and dset.size > 0:
            return map_read_only(h5_path, dset.dtype, offset, dset.size)
        return dset[()]


def _open_h5(h5_path: Path) -> h5py.File:
    try:
        return h5py.File(h5_path, "r")
    except FileNotFoundError:
        raise InputFileError(f"{h5_path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{h5_path} is a folder; give the .h5 file written by preprocess") from None
    except OSError:
        raise InputFileError(f"{h5_path} is not an HDF5 file; make one with rnnkit preprocess") from None


def _split(f: h5py.File, h5_path: Path, name: str) -> h5py.Dataset:
    if name not in f:
        raise InputFileError(
            f"{h5_path} has no '{name}' split (it has: {', '.join(f.keys()) or 'nothing'}); "
            "rerun rnnkit preprocess to write train/val/test"
        )
    dset = f[name]
    if dset.ndim != 1 or dset.dtype.kind not in "iu":
        raise InputFileError(f"{h5_path}: split '{name}' is not a 1-D array of token ids")
    return dset


class MismatchedPairError(InputFileError):
    """The HDF5 and JSON files were not written by the same preprocess run."""


def check_pair(h5_path: str | Path, json_path: str | Path) -> str | None:
    """Refuse an HDF5 + JSON pair whose fingerprints differ (one missing counts as different).
    Neither has one in torch-rnn's files: returns the note to show, as check_ids is then the only check."""
    h5_path, json_path = Path(h5_path), Path(json_path)
    data = read_vocab_json(json_path)
    Vocab.from_json_dict(data)  # a file that is no vocabulary is reported as such, not as a mismatch
    with _open_h5(h5_path) as f:
        for name in ("train", "val"):  # the splits training reads, reported as open_split would
            _split(f, h5_path, name)
        h5_print = _text(f.attrs.get(FINGERPRINT_KEY))
    json_print = _text(data.get(FINGERPRINT_KEY))
    if h5_print != json_print:
        raise MismatchedPairError(
            f"{h5_path} and {json_path} come from different preprocess runs (fingerprints {h5_print or 'none'} "
            f"vs {json_print or 'none'}); pass the .json written with {h5_path.name} or run rnnkit preprocess again"
        )
    if h5_print is None:
        return (f"note: {h5_path} and {json_path} carry no fingerprint (written by torch-rnn?); "
                "rnnkit checked only that every id is in the vocabulary")
    return None


def _text(value) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def check_ids(data: np.ndarray, vocab: Vocab, where: str) -> None:
    """Every id must be in 1..len(vocab); scanned in blocks so nothing large stays resident."""
    hi, lo = 0, None
    for start in range(0, len(data), SCAN_CHUNK):
        block = data[start: start + SCAN_CHUNK]
        hi = max(hi, int(block.max()))
        lo = int(block.min()) if lo is None else min(lo, int(block.min()))
        release_pages(data)
    if len(data) and (hi > len(vocab) or lo < 1):
        raise InputFileError(
            f"{where} has token ids up to {hi} but the JSON vocabulary has {len(vocab)} tokens: "
            "the HDF5 and JSON files come from different corpora; use the pair preprocess wrote together"
        )


@dataclass
class Lanes:
    """The split cut into `batch_size` contiguous lanes; batch i is columns [i*T, (i+1)*T).

    The hidden state of lane j after batch i is the right start for lane j in batch i + 1,
    which is what lets truncated backprop carry state across batches. With several
    processes, each rank takes its own `batch_size` lanes out of world_size * batch_size.
    """

    data: np.ndarray
    batch_size: int
    seq_length: int
    rank: int = 0
    world_size: int = 1
    pin: bool = False  # page-locked batches, for asynchronous copies to a GPU

    def __post_init__(self) -> None:
        lanes = self.batch_size * self.world_size
        self.lane_length = (len(self.data) - 1) // lanes
        self.num_batches = self.lane_length // self.seq_length
        n = lanes * self.lane_length
        rows = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        # views, not copies: on a memmap nothing is read until a batch asks for it
        self._x = self.data[:n].reshape(lanes, self.lane_length)[rows]
        self._y = self.data[1: n + 1].reshape(lanes, self.lane_length)[rows]

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i % RELEASE_EVERY == 0:
            release_pages(self.data)
        cols = slice(i * self.seq_length, (i + 1) * self.seq_length)
        x = torch.from_numpy(np.ascontiguousarray(self._x[:, cols], dtype=np.int64))
        y = torch.from_numpy(np.ascontiguousarray(self._y[:, cols], dtype=np.int64))
        if self.pin:
            return x.pin_memory(), y.pin_memory()
        return x, y


def map_read_only(path: Path, dtype: np.dtype, offset: int, count: int) -> np.ndarray:
    """`count` items at `offset` in the file, as a read-only array over a memory map of it."""
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # stays valid once f is closed
    return np.frombuffer(mapping, dtype=dtype, count=count, offset=offset)


def mapping_of(data: np.ndarray) -> mmap.mmap | None:
    """The read-only memory map under an array from map_read_only, or None."""
    base = data.base
    return base.obj if isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap) else None


def release_pages(data: np.ndarray) -> None:
    """Drop a mapped split's pages from this process's resident set; they stay in the OS page
    cache, so reading them again is cheap. A no-op for arrays in memory."""
    mapping = mapping_of(data)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def fit_lanes(n_tokens: int, batch_size: int, seq_length: int, world_size: int = 1) -> tuple[int, int]:
    """(batch_size, seq_length) shrunk so at least one batch fits in n_tokens, or (0, 0)."""
    usable = n_tokens - 1
    if usable < 1:
        return 0, 0
    if usable >= batch_size * world_size * seq_length:
        return batch_size, seq_length
    b = usable // (seq_length * world_size)
    if b >= 1:
        return b, seq_length
    if world_size > 1:
        return 0, 0
    return 1, usable
