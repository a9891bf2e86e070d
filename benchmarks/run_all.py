"""Run issue 8's benchmarks one after another (`make bench`) and print a summary table.

    python benchmarks/run_all.py            # the full run, about 70 minutes on 2 cores
    python benchmarks/run_all.py --quick    # shorter runs (quality: 30 s budgets, no target)
    python benchmarks/run_all.py --only sample preprocess
    python benchmarks/run_all.py --long     # also the 15-minute quality budget (target 1.42)
    python benchmarks/run_all.py --only corpora   # seven corpora vs bare loops, n-grams, makemore
                                                  # (~55 minutes of the full run; --quick ~20)

Each benchmark measures its own reference in the same run; run nothing else heavy
meanwhile (each side waits up to two minutes for the CPUs to go quiet first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_busy  # noqa: E402
import bench_corpora  # noqa: E402
import bench_export  # noqa: E402
import bench_preprocess  # noqa: E402
import bench_quality  # noqa: E402
import bench_score  # noqa: E402
import bench_slow_demo  # noqa: E402
import bench_sample  # noqa: E402
import bench_train_speed  # noqa: E402
from common import machine  # noqa: E402

BENCHMARKS = {
    "train_speed": bench_train_speed.main,
    "sample": bench_sample.main,
    "preprocess": bench_preprocess.main,
    "quality": bench_quality.main,
    "corpora": bench_corpora.main,
    "export": bench_export.main,
    "score": bench_score.main,
    "busy": lambda quick: bench_busy.main(["--budget", "20s" if quick else "40s"]),
    "slow_demo": lambda quick: bench_slow_demo.main(["--budget", "30s" if quick else "120s"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs; quality targets are not judged")
    ap.add_argument("--long", action="store_true", help="also run the 15-minute quality budget")
    ap.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    args = ap.parse_args()
    started = time.perf_counter()
    results = []
    for name in args.only or BENCHMARKS:
        results += BENCHMARKS[name](args.quick)
    if args.long:
        results += bench_quality.main(long=True)
    print(f"\n== summary ({machine()}; {time.perf_counter() - started:.0f} s) ==")
    print(f"  {'figure':<42} {'rnnkit':>10} {'unit':<8} {'reference':<24} {'ratio':>7}  target")
    for r in results:
        print(r.line())
    missed = [r.figure for r in results if r.met is False]
    print(f"\n  targets not met: {', '.join(missed)}" if missed else "\n  every judged target met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
