"""`rnnkit classify train | predict | eval | synth`: an LSTM classifier for event sequences.

Thin: each handler turns flags into a config and calls into rnnkit.classify.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..errors import ConfigError, OutputExistsError
from .common import flag, new_parser

FORMATS = ("generic", "yoochoose")


def _columns(value: str) -> list[str]:
    """'a,b' -> ['a', 'b']; '' or 'none' -> [] (no such fields)."""
    if value.strip().lower() in ("", "none"):
        return []
    return [c.strip() for c in value.split(",") if c.strip()]


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; add --force to overwrite it or pick another path")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: folder {path.parent} does not exist; create it first or pick another path")


def _add_events_flags(p: argparse.ArgumentParser, labels: bool, schema: bool) -> None:
    flag(p, "events", required=True, metavar="CSV",
         help="events, one row per event (YOOCHOOSE: the clicks file)")
    if labels:
        flag(p, "labels", metavar="CSV", help="labels in a separate CSV keyed by the sequence id column")
        flag(p, "buys", metavar="DAT", help="YOOCHOOSE buys file; label = the session has a buy")
    if schema:
        flag(p, "format", choices=FORMATS, default=None,
             help="generic CSV with a header (default), or yoochoose clicks/buys files without one")
        flag(p, "sequence_col", metavar="COL", help="column holding the sequence id (a session, a cookie)")
        flag(p, "order_col", metavar="COL", help="column to order events by within a sequence (default: file order)")
        flag(p, "label_col", metavar="COL", help="label column (default: 'label' if the file has one)")
        flag(p, "categorical_cols", type=_columns, metavar="A,B",
             help="fields to embed (default: every other column that is not all numbers)")
        flag(p, "numeric_cols", type=_columns, metavar="A,B",
             help="fields to normalize (default: every other column whose values all parse as numbers); "
                  "'none' for no such fields")


def _train(args: argparse.Namespace) -> int:
    from ..classify.config import TrainConfig
    from ..classify.events import EventSource
    from ..classify.train import train_classifier

    source = EventSource(
        events=args.events, format=args.format, labels=args.labels, buys=args.buys,
        sequence_col=args.sequence_col, order_col=args.order_col, label_col=args.label_col,
        categorical_cols=args.categorical_cols, numeric_cols=args.numeric_cols,
    )
    cfg = TrainConfig(
        source=source, run_dir=args.run_dir, positive_label=args.positive_label,
        max_length=args.max_length, truncate=args.truncate, max_vocab=args.max_vocab,
        embedding_size=args.embedding_size, rnn_size=args.rnn_size, num_layers=args.num_layers,
        dropout=args.dropout, batch_size=args.batch_size, max_epochs=args.max_epochs,
        learning_rate=args.learning_rate, grad_clip=args.grad_clip, class_weights=args.class_weights,
        val_frac=args.val_frac, test_frac=args.test_frac, seed=args.seed, init_from=args.init_from,
        force=args.force, device=args.device, quiet=args.quiet,
    )
    train_classifier(cfg)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..classify.predict import predict, write_predictions

    if args.out:
        _refuse_overwrite(Path(args.out), args.force)
    rows = predict(args.checkpoint, args.events, device=args.device)
    if args.out:
        buf = io.StringIO()
        write_predictions(rows, buf)
        atomic_write_text(Path(args.out), buf.getvalue())
        counts = Counter(label for _, _, label in rows)
        shown = ", ".join(f"{n} predicted {label!r}" for label, n in sorted(counts.items()))
        print(f"wrote {len(rows)} predictions to {args.out} ({shown})", file=sys.stderr)
    else:
        write_predictions(rows, sys.stdout)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..classify.predict import evaluate
    from ..classify.report import format_metrics

    if args.report:
        _refuse_overwrite(Path(args.report), args.force)
    result = evaluate(args.checkpoint, args.events, labels=args.labels, buys=args.buys, device=args.device)
    print(f"checkpoint {result['checkpoint']}")
    print(format_metrics(result["metrics"], result["classes"]))
    if args.report:
        report = {k: result[k] for k in ("checkpoint", "classes", "metrics")}
        atomic_write_text(Path(args.report), json.dumps(report, indent=1))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from ..classify.synth import synth_sequences, write_synth_csv, write_synth_yoochoose

    seqs = synth_sequences(args.sequences, args.seed, args.positive_rate, args.min_events, args.max_events)
    positives = sum(s.label for s in seqs)
    out = Path(args.out)
    if args.format == "yoochoose":
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--format yoochoose writes two files into a folder; {out} is a file")
        clicks, buys = out / "yoochoose-clicks.dat", out / "yoochoose-buys.dat"
        out.mkdir(parents=True, exist_ok=True)
        _refuse_overwrite(clicks, args.force)
        n = write_synth_yoochoose(clicks, buys, seqs, args.seed)
        print(f"wrote {n} clicks of {len(seqs)} sessions to {clicks}, and buys of {positives} sessions to {buys}")
        print(f"train with: rnnkit classify train --format yoochoose --events {clicks} --buys {buys}")
    else:
        _refuse_overwrite(out, args.force)
        n = write_synth_csv(out, seqs, args.seed)
        print(f"wrote {n} events of {len(seqs)} sequences ({positives} labelled 1) to {out}")
        print(f"train with: rnnkit classify train --events {out} --sequence_col session_id --order_col timestamp")
    print("label 1 iff event A comes before event B; both classes hold one A and one B, so only the order tells")
    return 0


def register(subparsers) -> None:
    top = new_parser(subparsers, "classify", "LSTM classifier for event sequences (sessions, timelines)")
    top.set_defaults(func=lambda args: (top.print_help(sys.stderr), 2)[1])
    sub = top.add_subparsers(dest="classify_command", metavar="ACTION")

    p = new_parser(sub, "train", "train on labelled events; report LSTM vs majority and bag-of-events baselines")
    _add_events_flags(p, labels=True, schema=True)
    flag(p, "positive_label", metavar="LABEL", help="the positive class (default: 1/true/yes, else the rarer class)")
    flag(p, "max_length", type=int, help="events per sequence the model reads (default 200)")
    flag(p, "truncate", choices=("keep_last", "keep_first"),
         help="which end a longer sequence keeps (default keep_last: its most recent events)")
    flag(p, "max_vocab", type=int, default=50_000, help="values kept per categorical field; rarer ones share an id")
    flag(p, "embedding_size", type=int, help="embedding size per categorical field (default 16)")
    flag(p, "rnn_size", type=int, help="LSTM hidden size (default 64)")
    flag(p, "num_layers", type=int, help="LSTM layers (default 1)")
    flag(p, "dropout", type=float, help="dropout (default 0)")
    flag(p, "batch_size", type=int, default=64)
    flag(p, "max_epochs", type=int, default=10, help="total epochs, counting those of --init_from")
    flag(p, "learning_rate", type=float, help="Adam learning rate (default 0.002, or the checkpoint's)")
    flag(p, "grad_clip", type=float, default=5.0)
    flag(p, "class_weights", choices=("auto", "none"), default="auto",
         help="auto: weigh classes n/(2 n_class) in the loss so the rarer class counts as much")
    flag(p, "val_frac", type=float, default=0.15)
    flag(p, "test_frac", type=float, default=0.15, help="0 for no test split")
    flag(p, "seed", type=int, default=0, help="seeds the split, the initialization and the batch order")
    flag(p, "run_dir", default="runs/classifier", help="checkpoints, report.json, split.json, roc.png")
    flag(p, "init_from", metavar="RUN_DIR|CKPT",
         help="continue training: a checkpoint, or a run folder (its newest epoch), with its split and optimizer")
    flag(p, "force", action="store_true", help="replace the checkpoints already in --run_dir")
    flag(p, "device", choices=("auto", "cpu", "cuda"), default="auto")
    flag(p, "quiet", action="store_true", help="print the final report only")
    p.set_defaults(func=_train)

    p = new_parser(sub, "predict", "score new sequences: sequence_id,score,predicted_label CSV")
    flag(p, "checkpoint", required=True, metavar="RUN_DIR|CKPT", help="a run folder (its best epoch) or a checkpoint")
    _add_events_flags(p, labels=False, schema=False)
    flag(p, "out", metavar="CSV", help="output CSV (default: stdout)")
    flag(p, "force", action="store_true", help="overwrite --out")
    flag(p, "device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=_predict)

    p = new_parser(sub, "eval", "metrics of a trained classifier and its baselines on a labelled file")
    flag(p, "checkpoint", required=True, metavar="RUN_DIR|CKPT", help="a run folder (its best epoch) or a checkpoint")
    _add_events_flags(p, labels=True, schema=False)
    flag(p, "report", metavar="JSON", help="also write the metrics here")
    flag(p, "force", action="store_true", help="overwrite --report")
    flag(p, "device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=_eval)

    p = new_parser(sub, "synth", "write a synthetic set whose label is in the order of events only")
    flag(p, "out", required=True, help="CSV file (generic) or folder (yoochoose)")
    flag(p, "format", choices=FORMATS, default="generic")
    flag(p, "sequences", type=int, default=2000)
    flag(p, "positive_rate", type=float, default=0.3)
    flag(p, "min_events", type=int, default=6)
    flag(p, "max_events", type=int, default=30)
    flag(p, "seed", type=int, default=0)
    flag(p, "force", action="store_true", help="overwrite --out")
    p.set_defaults(func=_synth)
