"""Scoring speed: `Generator.score` against the trainer's own validation pass, same model, same text.

The model is a 2x256 LSTM with 64-dim embeddings and random weights (they do not change the
speed) over the vocabulary of this Python's standard-library source (rnnkit.text.stdlib), and
the text is that source. The reference is `Trainer.evaluate` itself, run on the text cut into
torch-rnn's default lanes (batch 50 x seq 50, the validation pass of a default run); rnnkit's
figure is `Generator.score` end to end (text encoded, lanes cut, warm-ups, every token
counted). Both run in float32 under the same number of threads, interleaved, best of each;
`--amp bf16` is shown beside them where the CPU has bfloat16 instructions.

Target (issue 17): >= 200,000 tokens/s on this CPU.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from types import SimpleNamespace

import torch
from common import Result, header, matmul_gflops, wait_quiet

RNN_SIZE, LAYERS, WORDVEC = 256, 2, 64
VAL_BATCH, VAL_SEQ = 50, 50  # TrainConfig's defaults


def timed(run) -> tuple[float, float, float]:
    """(tokens/s by the wall clock, tokens/s by this process's CPU time, nats/token) of run()
    -> (tokens, nats/token). CPU time is what other jobs on the machine disturb least."""
    t0, c0 = time.perf_counter(), time.process_time()
    tokens, nats = run()
    return tokens / (time.perf_counter() - t0), tokens / (time.process_time() - c0), nats


def validation_pass(model, ids, batch: int = VAL_BATCH, seq: int = VAL_SEQ):
    """Trainer.evaluate itself over `ids` cut into batch x seq lanes, on the attributes it reads."""
    from rnnkit.text.splits import Lanes
    from rnnkit.training.trainer import Trainer

    lanes = Lanes(ids, batch, seq)
    trainer = SimpleNamespace(model=model, device=torch.device("cpu"), data=SimpleNamespace(val=lanes, val_items=None),
                              stepper=SimpleNamespace(autocast=nullcontext))
    return timed(lambda: (len(lanes) * batch * seq, Trainer.evaluate(trainer)))


def score(generator, text: str, amp: str = "off"):
    def run():
        result = generator.score(text, amp=amp)
        return result.tokens, result.nats_per_token
    return timed(run)


def main(quick: bool = False) -> list[Result]:
    from rnnkit.core.device import cpu_bf16_rnn_failure, cpu_has_bf16_math
    from rnnkit.model.language_model import LanguageModel, ModelConfig
    from rnnkit.sampling.generator import Generator
    from rnnkit.text.stdlib import stdlib_text
    from rnnkit.text.vocab import Vocab

    header("scoring: rnnkit score (Generator.score) vs the trainer's validation pass (2x256 LSTM)")
    text = stdlib_text(100_000 if quick else 200_000)  # short runs, many of them: some fall in quiet moments
    vocab = Vocab.build(sorted(set(text)), "char")
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(len(vocab), "lstm", WORDVEC, RNN_SIZE, LAYERS)).eval()
    generator = Generator(model, vocab)
    ids = vocab.encode(text)
    print(f"  model: {LAYERS}x{RNN_SIZE} LSTM, wordvec {WORDVEC}, vocabulary {len(vocab)}, "
          f"{model.num_parameters():,} parameters; text: {len(ids):,} tokens of standard-library source")
    sides = {"validation pass (50 x 50 lanes)": lambda: validation_pass(model, ids),
             "rnnkit score": lambda: score(generator, text)}
    if cpu_has_bf16_math() and cpu_bf16_rnn_failure("lstm") is None:
        sides["rnnkit score --amp bf16"] = lambda: score(generator, text, amp="bf16")
    runs: dict[str, list] = {name: [] for name in sides}
    for _ in range(3 if quick else 5):
        for name, measure in sides.items():
            wait_quiet()
            runs[name].append(measure())
    for name, r in runs.items():
        print(f"  {name:<32} wall {', '.join(f'{w:,.0f}' for w, _, _ in r)} tokens/s; best by CPU time "
              f"{max(c for _, c, _ in r):,.0f}; {r[0][2]:.4f} nats/token")
    best = {name: max(w for w, _, _ in r) for name, r in runs.items()}
    cpu = {name: max(c for _, c, _ in r) for name, r in runs.items()}
    ours, ref = best["rnnkit score"], best["validation pass (50 x 50 lanes)"]
    print(f"  by CPU time: score / validation pass = {cpu['rnnkit score'] / cpu['validation pass (50 x 50 lanes)']:.2f}x")
    flops = 2 * model.num_parameters()  # a multiply-add per weight per token (the embedding's are lookups: less)
    peak = matmul_gflops() * 1e9
    print(f"  the network does ~{flops / 1e6:.2f} MFLOP per token; at this machine's fp32 matmul rate "
          f"({peak / 1e9:.0f} GFLOP/s, 1024 x 1024) that is at most {peak / flops:,.0f} tokens/s: score runs at "
          f"{ours / (peak / flops):.0%} of it")
    r = Result("score", f"score tokens/s (best of {len(runs['rnnkit score'])})", ours, ref, "tokens/s", ">= 200,000",
               ours >= 200_000)
    print(r.line(), flush=True)
    return [r]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a shorter text, fewer repeats")
    main(ap.parse_args().quick)
