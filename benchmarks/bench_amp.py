"""Should `auto` train in bfloat16 on a CPU that has bf16 instructions? The same corpora as
bench_corpora.py, each trained by `rnnkit train FILE --time_budget B` twice in this run,
interleaved: as a user runs it (float32 on a CPU) and with `--amp bf16` (about 1.7x the
steps, each a little less exact). Prints both held-out losses, as `rnnkit sample` and
`rnnkit score` see them (with the n-gram mixture where the run kept one), and their
difference.

    python benchmarks/bench_amp.py --corpora names pysource cjk --budget 120
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench_corpora import BUDGET, DEFAULT_CACHE, Row, read_rnnkit_run, rnnkit_train
from common import Result, header, wait_quiet, workdir
from corpora import all_corpora

SIDES = {"float32": (), "bf16": ("--amp", "bf16")}


def measure(corpus, cache: Path, base: Path, budget: float) -> dict[str, Row]:
    text = corpus.build(cache)
    rows = {}
    for side, extra in SIDES.items():
        wait_quiet()
        run = rnnkit_train(corpus, text, base / side, budget, extra)
        rows[side] = row = Row(corpus.name, corpus.what, corpus.tokens, text.stat().st_size)
        read_rnnkit_run(run, row)
        print(f"  {corpus.name} {side}: {row.rnnkit:.3f} (network {row.rnnkit_best:.3f}, {row.rnnkit_iterations} "
              f"iterations, {row.auto_choice.get('num_layers')}x{row.auto_choice.get('rnn_size')})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[Result]:
    from rnnkit.core.device import cpu_bf16_rnn_failure, cpu_has_bf16_math

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=BUDGET)
    ap.add_argument("--corpora", nargs="+", default=["names", "tiny", "pysource", "cjk"])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    header(f"amp: rnnkit train FILE --time_budget {args.budget:g}s, float32 vs --amp bf16")
    failure = cpu_bf16_rnn_failure("lstm")
    if not cpu_has_bf16_math() or failure:
        print(f"  this CPU cannot train in bf16 ({failure or 'no bf16 instructions'}): nothing to compare")
        return []
    base, results = workdir("amp"), []
    for corpus in (c for c in all_corpora(False) if c.name in args.corpora):
        rows = measure(corpus, args.cache, base, args.budget)
        f32, bf16 = rows["float32"].rnnkit, rows["bf16"].rnnkit
        print(f"  {corpus.name}: bf16 - float32 = {bf16 - f32:+.3f} nats per token", flush=True)
        results.append(Result("amp", f"{corpus.name}: bf16 vs float32", bf16, f32, "nats", "(measured, no target)", None))
    return results


if __name__ == "__main__":
    for r in main(sys.argv[1:]):
        print(r.line())
