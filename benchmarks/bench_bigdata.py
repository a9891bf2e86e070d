"""Data larger than memory: a >= 1 GB corpus preprocessed and trained on in bounded memory.

Generates a corpus of tinyshakespeare lines in random order with random character
mutations (written in chunks, never held whole), then runs, each in its own process:

  baseline    python importing rnnkit and torch, nothing else
  preprocess  rnnkit preprocess (two streaming passes)
  train       rnnkit train, a few iterations (check of every id, memmapped lanes)
  epoch walk  every batch of one whole epoch through Lanes, no model (page release)

Each step's peak resident memory is the max RSS of a fresh child, read with
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss in a wrapper process that ran only it.
File-backed pages of the memory map count in it, so it is an honest upper bound.

usage: python benchmarks/bench_bigdata.py [--gb 1.0] [--workdir /tmp] [--keep]
Needs about 2.1 x GB of free disk; the files are deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
TARGET = 1 << 30  # the bound on peak resident memory: 1 GiB
CHUNK = 8 << 20
MUTATION_RATE = 0.01

# runs argv[1:] as its only child and prints: returncode, peak RSS of that child (KiB), seconds
PROBE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)\n"
)


def make_corpus(path: Path, size: int, seed: int = 0, source: Path = CORPUS) -> int:
    """Write at least `size` bytes of shuffled, mutated lines of `source`; returns the size."""
    text = source.read_bytes()
    lines = text.split(b"\n")
    alphabet = np.frombuffer(bytes(sorted(set(text) - {ord("\n")})), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK * len(lines) // len(text))
    written = 0
    with open(path, "wb") as f:
        while written < size:
            chunk = b"\n".join([lines[i] for i in rng.integers(0, len(lines), per_chunk)]) + b"\n"
            ids = np.frombuffer(chunk, dtype=np.uint8).copy()
            where = rng.integers(0, len(ids), int(len(ids) * MUTATION_RATE))
            ids[where] = alphabet[rng.integers(0, len(alphabet), len(where))]
            f.write(ids.tobytes())
            written += len(ids)
    return written


def measure(argv: list[str]) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of argv run as a fresh process; raises if it fails."""
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
    rc, kib, seconds = out.stdout.split()
    if int(rc) != 0:
        raise SystemExit(f"failed ({rc}): {' '.join(argv)}\n{out.stderr[-2000:]}")
    return int(kib) * 1024, float(seconds)


EPOCH_WALK = """
import sys
from rnnkit.text.splits import Lanes, check_ids, open_split
from rnnkit.text.vocab import Vocab
data = open_split(sys.argv[1], "train")
check_ids(data, Vocab.load(sys.argv[2]), "train")
lanes = Lanes(data, 50, 50)
for i in range(len(lanes)):
    lanes.batch(i)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=1.0, help="corpus size in GB (10^9 bytes; default 1.0)")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not CORPUS.exists():
        raise SystemExit(f"needs {CORPUS}")
    work = Path(tempfile.mkdtemp(prefix="rnnkit_bigdata_", dir=args.workdir))
    py = sys.executable
    try:
        t = time.perf_counter()
        size = make_corpus(work / "big.txt", int(args.gb * 1e9))
        print(f"corpus: {size / 1e9:.2f} GB written in {time.perf_counter() - t:.0f}s ({work / 'big.txt'})")
        h5, js = str(work / "big.h5"), str(work / "big.json")
        rows = [("baseline (import rnnkit, torch)", *measure([py, "-c", "import rnnkit.training.trainer, rnnkit.text.corpus"]))]
        rss, secs = measure([py, "-m", "rnnkit", "preprocess", "--input_txt", str(work / "big.txt"), "--output_h5", h5,
                             "--output_json", js, "--val_frac", "0.001", "--test_frac", "0.001", "--quiet"])
        rows.append(("preprocess", rss, secs))
        rows.append(("train ({} iterations)".format(args.iters), *measure([
            py, "-m", "rnnkit", "train", "--input_h5", h5, "--input_json", js, "--checkpoint_name", str(work / "cv/ck"),
            "--max_iters", str(args.iters), "--rnn_size", "128", "--batch_size", "50", "--seq_length", "50",
            "--checkpoint_every", "0", "--progress", "none", "--quiet"])))
        rows.append(("epoch walk (all batches, no model)", *measure([py, "-c", EPOCH_WALK, h5, js])))
        print(f"{'step':38} {'peak RSS':>10} {'target':>9} {'seconds':>8}")
        for name, rss, secs in rows:
            ok = "ok" if rss < TARGET else "OVER"
            print(f"{name:38} {rss / 2**20:7.0f} MiB {TARGET / 2**20:6.0f} MiB {secs:8.1f}  {ok}")
        print(f"preprocess: {size / 1e6 / rows[1][2]:.1f} MB/s; h5 file {Path(h5).stat().st_size / 1e9:.2f} GB")
        print(json.dumps({"corpus_bytes": size, "peak_rss_bytes": {n: r for n, r, _ in rows},
                          "seconds": {n: s for n, _, s in rows}, "preprocess_MB_per_s": size / 1e6 / rows[1][2]}))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
