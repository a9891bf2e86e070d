"""Sampling speed: rnnkit's Generator vs a bare one-character-at-a-time nn.LSTM loop.

The model is a 2x256 LSTM with 64-dim embeddings over tinyshakespeare's 65 characters
(its weights do not change the speed). The reference is the plain loop: embedding ->
nn.LSTM -> linear on one character, softmax, torch.multinomial, .item(), repeat; for 32
streams the same loop on a batch of 32 (one .tolist() per step). rnnkit's figure is
`Generator.generate` end to end (weights arranged, start text read, text decoded), with
temperature 1 sampling. "torch path" is rnnkit's own loop without the CPU step
(Generator.fast_path = False), for comparison. For 32 streams rnnkit is also timed with
PyTorch held to one thread (the oneDNN products run on PyTorch's threads).

Targets (issue 8): >= 10,000 characters/s for one stream, >= 100,000 across 32 streams.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
from common import Result, corpus_text, header, wait_quiet

RNN_SIZE, LAYERS, WORDVEC = 256, 2, 64


def bare_loop(embed: nn.Embedding, lstm: nn.LSTM, head: nn.Linear, streams: int, length: int) -> float:
    """Characters/s of the plain loop."""
    with torch.no_grad():
        ids, state = torch.ones(streams, 1, dtype=torch.long), None
        t0 = time.perf_counter()
        for _ in range(length):
            out, state = lstm(embed(ids), state)
            probs = torch.softmax(head(out[:, -1]), -1)
            ids = torch.multinomial(probs, 1) + 1
            if streams == 1:
                ids.item()
            else:
                ids.tolist()
        return streams * length / (time.perf_counter() - t0)


def rnnkit_generate(generator, streams: int, length: int, fast: bool = True) -> float:
    from rnnkit.sampling.generator import SampleOptions

    generator.fast_path = fast
    t0 = time.perf_counter()
    generator.generate(SampleOptions(length=length, num_samples=streams, seed=0, start_text="ROMEO:"))
    return streams * length / (time.perf_counter() - t0)


def main(quick: bool = False) -> list[Result]:
    from rnnkit.model.language_model import LanguageModel, ModelConfig
    from rnnkit.sampling.generator import Generator
    from rnnkit.text.vocab import Vocab

    header("sampling: rnnkit Generator vs a bare one-character-at-a-time nn.LSTM loop (2x256 LSTM)")
    vocab = Vocab(sorted(set(corpus_text())))
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(len(vocab), "lstm", WORDVEC, RNN_SIZE, LAYERS))
    gen = Generator(model, vocab)
    print(f"  model: {LAYERS}x{RNN_SIZE} LSTM, wordvec {WORDVEC}, vocabulary {len(vocab)}, "
          f"{model.num_parameters():,} parameters")
    reps = 2 if quick else 3
    results = []
    for streams, length, target in ((1, 2000, 10_000), (32, 500, 100_000)):
        length = length // 2 if quick else length
        ours, torch_path, bare = [], [], []
        for _ in range(reps):
            wait_quiet()
            bare.append(bare_loop(model.embed, model.rnn, model.head, streams, length // 4))
            wait_quiet()
            ours.append(rnnkit_generate(gen, streams, length))
            torch_path.append(rnnkit_generate(gen, streams, length // 4, fast=False))
        gen.fast_path = True
        print(f"  {streams} stream(s): bare {max(bare):,.0f}, rnnkit torch path {max(torch_path):,.0f}, "
              f"rnnkit {', '.join(f'{v:,.0f}' for v in ours)} chars/s")
        if streams > 1:  # the same on one core, for a machine whose other core is busy
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            wait_quiet()
            one = max(rnnkit_generate(gen, streams, length) for _ in range(reps))
            torch.set_num_threads(threads)
            print(f"  {streams} streams, one thread: rnnkit {one:,.0f} chars/s")
        r = Result("sample", f"sample chars/s, {streams} stream{'s' * (streams > 1)} (best of {reps})",
                   max(ours), max(bare), "chars/s", f">= {target:,}", max(ours) >= target)
        print(r.line(), flush=True)
        results.append(r)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter samples, fewer repeats")
    main(ap.parse_args().quick)
