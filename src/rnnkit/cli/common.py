"""Flag helpers shared by the subcommand parsers.

torch-rnn spells flags `-batch_size`; its docs and tutorials also say `--batch_size`.
Every flag here accepts those spellings and the kebab-case `--batch-size`.
"""

from __future__ import annotations

import argparse
import re

from ..errors import ConfigError


def flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *extra: str, **kwargs):
    """Add `--name`, `-name` (torch-rnn) and `--kebab-name` spellings of one flag."""
    spellings = [f"--{name}", f"-{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    spellings.extend(extra)
    kwargs.setdefault("dest", name)
    return parser.add_argument(*spellings, **kwargs)


def torch_bool(value: str) -> bool:
    """torch-rnn passes booleans as 0/1; accept true/false too."""
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0 or 1, got {value!r}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """'100s', '15m', '2h', '90' (seconds) -> seconds."""
    m = _DURATION.match(str(value))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--time_budget {value!r}: give a positive duration such as 100s, 15m or 2h")
    return float(m.group(1)) * _UNIT[m.group(2)]


def new_parser(sub, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=description or help, allow_abbrev=False)
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    return p
