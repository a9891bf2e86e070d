"""`rnnkit serve` and `rnnkit novelty`."""

from __future__ import annotations

import json
import os

from ..errors import ConfigError, RnnkitError
from ..sampling.novelty import (
    DEFAULT_MAX_N,
    format_table,
    novel_substring_fractions,
    read_text,
)
from .common import NO_NGRAM_HELP, flag, new_parser

# rnnkit.serve.app's Limits holds these defaults; it is not imported here because starlette and
# uvicorn are an optional extra and every rnnkit command loads this module.
LIMIT_FLAGS = {
    "max_length": "most tokens per sample (default 2000)",
    "max_concurrent": "generations running at once; more get HTTP 429 (default 4)",
    "max_samples": "most samples per /generate request (default 8)",
}


SERVE_DESCRIPTION = ("Serve a trained model: a web page at / and a JSON API (POST /generate, POST /generate/stream, "
                     "GET /model, GET /health). Listens on 127.0.0.1 unless told otherwise.")
NOVELTY_DESCRIPTION = ("For each length n, the fraction of the sample's length-n substrings that appear nowhere in the "
                       "training text (as torch-rnn's novel_substrings.py reports).")


def register(sub) -> None:
    _register_serve(sub)
    _register_novelty(sub)


def _register_serve(sub) -> None:
    p = new_parser(sub, "serve", "serve a trained model over HTTP: a JSON API and a web page", SERVE_DESCRIPTION)
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT", help="a run folder (its best checkpoint) or a checkpoint")
    flag(p, "host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    flag(p, "port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    flag(p, "device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    flag(p, "token", default=None, help="require the header 'Authorization: Bearer TOKEN' on every request "
         "but the page (default: $RNNKIT_TOKEN, which keeps it out of the process list); needed with a "
         "--host other than this machine")
    flag(p, "no_token", action="store_true", help="serve a --host other than this machine without a token, knowingly")
    flag(p, "no_ngram", action="store_true", help=NO_NGRAM_HELP)
    for name, help in LIMIT_FLAGS.items():
        flag(p, name, type=int, default=None, help=help)
    p.set_defaults(func=_serve)


def _serve(args) -> int:
    try:
        import uvicorn  # noqa: F401

        from ..serve.app import serve
    except ModuleNotFoundError as e:
        if e.name not in ("starlette", "uvicorn"):
            raise
        raise RnnkitError(f"rnnkit serve needs {e.name}; install it with: pip install 'rnnkit[serve]'") from None
    limits = {name: getattr(args, name) for name in LIMIT_FLAGS if getattr(args, name) is not None}
    token = args.token if args.token is not None else os.environ.get("RNNKIT_TOKEN") or None
    serve(args.checkpoint, host=args.host, port=args.port, device=args.device, token=token,
          no_token=args.no_token, ngram=not args.no_ngram, **limits)
    return 0


def _register_novelty(sub) -> None:
    p = new_parser(sub, "novelty", "how much of a sample is new: novel substrings by length", NOVELTY_DESCRIPTION)
    p.add_argument("sample", metavar="SAMPLE", help="generated text file")
    p.add_argument("train", metavar="TRAIN", help="training text file")
    flag(p, "max_n", type=int, default=DEFAULT_MAX_N, help=f"longest substring length (default {DEFAULT_MAX_N})")
    flag(p, "min_n", type=int, default=1, help="shortest substring length (default 1)")
    flag(p, "json", action="store_true", help="print {n: fraction} as JSON")
    p.set_defaults(func=_novelty)


def _novelty(args) -> int:
    if args.min_n < 1 or args.max_n < args.min_n:
        raise ConfigError(f"need 1 <= --min_n <= --max_n, got {args.min_n} and {args.max_n}")
    sample, train = read_text(args.sample), read_text(args.train)
    if not sample:
        raise ConfigError(f"{args.sample} is empty; there is nothing to measure")
    fractions = novel_substring_fractions(sample, train, range(args.min_n, args.max_n + 1))
    print(json.dumps(fractions) if args.json else format_table(fractions))
    return 0
