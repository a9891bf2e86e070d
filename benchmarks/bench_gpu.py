"""The GPU path: tokens/s of rnnkit's Trainer.step vs a bare nn.LSTM loop, CPU vs CUDA,
and the fraction of the GPU's peak FLOP/s reached.

Model: embedding(64) -> 2-layer LSTM (256 or 512 units) -> linear(V); batch 50 x seq 50;
fused Adam; on CUDA the mixed precision rnnkit picks (bf16 where supported, else fp16)
with a gradient scaler (autocast runs cuDNN's RNN kernel in fp16 either way). rnnkit's
step includes what its loop adds: the batch read from the HDF5 memmap into pinned
memory and copied asynchronously, gradient clipping, the on-device non-finite check and
the carried hidden state. The bare loop trains the same layers on one batch already on
the device and does nothing else.

FLOPs per trained token (a product of m x k by k x n matrices is 2mkn FLOPs; the
backward pass costs about twice the forward):
    forward  = sum over layers l of 2 * 4H * (I_l + H)  +  2 * H * V
    training = 3 * forward
with H the LSTM size, I_1 = 64 (the embedding), I_l = H above, V the vocabulary (65).
Gate nonlinearities, the embedding and the optimizer are left out (small next to these).
Fraction of peak = tokens/s * FLOPs per token / the GPU's dense bf16/fp16 tensor-core
peak (table below; --peak_tflops overrides). Small LSTMs are latency-bound: the
recurrence runs T steps one after another, so expect a small fraction; it grows with H.

usage: python benchmarks/bench_gpu.py [--sizes 256 512] [--cpu_steps 4] [--gpu_steps 60]
Without CUDA it measures the CPU rows, says so, and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from common import header, prepared_corpus, workdir

BATCH, SEQ, WORDVEC, LAYERS, LR = 50, 50, 64, 2, 2e-3
WARMUP = 2

# dense (no sparsity) bf16/fp16 tensor-core TFLOP/s, from the vendors' data sheets
PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
               "A10": 125.0, "V100": 125.0, "T4": 65.0, "RTX 4090": 165.0}


def flops_per_token(hidden: int, vocab: int, layers: int = LAYERS, wordvec: int = WORDVEC) -> float:
    forward = sum(2 * 4 * hidden * ((wordvec if l == 0 else hidden) + hidden) for l in range(layers))
    forward += 2 * hidden * vocab
    return 3.0 * forward


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_TFLOPS.items():  # longest names first where they overlap (H100 PCIe)
        if all(part in name for part in key.split()):
            return value
    return None


def seconds_per_step(step, device: torch.device, steps: int) -> float:
    for _ in range(WARMUP):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the steps queue work without waiting: wait once here
    return (time.perf_counter() - t) / steps


def rnnkit_step(h5: str, js: str, hidden: int, device: str, run_dir):
    from rnnkit.training import TrainConfig, Trainer

    cfg = TrainConfig(input_h5=h5, input_json=js, checkpoint_name=str(run_dir / "ck"), rnn_size=hidden,
                      num_layers=LAYERS, wordvec_size=WORDVEC, batch_size=BATCH, seq_length=SEQ, device=device,
                      progress="none", quiet=True)
    trainer = Trainer(cfg)
    lanes = trainer.data.train

    def step():
        i = trainer.state.iteration % len(lanes)
        x, y = (t.to(trainer.device, non_blocking=True) for t in lanes.batch(i))
        trainer.state.iteration += 1
        trainer.stepper.step(x, y, LR)

    return step, trainer


def bare_step(vocab: int, hidden: int, device: torch.device, amp):
    torch.manual_seed(0)
    embed = nn.Embedding(vocab + 1, WORDVEC).to(device)
    lstm = nn.LSTM(WORDVEC, hidden, LAYERS, batch_first=True).to(device)
    head = nn.Linear(hidden, vocab).to(device)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=LR, fused=True)
    scaler = torch.amp.GradScaler("cuda") if amp is not None else None
    x = torch.randint(1, vocab + 1, (BATCH, SEQ), device=device)
    y = torch.randint(0, vocab, (BATCH, SEQ), device=device)

    def step():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out, _ = lstm(embed(x))
            loss = F.cross_entropy(head(out).float().reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return step


def measure(h5: str, js: str, device: str, hidden: int, steps: int, run_dir) -> dict:
    step, trainer = rnnkit_step(h5, js, hidden, device, run_dir)
    vocab = len(trainer.vocab)
    tokens = BATCH * SEQ
    ours = tokens / seconds_per_step(step, trainer.device, steps)
    bare = tokens / seconds_per_step(bare_step(vocab, hidden, trainer.device, trainer.stepper.autocast_dtype), trainer.device, steps)
    amp = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.stepper.autocast_dtype]
    return {"device": device, "hidden": hidden, "amp": amp, "rnnkit": ours, "bare": bare,
            "flops_per_token": flops_per_token(hidden, vocab)}


def cudnn_kernels(h5: str, js: str, hidden: int, run_dir) -> list[str]:
    """Names of the CUDA kernels one rnnkit step launches, busiest first (to see cuDNN's RNN)."""
    from torch.profiler import ProfilerActivity, profile

    step, _ = rnnkit_step(h5, js, hidden, "cuda", run_dir)
    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, "device_time_total", 0), reverse=True)
    return [e.key[:90] for e in events[:6]]


def report(row: dict, cpu: dict | None, peak: float | None) -> None:
    achieved = row["rnnkit"] * row["flops_per_token"] / 1e12
    line = (f"  {row['device']:<5} 2x{row['hidden']:<4} {row['amp']:<5} rnnkit {row['rnnkit']:>10,.0f} tok/s   "
            f"bare {row['bare']:>10,.0f} tok/s   rnnkit/bare {row['rnnkit'] / row['bare']:.2f}x   {achieved:7.3f} TFLOP/s")
    if cpu is not None:
        line += f"   GPU/CPU {row['rnnkit'] / cpu['rnnkit']:.1f}x"
    if peak is not None and row["device"] == "cuda":
        line += f"   {100 * achieved / peak:.2f}% of {peak:g} TFLOP/s peak (bare {100 * row['bare'] * row['flops_per_token'] / 1e12 / peak:.2f}%)"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--cpu_steps", type=int, default=4)
    ap.add_argument("--gpu_steps", type=int, default=60)
    ap.add_argument("--peak_tflops", type=float, default=None, help="the GPU's dense bf16/fp16 peak, if not in the table")
    ap.add_argument("--skip_cpu", action="store_true")
    ap.add_argument("--profile", action="store_true", help="list the CUDA kernels of one step")
    args = ap.parse_args()
    header("GPU path: Trainer.step vs bare nn.LSTM, batch 50 x seq 50")
    print("  FLOPs per trained token = 3 * (sum_l 8H(I_l + H) + 2HV)", flush=True)
    work = workdir("gpu")
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work) -> None:
    h5, js = prepared_corpus(work)
    cpu_rows = {}
    if not args.skip_cpu:
        for hidden in args.sizes:
            cpu_rows[hidden] = measure(h5, js, "cpu", hidden, args.cpu_steps, work)
            report(cpu_rows[hidden], None, None)
    if not torch.cuda.is_available():
        print("no CUDA device here (torch.cuda.is_available() is False): the GPU rows and the fraction of peak "
              "were skipped; run this on a machine with an NVIDIA GPU", flush=True)
        sys.exit(0)
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or peak_tflops(name)
    print(f"  GPU: {name}; cuDNN {torch.backends.cudnn.version()} (enabled: {torch.backends.cudnn.enabled}); "
          f"peak {peak if peak else 'unknown (pass --peak_tflops)'} TFLOP/s dense bf16/fp16", flush=True)
    for hidden in args.sizes:
        report(measure(h5, js, "cuda", hidden, args.gpu_steps, work), cpu_rows.get(hidden), peak)
    if args.profile:
        print("  busiest kernels of one 2x%d step:" % args.sizes[-1])
        for k in cudnn_kernels(h5, js, args.sizes[-1], work):
            print("    " + k)


if __name__ == "__main__":
    main()
