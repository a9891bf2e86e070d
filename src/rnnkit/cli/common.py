"""Flag helpers shared by the subcommand parsers.

torch-rnn spells flags `-batch_size`; its docs and tutorials also say `--batch_size`.
Every flag accepts those spellings and the kebab-case `--batch-size` (core/options.py).
"""

from __future__ import annotations

import argparse

from ..core.options import flag, parse_duration, torch_bool

__all__ = ["NO_NGRAM_HELP", "flag", "new_parser", "parse_duration", "torch_bool"]

NO_NGRAM_HELP = "use the network alone, without the n-gram the checkpoint mixes in (rnnkit train --ngram)"


def new_parser(sub, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=description or help, allow_abbrev=False)
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    return p
