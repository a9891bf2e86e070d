"""The event classifier's targets (issue 15), measured:

  binary   `classify synth` (label 1 iff event A comes before event B; both classes hold one A
           and one B among fillers): LSTM test ROC AUC >= 0.95, bag-of-events <= 0.6.
  classes  `classify synth --classes 5` (the label is which of 5 events, each held once by
           every sequence, comes first): LSTM test accuracy >= 0.95, the bag-of-events
           logistic regression within 0.1 of chance (1/5).
  load     a generic CSV of 10 million events in 1 million sequences (session_id, timestamp,
           event, value, label; in time order, sessions interleaved as an export has them)
           loads with a peak resident memory under 1.5 GB and at >= 1 million events/s. The
           load runs in a fresh process, so its peak is the reader's (Python, NumPy and
           pyarrow included).

    python benchmarks/bench_classifier.py                       # all three, ~10 minutes on 2 CPU cores
    python benchmarks/bench_classifier.py --only load --load_events 2000000 --load_sequences 200000
    python benchmarks/bench_classifier.py --only binary --sequences 1000 --max_epochs 4   # quicker, may miss
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.classify.config import TrainConfig
from rnnkit.classify.events import EventSource
from rnnkit.classify.predict import predict
from rnnkit.classify.synth import synth_k_sequences, synth_sequences, write_synth_csv
from rnnkit.classify.train import train_classifier

LSTM_AUC, BAG_AUC = 0.95, 0.6
LSTM_ACCURACY, BAG_FROM_CHANCE = 0.95, 0.1
PEAK_MB, EVENTS_PER_S = 1536, 1_000_000


def train_on(events: Path, folder: Path, args: argparse.Namespace):
    cfg = TrainConfig(EventSource(str(events), sequence_col="session_id", order_col="timestamp"),
                      run_dir=str(folder / "run"), max_epochs=args.max_epochs, seed=args.seed, device=args.device,
                      rnn_size=args.rnn_size)
    t0 = time.time()
    result = train_classifier(cfg)
    train_s = time.time() - t0
    if result.report is None:
        sys.exit(f"interrupted: {result.checkpoint}")
    t0 = time.time()
    n = len(predict(result.run_dir, str(events), device=args.device).sequence_ids)
    return result, f"train command {train_s:.1f}s (bag-of-events fit {result.report['seconds']['bag_of_events']:.1f}s, " \
                   f"LSTM {result.report['epochs']} epochs {result.report['seconds']['lstm']:.1f}s), " \
                   f"predict {n} sequences {time.time() - t0:.1f}s"


def bench_binary(args: argparse.Namespace, folder: Path) -> bool:
    events = folder / "binary.csv"
    seqs = synth_sequences(args.sequences, args.seed, 0.3, args.min_events, args.max_events)
    n_events = write_synth_csv(events, seqs, args.seed)
    result, times = train_on(events, folder / "binary", args)
    test = result.report["metrics"]["test"]
    lstm, bag = test["lstm"]["roc_auc"], test["bag_of_events"]["roc_auc"]
    ok = lstm >= LSTM_AUC and bag <= BAG_AUC
    print(f"\n[binary] {args.sequences} sequences, {n_events} events, test split {test['lstm']['n']}")
    print(f"[binary] test ROC AUC  LSTM {lstm:.4f} (target >= {LSTM_AUC})  bag-of-events {bag:.4f} (target <= {BAG_AUC})  "
          f"majority {test['majority']['roc_auc']:.4f}")
    print(f"[binary] test PR AUC   LSTM {test['lstm']['pr_auc']:.4f}  bag-of-events {test['bag_of_events']['pr_auc']:.4f}")
    print(f"[binary] {times}\n[binary] {'PASS' if ok else 'FAIL'}")
    return ok


def bench_classes(args: argparse.Namespace, folder: Path) -> bool:
    events = folder / "classes.csv"
    seqs = synth_k_sequences(args.sequences, args.classes, args.seed, args.min_events, args.max_events)
    n_events = write_synth_csv(events, seqs, args.seed)
    result, times = train_on(events, folder / "classes", args)
    test, chance = result.report["metrics"]["test"], 1 / args.classes
    lstm, bag = test["lstm"]["accuracy"], test["bag_of_events"]["accuracy"]
    ok = lstm >= LSTM_ACCURACY and abs(bag - chance) <= BAG_FROM_CHANCE
    print(f"\n[classes] {args.classes} classes, {args.sequences} sequences, {n_events} events, test split {test['lstm']['n']}")
    print(f"[classes] test accuracy  LSTM {lstm:.4f} (target >= {LSTM_ACCURACY})  bag-of-events {bag:.4f} "
          f"(target {chance:.2f} +- {BAG_FROM_CHANCE})  majority {test['majority']['accuracy']:.4f}")
    print(f"[classes] test macro F1  LSTM {test['lstm']['macro_f1']:.4f}  bag-of-events {test['bag_of_events']['macro_f1']:.4f}; "
          f"one-vs-rest ROC AUC  LSTM {test['lstm']['roc_auc']:.4f}  bag-of-events {test['bag_of_events']['roc_auc']:.4f}")
    print(f"[classes] {times}\n[classes] {'PASS' if ok else 'FAIL'}")
    return ok


def write_big_csv(path: Path, n_events: int, n_sequences: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    session = rng.integers(0, n_sequences, n_events)
    session[:n_sequences] = np.arange(n_sequences)  # every sequence has an event
    session = session[rng.permutation(n_events)] + 1_000_000
    classes = np.array(["churn", "stay", "upgrade", "downgrade", "pause"])
    table = pa.table({"session_id": session,
                      "timestamp": np.round(1.7e9 + np.sort(rng.uniform(0, 30 * 86_400, n_events)), 3),
                      "event": np.array([f"page_{i}" for i in range(50)])[rng.integers(0, 50, n_events)],
                      "value": np.round(rng.normal(size=n_events), 3),
                      "label": classes[session % len(classes)]})
    pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))


# The peak is VmHWM, which starts afresh with the new program; ru_maxrss would carry over
# the parent's resident size from before the fork (Linux keeps it across execve).
LOAD = """
import json, resource, sys, time
from rnnkit.classify.events import EventSource
from rnnkit.classify.read import load_table
t0 = time.perf_counter()
table, _ = load_table(EventSource(sys.argv[1], sequence_col="session_id", order_col="timestamp"))
seconds = time.perf_counter() - t0
try:
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "events": int(table.offsets[-1]), "sequences": len(table.sequence_ids),
                  "classes": len(set(table.labels)), "peak_mb": peak}))
"""


def bench_load(args: argparse.Namespace, folder: Path) -> bool:
    path = folder / "big.csv"
    t0 = time.time()
    write_big_csv(path, args.load_events, args.load_sequences, args.seed)
    print(f"\n[load] wrote {args.load_events:,} events of {args.load_sequences:,} sequences, "
          f"{path.stat().st_size / 1e6:.0f} MB, in {time.time() - t0:.1f}s; load average {os.getloadavg()[0]:.2f}")
    run = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, check=True)
    m = json.loads(run.stdout)
    rate = m["events"] / m["seconds"]
    ok = m["peak_mb"] < PEAK_MB and rate >= EVENTS_PER_S and m["events"] == args.load_events
    print(f"[load] read {m['events']:,} events, {m['sequences']:,} sequences, {m['classes']} classes in "
          f"{m['seconds']:.1f}s: {rate / 1e6:.2f} million events/s (target >= {EVENTS_PER_S / 1e6:g}); peak "
          f"{m['peak_mb']:.0f} MB (target < {PEAK_MB}); load average after {os.getloadavg()[0]:.2f}")
    print(f"[load] {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("binary", "classes", "load"), action="append")
    p.add_argument("--sequences", type=int, default=5000)
    p.add_argument("--min_events", type=int, default=20)
    p.add_argument("--max_events", type=int, default=150)
    p.add_argument("--max_epochs", type=int, default=10)
    p.add_argument("--rnn_size", type=int, default=64)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--load_events", type=int, default=10_000_000)
    p.add_argument("--load_sequences", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {args.device}")
    benches = {"binary": bench_binary, "classes": bench_classes, "load": bench_load}
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: benches[name](args, Path(tmp)) for name in args.only or benches}
    print("\n" + "  ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
