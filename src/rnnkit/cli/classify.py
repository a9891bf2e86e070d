"""`rnnkit classify train | predict | eval | synth`: an LSTM classifier for event sequences.

Thin: each handler turns flags into a config and calls into rnnkit.classify. The flags of
settings come from the fields of EventSource and TrainConfig (core/options.py); a flag left
out is not in args, so the config's defaults apply (and --resume keeps the run's own).
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
from collections import Counter
from pathlib import Path

from ..classify.config import TrainConfig
from ..classify.events import FORMATS, EventSource
from ..core.atomic import atomic_write_text
from ..core.options import add_flags, defaults, typed_options
from ..errors import ConfigError, OutputExistsError
from .common import flag, new_parser

GROUPS = ("data", "model", "optimization", "output")
CONFIGS = (EventSource, TrainConfig)
PREDICT_SETTINGS = ("events", "skip_bad_rows", "device", "gpu")  # the fields of CONFIGS that predict reads
EVAL_SETTINGS = PREDICT_SETTINGS + ("labels", "buys")


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; add --force to overwrite it or pick another path")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: folder {path.parent} does not exist; create it first or pick another path")


def _settings(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The named settings of CONFIGS: as typed, else their fields' defaults."""
    given = {}
    for config in CONFIGS:
        given.update(defaults(config), **typed_options(args, config))
    return {name: given[name] for name in names}


# ---- train -------------------------------------------------------------------------------------
def _train_config(args: argparse.Namespace) -> TrainConfig:
    source, options = typed_options(args, EventSource), typed_options(args, TrainConfig)
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
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    flag(groups["output"], "resume", metavar="RUN_DIR",
         help="continue the run in this folder where it stopped, with its own flags")  # not a setting: it reads them
    for config in CONFIGS:
        add_flags(p, config, groups)
    p.set_defaults(func=_train)


# ---- predict, eval -----------------------------------------------------------------------------
def _predict(args: argparse.Namespace) -> int:
    from ..classify.predict import check_top_k, predict, write_predictions

    check_top_k(args.top_k)
    if args.out:
        _refuse_overwrite(Path(args.out), args.force)
    result = predict(args.checkpoint, **_settings(args, PREDICT_SETTINGS))
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
    result = evaluate(args.checkpoint, **_settings(args, EVAL_SETTINGS))
    for note in result["notes"]:
        print(note, file=sys.stderr)
    print(f"checkpoint {result['checkpoint']}")
    print(format_metrics(result["metrics"], result["classes"]))
    if args.report:
        report = {k: result[k] for k in ("checkpoint", "classes", "metrics", "notes")}
        atomic_write_text(Path(args.report), json.dumps(report, indent=1))
    return 0


def _predict_parsers(sub) -> None:
    p = _checkpoint_parser(sub, "predict", "predict new sequences: a CSV of the predicted label and class probabilities",
                           PREDICT_SETTINGS)
    flag(p, "out", metavar="CSV", help="output CSV (default: stdout)")
    flag(p, "top_k", type=int, metavar="K", help="only the K most probable classes per sequence, with probabilities")
    flag(p, "force", action="store_true", help="overwrite --out")
    p.set_defaults(func=_predict)

    p = _checkpoint_parser(sub, "eval", "metrics of a trained classifier and its baselines on a labelled file",
                           EVAL_SETTINGS)
    flag(p, "report", metavar="JSON", help="also write the metrics here")
    flag(p, "force", action="store_true", help="overwrite --report")
    p.set_defaults(func=_eval)


def _checkpoint_parser(sub, name: str, help: str, settings: tuple[str, ...]) -> argparse.ArgumentParser:
    """A command that reads a trained classifier and events: --checkpoint, and the flags of these settings."""
    p = new_parser(sub, name, help)
    flag(p, "checkpoint", required=True, metavar="RUN_DIR|CKPT", help="a run folder (its best epoch) or a checkpoint")
    data = p.add_argument_group("data")
    for config in CONFIGS:
        add_flags(p, config, {"data": data}, only=settings, required=("events",))
    return p


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
