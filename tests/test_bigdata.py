"""Data larger than memory, proved on small files: memory must not grow with the data.

Peak resident memory is the process's own max RSS (ru_maxrss), measured in a fresh
subprocess after a warm-up, so imports and torch's code pages are not counted. Pages
of a memory map do count in it, which is what makes the memmap checks honest.
benchmarks/bench_bigdata.py runs the same at 1 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from rnnkit.text.splits import Lanes, mapping_of, open_split
from rnnkit.text.vocab import Vocab

MB = 1 << 20


def peak_growth(script: str, *args: str) -> list[int]:
    """Run `script` in a fresh Python; it calls mark() at points of interest. Returns the
    growth of max RSS (bytes) from the first mark to each later one."""
    prelude = (
        "import resource, sys\n"
        "marks = []\n"
        "def mark(): marks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
    )
    epilogue = "\nprint(*[m - marks[0] for m in marks[1:]])\n"
    out = subprocess.run([sys.executable, "-c", prelude + script + epilogue, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return [int(v) for v in out.stdout.split()]


def write_corpus(path: Path, size: int, source: str) -> None:
    """Shuffled lines of `source` until `size` bytes: text no chunk of which repeats exactly."""
    lines = source.split("\n")
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < size:
            block = "\n".join(lines[i] for i in rng.integers(0, len(lines), 20_000)) + "\n"
            f.write(block)
            written += len(block)


def test_preprocess_memory_does_not_grow_with_the_corpus(tmp_path, corpus):
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    write_corpus(small, 8 * MB, corpus)  # two whole 4 MB read chunks
    write_corpus(big, 48 * MB, corpus)
    script = (
        "from rnnkit.text.corpus import preprocess\n"
        "mark()\n"
        "preprocess(input_txt=[sys.argv[1]], output_h5=sys.argv[1] + '.h5', output_json=sys.argv[1] + '.json', quiet=True)\n"
        "mark()\n"
        "preprocess(input_txt=[sys.argv[2]], output_h5=sys.argv[2] + '.h5', output_json=sys.argv[2] + '.json', quiet=True)\n"
        "mark()\n"
    )
    on_small, on_big = peak_growth(script, str(small), str(big))
    # Streaming: the 40 MB more of text add nothing to the peak (measured: +0.0 MB; the
    # ~90 MB of a chunk's working set is there either way). Reading the text whole adds ~1 GB.
    assert on_big - on_small < 16 * MB, (on_small / MB, on_big / MB)
    assert open_split(str(big) + ".h5", "train").shape[0] > 38 * MB  # it really was preprocessed


def write_split(path: Path, tokens: int, vocab_size: int) -> None:
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("train", shape=(tokens,), dtype=np.uint8)
        for start in range(0, tokens, 8 * MB):
            n = min(8 * MB, tokens - start)
            dset[start:start + n] = rng.integers(1, vocab_size + 1, n, dtype=np.uint8)


def test_lanes_read_a_whole_epoch_through_the_memmap_in_bounded_memory(tmp_path):
    h5, js = tmp_path / "ids.h5", tmp_path / "ids.json"
    write_split(h5, 96 * MB, 60)
    js.write_text(json.dumps(Vocab([chr(65 + i) for i in range(60)], "char").to_json_dict()))

    data = open_split(h5, "train")
    assert mapping_of(data) is not None  # memory-mapped, not read into memory
    lanes = Lanes(data, 64, 64)
    assert np.shares_memory(lanes._x, data) and np.shares_memory(lanes._y, data)  # views, no copy

    script = (
        "import numpy as np\n"
        "from rnnkit.text.splits import Lanes, check_ids, open_split\n"
        "from rnnkit.text.vocab import Vocab\n"
        "Lanes(np.arange(1, 9000, dtype=np.uint8), 4, 8).batch(0)  # warm up torch's code pages\n"
        "mark()\n"
        "data = open_split(sys.argv[1], 'train')\n"
        "check_ids(data, Vocab.load(sys.argv[2]), 'train')\n"
        "mark()\n"
        "lanes = Lanes(data, 8, 256)\n"
        "for i in range(len(lanes)):\n"
        "    lanes.batch(i)\n"
        "mark()\n"
    )
    after_check, after_epoch = peak_growth(script, str(h5), str(js))
    # Every one of the 96 MB was read, first by the id check, then by the batches of a
    # whole epoch; pages of the map are handed back as it goes, so few stay resident
    # (measured: ~6 MB after the check, ~30 MB after the epoch; ~98 MB without handing back).
    # What stays is about lanes x a few MB: the kernel maps page-cache folios (up to 2 MB) whole.
    assert after_check < 24 * MB, after_check / MB
    assert after_epoch < 48 * MB, after_epoch / MB
