"""`rnnkit classify train | predict | eval | synth`: an LSTM classifier for event sequences.

Thin: each handler turns flags into a config and calls into rnnkit.classify. Flags left
out are None here, so the config's defaults apply (and --resume keeps the run's own).
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
from collections import Counter
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..errors import ConfigError, OutputExistsError
from .common import flag, new_parser, parse_duration

FORMATS = ("generic", "yoochoose")
SOURCE_FLAGS = ("events", "format", "labels", "buys", "sequence_col", "order_col", "label_col", "categorical_cols",
                "numeric_cols", "skip_bad_rows")
TRAIN_FLAGS = ("run_dir", "checkpoint_name", "positive_label", "max_length", "truncate", "max_vocab", "embedding_size",
               "rnn_size", "num_layers", "dropout", "batch_size", "max_epochs", "time_budget", "learning_rate",
               "grad_clip", "class_weights", "val_frac", "test_frac", "seed", "init_from", "force", "device", "gpu",
               "progress", "print_every", "quiet")


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


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


# ---- train -------------------------------------------------------------------------------------
def _train_config(args: argparse.Namespace):
    from ..classify.config import TrainConfig
    from ..classify.events import EventSource

    if args.time_budget is not None:
        args.time_budget = parse_duration(args.time_budget)
    source, options = _given(args, SOURCE_FLAGS), _given(args, TRAIN_FLAGS)
    if args.resume:
        for name in ("init_from", "force", "run_dir", "checkpoint_name"):
            if name in options:
                raise ConfigError(f"--resume continues the run where it is; drop --{name}")
        from ..classify.checkpoint import resume_config

        return resume_config(args.resume, options, source)
    if "events" not in source:
        raise ConfigError("give the events with --events FILE (or continue a run with --resume RUN_DIR)")
    return TrainConfig(source=EventSource(**source), **options)


def _train(args: argparse.Namespace) -> int:
    cfg = _train_config(args)  # flag mistakes first, before torch loads
    from ..classify.train import train_classifier
    from ..core.interrupt import StopNow, exit_code, signal_name

    try:
        result = train_classifier(cfg)
    except StopNow as e:  # a second Ctrl-C or SIGTERM: the checkpoints already written are whole
        print(f"rnnkit: stopped at once by a second {signal_name(e.signum)}; continue from the last checkpoint "
              f"with: rnnkit classify train --resume {cfg.run_dir}", file=sys.stderr)
        return exit_code(e.signum)
    if result.stopped == "interrupted":
        how = "interrupted" if result.stop_signal == signal.SIGINT else f"stopped by {signal_name(result.stop_signal)}"
        print(f"{how}: saved {result.checkpoint}; continue with: rnnkit classify train --resume {cfg.run_dir}",
              file=sys.stderr)
        return exit_code(result.stop_signal)
    return 0


def _train_parser(sub) -> None:
    p = new_parser(sub, "train", "train on labelled events; report LSTM vs majority and bag-of-events baselines")
    _add_events_flags(p, labels=True, schema=True, required=False)
    g = p.add_argument_group("model")
    flag(g, "positive_label", metavar="LABEL", help="two classes: the positive one (default: 1/true/yes, else the rarer)")
    flag(g, "max_length", type=int, help="events per sequence the model reads (default 200)")
    flag(g, "truncate", choices=("keep_last", "keep_first"),
         help="which end a longer sequence keeps (default keep_last: its most recent events)")
    flag(g, "max_vocab", type=int, help="values kept per categorical field (default 50000); rarer ones share an id")
    flag(g, "embedding_size", type=int, help="embedding size per categorical field (default 16)")
    flag(g, "rnn_size", type=int, help="LSTM hidden size (default 64)")
    flag(g, "num_layers", type=int, help="LSTM layers (default 1)")
    flag(g, "dropout", type=float, help="dropout (default 0)")
    g = p.add_argument_group("optimization")
    flag(g, "batch_size", type=int, help="sequences per batch (default 64)")
    flag(g, "max_epochs", type=int, help="total epochs, counting those of a continued run (default 10)")
    flag(g, "time_budget", help="train for this long (100s, 15m, 2h), then validate, save and report")
    flag(g, "learning_rate", type=float, help="Adam's learning rate (default 0.002, or the checkpoint's)")
    flag(g, "grad_clip", type=float, help="clip the gradient norm to this (default 5)")
    flag(g, "class_weights", choices=("auto", "none"),
         help="auto (default): weigh classes n/(K n_class) in the loss so each counts the same")
    flag(g, "val_frac", type=float, help="default 0.15")
    flag(g, "test_frac", type=float, help="default 0.15; 0 for no test split")
    flag(g, "seed", type=int, help="seeds the split, the initialization and the batch order (default 0)")
    _add_run_flags(p)
    p.set_defaults(func=_train)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    flag(g, "run_dir", help="the run folder: checkpoints, report.json, metrics.jsonl, loss.png... (default runs/classifier)")
    flag(g, "checkpoint_name", help="torch-rnn's spelling: RUN_DIR/NAME names the folder and the checkpoint files")
    flag(g, "init_from", metavar="RUN_DIR|CKPT",
         help="continue training with new flags: a checkpoint, or a run folder (its newest), with its split and optimizer")
    flag(g, "resume", metavar="RUN_DIR", help="continue the run in this folder where it stopped, with its own flags")
    flag(g, "force", action="store_true", default=None, help="replace the checkpoints already in the run folder")
    flag(g, "progress", choices=("auto", "bar", "lines", "none"), help="auto: a bar on a terminal, else lines")
    flag(g, "print_every", type=int, help="iterations between progress lines and metrics.jsonl records (default 50)")
    flag(g, "quiet", action="store_true", default=None, help="print the final report only")
    _add_device_flags(g)


def _add_device_flags(g) -> None:
    flag(g, "gpu", type=int, help="torch-rnn's GPU index; -1 for the CPU")
    flag(g, "device", help="auto (default: CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps")


def _add_events_flags(p: argparse.ArgumentParser, labels: bool, schema: bool, required: bool = True) -> None:
    g = p.add_argument_group("data")
    flag(g, "events", required=required, metavar="CSV", help="events, one row per event (YOOCHOOSE: the clicks file)")
    flag(g, "skip_bad_rows", action="store_true", default=None,
         help="generic CSV: leave out bad rows (counted) instead of stopping at the first")
    if labels:
        flag(g, "labels", metavar="CSV", help="labels in a separate CSV keyed by the sequence id column")
        flag(g, "buys", metavar="DAT", help="YOOCHOOSE buys file; label = the session has a buy")
    if schema:
        flag(g, "format", choices=FORMATS, help="generic CSV with a header (default), or yoochoose clicks/buys files")
        flag(g, "sequence_col", metavar="COL", help="column holding the sequence id (a session, a cookie)")
        flag(g, "order_col", metavar="COL", help="column to order events by within a sequence (default: file order)")
        flag(g, "label_col", metavar="COL", help="label column (default: 'label' if the file has one)")
        flag(g, "categorical_cols", type=_columns, metavar="A,B",
             help="fields to embed (default: every other column that is not all numbers in the first rows)")
        flag(g, "numeric_cols", type=_columns, metavar="A,B",
             help="fields to normalize (default: every other column of numbers); 'none' for no such fields")


# ---- predict, eval -----------------------------------------------------------------------------
def _predict(args: argparse.Namespace) -> int:
    from ..classify.predict import check_top_k, predict, write_predictions

    check_top_k(args.top_k)
    if args.out:
        _refuse_overwrite(Path(args.out), args.force)
    result = predict(args.checkpoint, args.events, device=args.device or "auto", gpu=args.gpu,
                     skip_bad_rows=bool(args.skip_bad_rows))
    for note in result.notes:
        print(note, file=sys.stderr)
    if not args.out:
        write_predictions(result, sys.stdout, args.top_k)
        return 0
    buf = io.StringIO()
    write_predictions(result, buf, args.top_k)
    atomic_write_text(Path(args.out), buf.getvalue())
    counts = Counter(result.labels)
    shown = ", ".join(f"{n} predicted {label!r}" for label, n in sorted(counts.items())[:10])
    print(f"wrote {len(result.sequence_ids)} predictions to {args.out} ({shown}{', ...' if len(counts) > 10 else ''})",
          file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..classify.predict import evaluate
    from ..classify.report import format_metrics

    if args.report:
        _refuse_overwrite(Path(args.report), args.force)
    result = evaluate(args.checkpoint, args.events, labels=args.labels, buys=args.buys, device=args.device or "auto",
                      gpu=args.gpu, skip_bad_rows=bool(args.skip_bad_rows))
    for note in result["notes"]:
        print(note, file=sys.stderr)
    print(f"checkpoint {result['checkpoint']}")
    print(format_metrics(result["metrics"], result["classes"]))
    if args.report:
        report = {k: result[k] for k in ("checkpoint", "classes", "metrics", "notes")}
        atomic_write_text(Path(args.report), json.dumps(report, indent=1))
    return 0


def _predict_parsers(sub) -> None:
    p = new_parser(sub, "predict", "predict new sequences: a CSV of the predicted label and class probabilities")
    flag(p, "checkpoint", required=True, metavar="RUN_DIR|CKPT", help="a run folder (its best epoch) or a checkpoint")
    _add_events_flags(p, labels=False, schema=False)
    flag(p, "out", metavar="CSV", help="output CSV (default: stdout)")
    flag(p, "top_k", type=int, metavar="K", help="only the K most probable classes per sequence, with probabilities")
    flag(p, "force", action="store_true", help="overwrite --out")
    _add_device_flags(p)
    p.set_defaults(func=_predict)

    p = new_parser(sub, "eval", "metrics of a trained classifier and its baselines on a labelled file")
    flag(p, "checkpoint", required=True, metavar="RUN_DIR|CKPT", help="a run folder (its best epoch) or a checkpoint")
    _add_events_flags(p, labels=True, schema=False)
    flag(p, "report", metavar="JSON", help="also write the metrics here")
    flag(p, "force", action="store_true", help="overwrite --report")
    _add_device_flags(p)
    p.set_defaults(func=_eval)


# ---- synth ---------------------------------------------------------------------------------------
def _synth(args: argparse.Namespace) -> int:
    from ..classify.synth import (
        synth_k_sequences,
        synth_sequences,
        write_synth_csv,
        write_synth_yoochoose,
    )

    out = Path(args.out)
    if args.classes != 2:
        if args.format == "yoochoose" or args.positive_rate is not None:
            raise ConfigError("--classes above 2 makes a generic CSV with classes equally likely; "
                              "drop --format yoochoose and --positive_rate")
        _refuse_overwrite(out, args.force)
        seqs = synth_k_sequences(args.sequences, args.classes, args.seed, args.min_events, args.max_events)
        n = write_synth_csv(out, seqs, args.seed)
        signals = sorted({s.label for s in seqs})
        print(f"wrote {n} events of {len(seqs)} sequences in {args.classes} classes to {out}")
        print(f"train with: rnnkit classify train --events {out} --sequence_col session_id --order_col timestamp")
        print(f"label = which of the events {', '.join(signals[:5])}{', ...' if len(signals) > 5 else ''} comes first; "
              "every sequence holds each of them once, so only the order tells")
        return 0
    seqs = synth_sequences(args.sequences, args.seed, 0.3 if args.positive_rate is None else args.positive_rate,
                           6 if args.min_events is None else args.min_events, 30 if args.max_events is None else args.max_events)
    if args.format == "yoochoose":
        _synth_yoochoose(out, seqs, args, write_synth_yoochoose)
    else:
        _refuse_overwrite(out, args.force)
        n = write_synth_csv(out, seqs, args.seed)
        print(f"wrote {n} events of {len(seqs)} sequences ({sum(s.label for s in seqs)} labelled 1) to {out}")
        print(f"train with: rnnkit classify train --events {out} --sequence_col session_id --order_col timestamp")
    print("label 1 iff event A comes before event B; both classes hold one A and one B, so only the order tells")
    return 0


def _synth_yoochoose(out: Path, seqs, args: argparse.Namespace, write) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--format yoochoose writes two files into a folder; {out} is a file")
    clicks, buys = out / "yoochoose-clicks.dat", out / "yoochoose-buys.dat"
    out.mkdir(parents=True, exist_ok=True)
    _refuse_overwrite(clicks, args.force)
    n = write(clicks, buys, seqs, args.seed)
    print(f"wrote {n} clicks of {len(seqs)} sessions to {clicks}, and buys of {sum(s.label for s in seqs)} sessions to {buys}")
    print(f"train with: rnnkit classify train --format yoochoose --events {clicks} --buys {buys}")


def _synth_parser(sub) -> None:
    p = new_parser(sub, "synth", "write a synthetic set whose label is in the order of events only")
    flag(p, "out", required=True, help="CSV file (generic) or folder (yoochoose)")
    flag(p, "format", choices=FORMATS, default="generic")
    flag(p, "classes", type=int, default=2, help="2: is A before B? K > 2: which of K events comes first?")
    flag(p, "sequences", type=int, default=2000)
    flag(p, "positive_rate", type=float, help="two classes: the share labelled 1 (default 0.3)")
    flag(p, "min_events", type=int, help="default 6, or the number of classes if more")
    flag(p, "max_events", type=int, help="default 30, or 3 x the number of classes if more")
    flag(p, "seed", type=int, default=0)
    flag(p, "force", action="store_true", help="overwrite --out")
    p.set_defaults(func=_synth)


def register(subparsers) -> None:
    top = new_parser(subparsers, "classify", "LSTM classifier for event sequences (sessions, timelines)")
    top.set_defaults(func=lambda args: (top.print_help(sys.stderr), 2)[1])
    sub = top.add_subparsers(dest="classify_command", metavar="ACTION")
    _train_parser(sub)
    _predict_parsers(sub)
    _synth_parser(sub)
