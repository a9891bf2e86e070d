"""Typed settings that also make their command-line flags: one source of truth per setting.

A config dataclass declares each field with `option(default, help, ...)`; `add_flags` turns
the fields into argparse flags (torch-rnn's `-name`, `--name` and `--kebab-name`), and
`typed_options` reads back only the flags the user typed: the parser leaves the others out
(argparse.SUPPRESS), so "typed by hand" never has to be guessed from sys.argv.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Collection
from typing import Any, Callable

from ..errors import ConfigError

AUTO = "auto"


def option(default: Any = None, help: str = "", *, parse: Callable[[str], Any] | None = str, auto: bool = False,
           group: str = "", compared: bool = True, flag: bool = True, fallback: Any = None,
           **argparse_kwargs: Any) -> Any:
    """A config field with what its flag needs. parse=None: a switch (store_true);
    auto: `auto` is accepted too; compared=False: `rnnkit compare` never calls it a difference;
    fallback: the value a None default stands for once nothing else (a checkpoint being
    continued) has set it, shown as the flag's default. dataclasses.MISSING: no default."""
    meta = dict(help=help, parse=parse, auto=auto, group=group, compared=compared, flag=flag, argparse=argparse_kwargs)
    if fallback is not None:
        meta["fallback"] = fallback
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag(parser, name: str, *extra: str, **kwargs):
    """Add `--name`, `-name` (torch-rnn) and `--kebab-name` spellings of one flag."""
    spellings = [f"--{name}", f"-{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    spellings.extend(extra)
    kwargs.setdefault("dest", name)
    return parser.add_argument(*spellings, **kwargs)


def add_flags(parser: argparse.ArgumentParser, config_class: type, groups: dict[str, Any] | None = None, *,
              only: Collection[str] | None = None, required: Collection[str] = ()) -> None:
    """One flag per field of config_class declared with option(flag=True); with only, just the
    flags of those fields (a command sharing a few settings); those in required must be typed."""
    for f in dataclasses.fields(config_class):
        meta = f.metadata
        if not meta.get("flag") or (only is not None and f.name not in only):
            continue
        target = (groups or {}).get(meta["group"], parser)
        kwargs = dict(meta["argparse"], default=argparse.SUPPRESS, help=_help(f, meta))
        if f.name in required:
            kwargs["required"] = True
        if meta["parse"] is None:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = _or_auto(meta["parse"]) if meta["auto"] else _as_argparse(meta["parse"])
        flag(target, f.name, **kwargs)


def typed_options(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The config fields whose flags were typed on the command line, with their values."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in vars(args).items() if k in names}


def defaults(config_class: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(config_class):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def fallbacks(config_class: type) -> dict[str, Any]:
    """The fields declared with option(fallback=...), and what their None stands for."""
    return {f.name: f.metadata["fallback"] for f in dataclasses.fields(config_class) if "fallback" in f.metadata}


def fields_where(config_class: type, key: str, value: Any = True) -> tuple[str, ...]:
    """Names of the fields whose option metadata has key == value (e.g. auto=True)."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata.get(key, None) == value)


def _help(f: dataclasses.Field, meta: dict) -> str:
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is None:
        default = meta.get("fallback")
    shown = "" if meta["parse"] is None or default is None else f" (default {default})"
    return (meta["help"] + shown).strip() or None


def _as_argparse(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser whose ConfigError becomes argparse's one-line usage error."""
    def wrapped(value: str):
        try:
            return parse(value)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    wrapped.__name__ = getattr(parse, "__name__", "value")  # argparse names the type in its message
    return wrapped


def _or_auto(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    inner = _as_argparse(parse)

    def wrapped(value: str):
        return AUTO if value == AUTO else inner(value)
    wrapped.__name__ = f"{getattr(parse, '__name__', 'value')} or 'auto'"
    return wrapped


# ---- value parsers ---------------------------------------------------------------------------
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
