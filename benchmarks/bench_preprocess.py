"""Preprocessing speed and peak memory: `rnnkit preprocess` vs torch-rnn's algorithm.

The input is tinyshakespeare repeated to about 67 MB (20 MB with --quick). The reference
is torch-rnn's scripts/preprocess.py (character mode) written out below: one pass over
the text in Python, character by character, to build the vocabulary and count; numpy
arrays for all the splits in memory; a second per-character pass to fill them; then the
HDF5 and JSON files. Each side runs in its own process, which reports its wall time and
its peak resident memory above what it held just before it started (RSS sampled every
2 ms from /proc; ru_maxrss cannot tell, since importing torch peaks higher than either).

Target (issue 8): >= 50 MB/s of UTF-8 text.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import Result, corpus_text, header, wait_quiet, workdir


def torch_rnn_preprocess(input_txt: str, output_h5: str, output_json: str, val_frac=0.1, test_frac=0.1) -> None:
    """torch-rnn's scripts/preprocess.py, character mode, as it is written there."""
    import h5py
    import numpy as np

    token_to_idx, total_size = {}, 0
    with codecs.open(input_txt, "r", "utf-8") as f:
        for line in f:
            total_size += len(line)
            for char in line:
                if char not in token_to_idx:
                    token_to_idx[char] = len(token_to_idx) + 1
    val_size = int(val_frac * total_size)
    test_size = int(test_frac * total_size)
    train_size = total_size - val_size - test_size
    dtype = np.uint8 if len(token_to_idx) <= 255 else np.uint32
    splits = [np.zeros(train_size, dtype=dtype), np.zeros(val_size, dtype=dtype), np.zeros(test_size, dtype=dtype)]
    split_idx, cur_idx = 0, 0
    with codecs.open(input_txt, "r", "utf-8") as f:
        for line in f:
            for char in line:
                splits[split_idx][cur_idx] = token_to_idx[char]
                cur_idx += 1
                if cur_idx == splits[split_idx].size:
                    split_idx += 1
                    cur_idx = 0
    with h5py.File(output_h5, "w") as f:
        for name, arr in zip(("train", "val", "test"), splits):
            f.create_dataset(name, data=arr)
    with open(output_json, "w") as f:
        json.dump({"token_to_idx": token_to_idx, "idx_to_token": {v: k for k, v in token_to_idx.items()}}, f)


class PeakRSS(threading.Thread):
    """The highest resident set size seen while it runs, in MB (Linux /proc)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self.rss()
        self.done = threading.Event()

    def rss(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page / 2**20

    def run(self) -> None:
        while not self.done.wait(0.002):
            self.peak = max(self.peak, self.rss())


def worker(which: str, input_txt: str, out: str) -> None:
    import h5py  # noqa: F401  (both sides' imports count as the baseline)
    import numpy  # noqa: F401

    from rnnkit.text.corpus import preprocess

    h5, js = f"{out}/{which}.h5", f"{out}/{which}.json"
    meter = PeakRSS()
    meter.start()
    t0 = time.perf_counter()
    if which == "rnnkit":
        preprocess(input_txt=[input_txt], output_h5=h5, output_json=js, quiet=True)
    else:
        torch_rnn_preprocess(input_txt, h5, js)
    seconds = time.perf_counter() - t0
    meter.done.set()
    meter.join()
    meter.peak = max(meter.peak, meter.rss())
    print(json.dumps({"seconds": seconds, "peak_mb": meter.peak - meter.base, "base_mb": meter.base}))


def run(which: str, input_txt: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", which, str(input_txt), str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_same_ids(out: Path) -> None:
    """Both tools must write the same token ids (ids follow first appearance in both)."""
    import h5py
    import numpy as np

    with h5py.File(out / "rnnkit.h5") as a, h5py.File(out / "torch-rnn.h5") as b:
        for split in ("train", "val", "test"):
            if not np.array_equal(a[split][()], b[split][()]):
                print(f"  warning: the {split} splits differ between rnnkit and torch-rnn's algorithm")


def main(quick: bool = False) -> list[Result]:
    header("preprocessing: rnnkit preprocess vs torch-rnn's per-character Python loop")
    text = corpus_text()
    copies = 18 if quick else 60
    out = workdir("preprocess")
    big = out / "big.txt"
    big.write_text(text * copies, encoding="utf-8")
    mb = big.stat().st_size / 1e6
    print(f"  input: tinyshakespeare x {copies} = {mb:.1f} MB")
    ours = []
    for _ in range(1 if quick else 3):
        wait_quiet()
        ours.append(run("rnnkit", big, out))
    wait_quiet()
    ref = run("torch-rnn", big, out)
    check_same_ids(out)
    best = min(ours, key=lambda r: r["seconds"])
    runs = ", ".join(f"{r['seconds']:.2f}" for r in ours)
    print(f"  rnnkit: {runs} s, peak +{best['peak_mb']:.0f} MB; "
          f"torch-rnn's algorithm: {ref['seconds']:.1f} s, peak +{ref['peak_mb']:.0f} MB "
          f"(above the {ref['base_mb']:.0f} MB each held after its imports)")
    speed = Result("preprocess", "preprocess MB/s", mb / best["seconds"], mb / ref["seconds"], "MB/s", ">= 50 MB/s",
                   mb / best["seconds"] >= 50)
    memory = Result("preprocess", "preprocess peak memory above imports", best["peak_mb"], ref["peak_mb"], "MB",
                    "(lower is better)", None)
    print(speed.line())
    print(memory.line(), flush=True)
    return [speed, memory]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        raise SystemExit(0)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 20 MB input instead of 67 MB")
    main(ap.parse_args().quick)
