"""Training on a busy machine: the iterations rnnkit makes while another process holds one
core, against the same run on the idle machine, and against the thread count fixed to all
cores (what rnnkit did before it measured threads).

    python benchmarks/bench_busy.py                 # 40 s budgets
    python benchmarks/bench_busy.py --budget 20s    # shorter

Target (issue #21): with one of two cores busy, at least 40% of the idle run's iterations.
The corpus is this Python's standard library (rnnkit.text.stdlib), the flags a user types:
`rnnkit train stdlib.txt --time_budget B`; the same network is then kept for the other runs
so that only the machine's load and the threads differ.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Result, header, wait_quiet, workdir  # noqa: E402

from rnnkit.runs.metrics import read_metrics  # noqa: E402
from rnnkit.text.stdlib import stdlib_corpus  # noqa: E402


def spin(stop) -> None:
    """Keeps one core busy (a pure-Python loop, as another program would)."""
    os.sched_setaffinity(0, {os.cpu_count() - 1})
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2**31


def train(corpus: Path, run: Path, budget: str, *flags: str) -> dict:
    cmd = [sys.executable, "-m", "rnnkit", "train", str(corpus), "--checkpoint_name", str(run / "ck"),
           "--time_budget", budget, "--progress", "none", "--quiet", *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if done.returncode != 0:
        raise SystemExit(f"training failed: {done.stderr[-2000:]}")
    config = json.loads((run / "config.json").read_text())
    iterations = max(r["iteration"] for r in read_metrics(run) if "iteration" in r)
    return {"iterations": iterations, "config": config}


def busy(fn, *args):
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        return fn(*args)
    finally:
        stop.set()
        spinner.join(5)


def main(argv: list[str] | None = None) -> list[Result]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="40s")
    args = ap.parse_args(argv)
    header(f"training with one core busy ({args.budget} budgets)")
    if (os.cpu_count() or 1) < 2:
        print("  skipped: this machine has one core")
        return []
    work = workdir("busy")
    corpus = stdlib_corpus(work / "stdlib.txt")
    wait_quiet()
    idle = train(corpus, work / "idle", args.budget)
    shape = ["--rnn_size", str(idle["config"]["rnn_size"]), "--num_layers", str(idle["config"]["num_layers"])]
    measured = busy(train, corpus, work / "busy", args.budget, *shape)
    fixed = busy(train, corpus, work / "fixed", args.budget, *shape, "--threads", str(os.cpu_count()))
    chosen = measured["config"].get("threads")
    print(f"  network 2x{idle['config']['rnn_size']}; idle: {idle['iterations']} iterations "
          f"({idle['config'].get('threads')} threads); one core busy: {measured['iterations']} with measured threads "
          f"(started on {chosen}), {fixed['iterations']} with --threads {os.cpu_count()}")
    share = measured["iterations"] / idle["iterations"]
    results = [
        Result("busy", "iterations, one core busy / idle", measured["iterations"], idle["iterations"], "iters",
               ">= 0.40x idle", share >= 0.40),
        Result("busy", "iterations, fixed threads, one core busy", fixed["iterations"], idle["iterations"], "iters",
               "(the old behaviour)", None),
    ]
    for r in results:
        print(r.line())
    return results


if __name__ == "__main__":
    main()
