"""Shared by the benchmark scripts: the corpus, the machine, timing and the result rows.

Every figure is printed next to a reference measured in the same run on the same
machine. Other work on the machine slows whichever side runs while it does, so each
side runs several times, interleaved, and the best run of each side is compared.
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("RNNKIT_BENCH_TEXT", ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))


@dataclass
class Result:
    benchmark: str
    figure: str
    value: float
    reference: float | None
    unit: str
    target: str  # e.g. ">= 0.97x reference", "<= 1.50"
    met: bool | None

    @property
    def ratio(self) -> float | None:
        return self.value / self.reference if self.reference else None

    def line(self) -> str:
        ref = f"{_fmt(self.reference)} {self.unit}" if self.reference is not None else "-"
        ratio = f"{self.ratio:.2f}x" if self.ratio is not None else "-"
        verdict = {True: "met", False: "NOT met", None: ""}[self.met]
        return f"  {self.figure:<42} {_fmt(self.value):>10} {self.unit:<8} ref {ref:<20} {ratio:>7}  target {self.target} {verdict}"


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"


def corpus_text() -> str:
    if not CORPUS.exists():
        raise SystemExit(f"benchmark corpus not found at {CORPUS}; set RNNKIT_BENCH_TEXT to tinyshakespeare.txt")
    return CORPUS.read_text(encoding="utf-8")


def prepared_corpus(workdir: Path) -> tuple[str, str]:
    """tinyshakespeare with nanoGPT's split (first 90% train, last 10% val): (h5, json)."""
    from rnnkit.text.corpus import preprocess

    h5, js = workdir / "corpus.h5", workdir / "corpus.json"
    if not h5.exists():
        preprocess(input_txt=[str(CORPUS)], output_h5=str(h5), output_json=str(js), val_frac=0.1, test_frac=0.0, quiet=True)
    return str(h5), str(js)


def workdir(name: str) -> Path:
    """A fresh temporary folder, removed when the benchmark exits."""
    path = Path(tempfile.mkdtemp(prefix=f"rnnkit-bench-{name}-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads"


def load() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def others_busy(interval: float = 0.3) -> float:
    """Fraction of the machine's CPU time used over `interval` (while this process sleeps)."""
    def snap():
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        t1, i1 = snap()
        time.sleep(interval)
        t2, i2 = snap()
    except (OSError, IndexError, ValueError):
        return 0.0
    return 1 - (i2 - i1) / max(1, t2 - t1)


def wait_quiet(max_wait: float = float(os.environ.get("RNNKIT_BENCH_WAIT", 120)), threshold: float = 0.15) -> None:
    """Wait (up to max_wait s) until other processes leave the CPUs mostly idle."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline and others_busy() > threshold:
        pass


def header(title: str) -> None:
    print(f"\n== {title} ==\n  {machine()}; {load()}", flush=True)


def matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    """fp32 GFLOP/s of an n x n matmul (best of `repeats`), with the process's torch threads."""
    import math

    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9
