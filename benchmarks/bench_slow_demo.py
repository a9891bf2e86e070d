"""`make demo` on the slowest machine this one can imitate, against the bare loops trained there.

    python benchmarks/bench_slow_demo.py                  # 2-minute budgets, as make demo
    python benchmarks/bench_slow_demo.py --budget 60s     # shorter
    python benchmarks/bench_slow_demo.py --full_isa       # keep this CPU's AVX-512 / bf16 kernels

The slow machine: one core (every process below is pinned to core 0), a busy process on
the other, and PyTorch's kernels limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2,
ATEN_CPU_CAPABILITY=avx2) as on the AVX2-only laptop of issue #21. In those conditions
`rnnkit demo` runs (what `make demo` runs), then the bare 2x128 and 2x256 LSTM loops of
bench_corpora, each for the same wall clock, on the demo's split and the validation tokens
the demo evaluated.

Target (#21): the demo's best validation loss, with its n-gram as sample reads it, no worse
than the better bare loop's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_busy import busy
from common import Result, header, wait_quiet, workdir

ROOT = Path(__file__).resolve().parents[1]
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
# throughput over a second or more, so that it sees the throttle's pauses as a program does
MATMUL = ("import time, torch; a = torch.randn(1024, 1024); a @ a; t0 = time.perf_counter()\n"
          "for _ in range(40): a @ a\nprint(40 * 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9)")


def on_core_zero(cmd: list[str], env: dict, share: float) -> str:
    """Runs cmd on core 0 alone, for `share` of each period (see throttle); its stdout."""
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=ROOT, start_new_session=True)
    os.sched_setaffinity(child.pid, {0})  # before its interpreter has started a thread; they inherit it
    stop = threading.Event()
    if share < 1:
        threading.Thread(target=throttle, args=(child.pid, share, stop), daemon=True).start()
    out, err = child.communicate()
    stop.set()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{err[-3000:]}")
    return out


def throttle(pid: int, share: float, stop: threading.Event, period: float = 0.02) -> None:
    """Lets the process group run `share` of every `period` and stops it for the rest: to anything
    that reads the wall clock, a CPU 1/share times slower (what cpulimit does)."""
    while not stop.is_set():
        try:
            os.killpg(pid, signal.SIGCONT)
            time.sleep(share * period)
            os.killpg(pid, signal.SIGSTOP)
            time.sleep((1 - share) * period)
        except ProcessLookupError:
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGCONT)


def demo_row(run: Path):
    """The demo's run read as bench_corpora reads an rnnkit run (losses, iterations, auto's choice, lanes)."""
    import bench_corpora as bc

    h5 = next(run.rglob("*.h5"))
    row = bc.Row("demo", "", "char", 0)
    bc.read_rnnkit_run(bc.RnnkitRun(run, h5, h5.with_suffix(".json"), seconds=0.0), row)
    return row


def bare_loops(run: Path, budget: float) -> None:
    """(Child process, on the slow machine.) bench_corpora's bare loops on the demo's split: one JSON line each."""
    import bench_corpora as bc
    import numpy as np

    from rnnkit.text.splits import open_split
    from rnnkit.text.vocab import Vocab
    from rnnkit.training.schedule import eval_interval

    h5 = next(run.rglob("*.h5"))
    train, val = np.asarray(open_split(h5, "train")), np.asarray(open_split(h5, "val"))
    lanes = bc.rnnkit_eval_lanes(train, val, demo_row(run))
    vocab = len(Vocab.load(h5.with_suffix(".json")))
    for width in (128, 256):
        r = bc.bare_lstm(train, lanes, vocab, width, budget, eval_interval(budget))
        print(json.dumps({"width": width, **r}), flush=True)


def main(argv: list[str] | None = None) -> list[Result]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="120s", help="the demo's budget and each bare loop's wall clock")
    ap.add_argument("--full_isa", action="store_true", help="do not limit PyTorch's kernels to AVX2")
    ap.add_argument("--cpu_share", type=float, default=0.35,
                    help="the share of each 20 ms core 0 runs: 0.35 makes one AVX2 core of this machine class about "
                         "as fast as the 32 GFLOP/s laptop of #21 (1 = the whole core)")
    ap.add_argument("--bare_child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from rnnkit.core.options import parse_duration

    budget = parse_duration(args.budget)
    if args.bare_child:
        bare_loops(args.bare_child, budget)
        return []
    isa = "this CPU's kernels" if args.full_isa else "kernels limited to AVX2"
    header(f"make demo on {args.cpu_share:g} of one core with the other busy, {isa} ({args.budget})")
    if (os.cpu_count() or 1) < 2:
        print("  skipped: this machine has one core")
        return []
    env = dict(os.environ, PYTHONUNBUFFERED="1", **({} if args.full_isa else AVX2_ONLY))
    run = workdir("slow-demo") / "demo"
    wait_quiet()
    gflops = float(busy(on_core_zero, [sys.executable, "-c", MATMUL], env, args.cpu_share))
    busy(on_core_zero, [sys.executable, "-m", "rnnkit", "demo", "--run_dir", str(run), "--time_budget", args.budget], env, args.cpu_share)
    lines = busy(on_core_zero, [sys.executable, __file__, "--budget", args.budget, "--bare_child", str(run)], env, args.cpu_share)
    bare = {r["width"]: r for r in map(json.loads, lines.splitlines())}
    demo = demo_row(run)
    score, best_bare = demo.rnnkit, min(r["best"] for r in bare.values())
    auto = demo.auto_choice
    print(f"  slow machine: fp32 matmul {gflops:.0f} GFLOP/s")
    print(f"  demo: auto {auto.get('num_layers')}x{auto.get('rnn_size')}, {demo.rnnkit_iterations:,} iterations; "
          f"best validation {score:.3f} nats/char with its n-gram (network alone {demo.rnnkit_best:.3f})")
    print(f"  auto's reason: {auto.get('reason')}")
    for width, r in bare.items():
        print(f"  bare 2x{width}: best {r['best']:.3f} (last {r['last']:.3f}), {r['iterations']:,} iterations")
    return [Result("slow_demo", "make demo on the slow machine (val loss)", score, best_bare, "nats",
                   "<= better bare loop", score <= best_bare)]


if __name__ == "__main__":
    for result in main():
        print(result.line())
