"""Training throughput: `rnnkit train` vs a bare nn.LSTM loop of the same size.

Both train embedding(64) -> LSTM -> linear with cross-entropy, Adam 2e-3 and gradient
value clipping at 5 on batch 50 x seq 50 of tinyshakespeare, carrying the hidden state
across batches. rnnkit's figure is its whole training loop as a user runs it (data read
from the HDF5 memmap, non-finite checks, schedule, metrics.jsonl every iteration), timed
from the `time` it records per iteration; the bare loop holds the data as one tensor and
does nothing else. The first iterations of each run are not counted (warm-up).

The target compares like with like: rnnkit in float32 (--amp off, the CPU default)
against the float32 bare loop. rnnkit with --amp bf16 (bfloat16 mixed precision, fast on
a CPU with bf16 instructions) is also shown, against the same float32 bare loop.

Target (issue 8): rnnkit >= 0.97x the bare loop, at 2x256 and 2x512.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from common import Result, header, prepared_corpus, wait_quiet, workdir

BATCH, SEQ, WORDVEC, LR, CLIP = 50, 50, 64, 2e-3, 5.0
WARMUP = 3


def bare_loop(train_ids: np.ndarray, vocab_size: int, rnn_size: int, layers: int, iters: int) -> float:
    """Tokens/s of the plainest PyTorch loop that trains the same model."""
    torch.manual_seed(0)
    embed = nn.Embedding(vocab_size + 1, WORDVEC)
    lstm = nn.LSTM(WORDVEC, rnn_size, layers, batch_first=True)
    head = nn.Linear(rnn_size, vocab_size)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=LR)
    lane = (len(train_ids) - 1) // BATCH
    data = torch.from_numpy(train_ids.astype(np.int64))
    xs = data[: BATCH * lane].view(BATCH, lane)
    ys = data[1: BATCH * lane + 1].view(BATCH, lane) - 1
    state, t0 = None, 0.0
    for i in range(iters + WARMUP):
        if i == WARMUP:
            t0 = time.perf_counter()
        j = (i * SEQ) % (lane - SEQ)
        x, y = xs[:, j:j + SEQ], ys[:, j:j + SEQ]
        out, state = lstm(embed(x), state)
        loss = F.cross_entropy(head(out).reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, CLIP)
        opt.step()
        state = tuple(s.detach() for s in state)
    return iters * BATCH * SEQ / (time.perf_counter() - t0)


def rnnkit_loop(h5: str, js: str, rnn_size: int, layers: int, iters: int, amp: str) -> float:
    """Tokens/s of rnnkit's own training loop, from the per-iteration times it records."""
    from rnnkit.runs.metrics import read_metrics
    from rnnkit.training import TrainConfig, train

    run = workdir("train-speed")
    train(TrainConfig(
        input_h5=h5, input_json=js, checkpoint_name=str(run / "checkpoint"), batch_size=BATCH, seq_length=SEQ,
        wordvec_size=WORDVEC, rnn_size=rnn_size, num_layers=layers, learning_rate=LR, grad_clip=CLIP,
        max_iters=iters + WARMUP, checkpoint_every=0, progress="none", quiet=True, amp=amp,
    ))
    times = {r["iteration"]: r["time"] for r in read_metrics(run) if "train_loss" in r}
    return iters * BATCH * SEQ / (times[iters + WARMUP] - times[WARMUP])


def main(quick: bool = False) -> list[Result]:
    from rnnkit.text.splits import open_split
    from rnnkit.text.vocab import Vocab

    header("training throughput: rnnkit train vs a bare nn.LSTM loop (batch 50 x seq 50)")
    h5, js = prepared_corpus(workdir("corpus"))
    train_ids = np.asarray(open_split(h5, "train"))
    vocab_size = len(Vocab.load(js))
    results = []
    for rnn_size, iters in ((256, 40), (512, 15)):
        iters = iters // 2 if quick else iters
        reps = 2 if quick else 4
        ours, bf16, bare = [], [], []
        for _ in range(reps):  # interleaved, so a burst of other load hits every side alike
            wait_quiet()
            bare.append(bare_loop(train_ids, vocab_size, rnn_size, 2, iters))
            wait_quiet()
            ours.append(rnnkit_loop(h5, js, rnn_size, 2, iters, "off"))
            wait_quiet()
            bf16.append(rnnkit_loop(h5, js, rnn_size, 2, iters, "bf16"))
        print(f"  2x{rnn_size}: bare {', '.join(f'{v:,.0f}' for v in bare)} tokens/s; "
              f"rnnkit --amp off {', '.join(f'{v:,.0f}' for v in ours)}; "
              f"rnnkit --amp bf16 {', '.join(f'{v:,.0f}' for v in bf16)}; "
              f"median ratio (--amp off) {statistics.median(ours) / statistics.median(bare):.3f}")
        r = Result("train_speed", f"train 2x{rnn_size} --amp off tokens/s (best of {reps})", max(ours), max(bare),
                   "tok/s", ">= 0.97x", None)
        r.met = r.ratio >= 0.97
        print(r.line(), flush=True)
        d = Result("train_speed", f"train 2x{rnn_size} --amp bf16 tokens/s", max(bf16), max(bare),
                   "tok/s", "(shown)", None)
        print(d.line(), flush=True)
        results += [r, d]
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations and repeats")
    main(ap.parse_args().quick)
