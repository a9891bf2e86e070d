"""Order-only signal: the LSTM must find it, a bag of events must not.

Generates the synthetic set of `rnnkit classify synth` (label 1 iff event A comes before
event B; both classes hold one A and one B among fillers), trains the classifier with its
defaults on a seeded split, and checks the targets of issue 6 on the test split:
LSTM ROC AUC >= 0.95, bag-of-events logistic regression ROC AUC <= 0.6.

    python benchmarks/bench_classifier.py            # full size, a few minutes on 2 CPU cores
    python benchmarks/bench_classifier.py --sequences 1000 --max_epochs 4   # quicker
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnkit.classify.config import TrainConfig
from rnnkit.classify.events import EventSource
from rnnkit.classify.predict import predict
from rnnkit.classify.synth import synth_sequences, write_synth_csv
from rnnkit.classify.train import train_classifier

LSTM_TARGET, BAG_LIMIT = 0.95, 0.6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sequences", type=int, default=5000)
    p.add_argument("--min_events", type=int, default=20)
    p.add_argument("--max_events", type=int, default=150)
    p.add_argument("--max_epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.csv"
        t0 = time.time()
        seqs = synth_sequences(args.sequences, args.seed, 0.3, args.min_events, args.max_events)
        n_events = write_synth_csv(events, seqs, args.seed)
        synth_s = time.time() - t0
        cfg = TrainConfig(
            EventSource(str(events), sequence_col="session_id", order_col="timestamp"),
            run_dir=str(Path(tmp) / "run"), max_epochs=args.max_epochs, seed=args.seed, device=args.device,
        )
        t0 = time.time()
        result = train_classifier(cfg)
        total_s = time.time() - t0
        t0 = time.time()
        rows = predict(result.run_dir, str(events), device=args.device)
        predict_s = time.time() - t0

    test = result.report["metrics"]["test"]
    lstm, bag = test["lstm"]["roc_auc"], test["bag_of_events"]["roc_auc"]
    seconds = result.report["seconds"]
    print()
    print(f"data: {args.sequences} sequences, {n_events} events ({args.min_events}-{args.max_events} per sequence), "
          f"test split {test['lstm']['n']} sequences; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}")
    print(f"test ROC AUC   LSTM {lstm:.4f} (target >= {LSTM_TARGET})   "
          f"bag-of-events {bag:.4f} (target <= {BAG_LIMIT})   majority {test['majority']['roc_auc']:.4f}")
    print(f"test PR AUC    LSTM {test['lstm']['pr_auc']:.4f}   bag-of-events {test['bag_of_events']['pr_auc']:.4f}   "
          f"majority {test['majority']['pr_auc']:.4f}")
    print(f"times: synth {synth_s:.1f}s, bag-of-events fit {seconds['bag_of_events']:.1f}s, "
          f"LSTM {result.report['epochs']} epochs {seconds['lstm']:.1f}s, train command total {total_s:.1f}s, "
          f"predict {len(rows)} sequences {predict_s:.1f}s")
    ok = lstm >= LSTM_TARGET and bag <= BAG_LIMIT
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
