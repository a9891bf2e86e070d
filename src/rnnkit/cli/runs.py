"""`rnnkit compare RUN_DIR...` and `rnnkit sweep`: look at several runs together.

The sweep takes every `rnnkit train` flag: its definitions are copied from the train
parser (as plain strings, so a value may be a comma list), and each run's flags go back
through the train parser, so a sweep run is configured exactly as `rnnkit train` would be.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .common import flag, new_parser

# train flags that the sweep sets itself, or that make no sense for a fresh run per grid point
SWEEP_OWNS = {"help", "debug", "text", "checkpoint_name", "resume"}


def register(sub) -> None:
    p = new_parser(sub, "compare", "compare runs: the flags that differ, best validation loss, time, speed")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (or a sweep folder holding them)")
    flag(p, "out", default="compare.png", help="where the overlay of validation curves goes (default compare.png)")
    p.set_defaults(func=run_compare)

    p = new_parser(
        sub, "sweep", "train a grid of flag values one run after another, then compare the runs",
        description="Train every combination of flag values, one run after another, then compare them. "
                    "Any rnnkit train flag may be given; a comma list (--dropout 0,0.25) makes a grid axis. "
                    "Example: rnnkit sweep --input my.txt --dropout 0,0.25 --learning_rate 1e-3,2e-3 "
                    "--time_budget 2m --out_dir sweeps/first",
    )
    flag(p, "input", nargs="+", metavar="PATH", default=None, help="text file(s), preprocessed once for all runs")
    flag(p, "out_dir", required=True, help="the sweep's folder: one run folder per grid point inside it")
    g = p.add_argument_group("train flags (a comma list makes a grid axis)")
    for action in train_flag_parser()._actions:
        if action.dest in SWEEP_OWNS or not action.option_strings:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            g.add_argument(*action.option_strings, dest=action.dest, action="store_true", help=action.help)
        else:
            g.add_argument(*action.option_strings, dest=action.dest, default=None, metavar=action.dest.upper(),
                           help=action.help)
    p.set_defaults(func=run_sweep)


def run_compare(args) -> int:
    from ..runs.compare import compare_runs, format_table, plot_overlay

    runs = compare_runs(args.runs)
    print(format_table(runs))
    print(f"validation curves: {plot_overlay(runs, args.out)}")
    return 0


# ---- sweep ---------------------------------------------------------------------------------------
class _RaisingParser(argparse.ArgumentParser):
    """The train parser as the sweep uses it: a bad value is a ConfigError, not an exit."""

    def error(self, message: str):
        raise ConfigError(message)


def train_flag_parser() -> argparse.ArgumentParser:
    from .lm import _train_parser

    sub = argparse.ArgumentParser(add_help=False).add_subparsers(parser_class=_RaisingParser)
    _train_parser(sub)
    return sub.choices["train"]


def _argv(flags: dict[str, str | bool]) -> list[str]:
    out: list[str] = []
    for name, value in flags.items():
        if value is True:
            out.append(f"--{name}")
        elif value is not False:
            out += [f"--{name}", value]
    return out


def run_sweep(args) -> int:
    from ..runs import sweep
    from .lm import train_config_from_args

    parser = train_flag_parser()
    train_dests = {a.dest for a in parser._actions if a.option_strings and a.dest not in SWEEP_OWNS}
    given = {k: v for k, v in vars(args).items() if k in train_dests and v not in (None, False)}
    if args.input and (given.get("input_h5") or given.get("input_json")):
        raise ConfigError("give either --input text files or --input_h5/--input_json, not both")
    if not args.input and not (given.get("input_h5") and given.get("input_json")):
        raise ConfigError("give the training text with --input FILE.txt (or --input_h5 and --input_json)")
    axes, points = sweep.expand_grid(given)
    out_dir = Path(args.out_dir)
    texts = [str(t) for t in args.input or []]
    configs = []
    for point in points:  # every run's flags are checked before the first one starts
        argv = _argv(point.flags) + ["--checkpoint_name", str(out_dir / point.name / "checkpoint"), *texts]
        configs.append((point.name, train_config_from_args(parser.parse_args(argv))))
    sweep.check_fresh(out_dir, points, bool(args.force))
    quiet = bool(args.quiet)
    if not quiet:
        budget = f", {args.time_budget} each" if args.time_budget and "time_budget" not in axes else ""
        print(f"sweep: {len(points)} runs over {', '.join(axes) or 'no axis'}{budget}, into {out_dir}", flush=True)
    if texts:
        h5, js = sweep.preprocess_once(texts, out_dir, quiet)
        for _, cfg in configs:  # every run reads the one preprocessed copy
            cfg.input_txt, cfg.input_h5, cfg.input_json = None, h5, js
    result = sweep.run_sweep(out_dir, configs, axes, quiet=quiet)
    print(sweep.report(result, out_dir / "compare.png"))
    if result.interrupted:
        return 130
    return 2 if result.failed else 0  # a failed run is reported above, like any user error
