"""Command line: `rnnkit preprocess | train | sample | ...`.

Thin by design: each subcommand parses flags and calls the Python API. User mistakes
(RnnkitError) print one line and exit 2; bugs exit 1 with a traceback only under --debug.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import RnnkitError

# subcommand module -> it defines register(subparsers); each parser sets func=handler(args)
SUBCOMMAND_MODULES = (
    "rnnkit.cli.lm",
    "rnnkit.cli.classify",
    "rnnkit.cli.extra",
    "rnnkit.cli.runs",
    "rnnkit.cli.score",
    "rnnkit.cli.export",
)


class Parser(argparse.ArgumentParser):
    """Flag mistakes are user errors too: one line, exit 2."""

    def error(self, message: str):
        self.exit(2, f"rnnkit: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnnkit",
        description="Train recurrent neural networks on your own text or event data.",
        allow_abbrev=False,
    )
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False) or "--debug" in argv
    try:
        return int(args.func(args) or 0)
    except RnnkitError as e:
        if debug:
            raise
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: keep it to one line unless asked
        if debug:
            raise
        print(f"rnnkit: internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)", file=sys.stderr)
        return 1


def run() -> None:
    """The console script and `python -m rnnkit`: main(), then exit with its code.

    pyarrow's thread pools can abort the process while the interpreter shuts down
    (apache/arrow#34314, "terminate called without an active exception": seen here once, after
    `classify train` had printed its one-line error), so a process that used pyarrow ends
    without that shutdown, its output flushed first; nothing rnnkit writes waits for it
    (files are written and closed before main returns)."""
    code = main()
    if "pyarrow" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
