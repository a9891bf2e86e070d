"""`rnnkit preprocess`, `rnnkit train`, `rnnkit sample`, `rnnkit demo`: torch-rnn's flags and defaults."""

from __future__ import annotations

import sys

from ..errors import ConfigError
from .common import NO_NGRAM_HELP, flag, new_parser, parse_duration, torch_bool


def register(sub) -> None:
    _preprocess_parser(sub)
    _train_parser(sub)
    _sample_parser(sub)
    p = new_parser(sub, "demo", "train on this Python's own standard-library source for two minutes, then sample")
    flag(p, "time_budget", default="2m", help="how long to train (default 2m)")
    flag(p, "run_dir", default="demo", help="where the corpus and checkpoints go (default demo/)")
    p.set_defaults(func=run_demo)


# ---- preprocess ----------------------------------------------------------------------------
def _preprocess_parser(sub) -> None:
    p = new_parser(sub, "preprocess", "text file(s) -> HDF5 token ids + JSON vocabulary (torch-rnn layout)")
    flag(p, "input_txt", nargs="+", required=True, metavar="PATH", help="text file(s) or folder(s)")
    flag(p, "output_h5", required=True)
    flag(p, "output_json", required=True)
    flag(p, "val_frac", type=float, default=0.1)
    flag(p, "test_frac", type=float, default=0.1)
    flag(p, "encoding", default="utf-8", help="utf-8 (characters) or bytes")
    flag(p, "tokens", default="char", choices=["char", "word"])
    flag(p, "vocab", default=None, help="reuse this JSON's vocabulary (to continue training on new text)")
    flag(p, "max_vocab", type=int, default=10000, help="word mode: keep this many words (default 10000)")
    flag(p, "quiet", action="store_true")
    flag(p, "force", action="store_true", help="replace output files even if an earlier preprocess did not write them")
    p.set_defaults(func=run_preprocess)


def run_preprocess(args) -> int:
    from ..text.corpus import PreprocessConfig, preprocess

    preprocess(PreprocessConfig(
        input_txt=args.input_txt, output_h5=args.output_h5, output_json=args.output_json,
        val_frac=args.val_frac, test_frac=args.test_frac, encoding=args.encoding,
        tokens=args.tokens, vocab=args.vocab, max_vocab=args.max_vocab, quiet=args.quiet, force=args.force,
    ))
    return 0


# ---- train ------------------------------------------------------------------------------------
TRAIN_GROUPS = ("data", "model", "optimization", "output", "backend")


def _train_parser(sub) -> None:
    from ..core.options import add_flags
    from ..training.config import TrainConfig

    p = new_parser(sub, "train", "train a character (or word) language model")
    p.add_argument("text", nargs="*", help="a raw text file (or several) to preprocess on the fly")
    groups = {name: p.add_argument_group(name) for name in TRAIN_GROUPS}
    flag(groups["model"], "resume", default=None, metavar="RUN_DIR", help="continue the run in this folder exactly where it stopped")
    flag(groups["backend"], "gpu_backend", default="cuda", help="cuda (opencl is not supported)")
    add_flags(p, TrainConfig, groups)
    p.set_defaults(func=run_train)


def train_config_from_args(args):
    """The TrainConfig the flags ask for: torch-rnn's defaults and what was typed; under a time
    budget every model, batch and regularization setting not typed is `auto` (chosen once the
    data and this machine are measured). With --resume, the run's own config with only the
    typed flags changed."""
    from ..core.options import AUTO, defaults, typed_options
    from ..training import TrainConfig, resume_config
    from ..training.auto import AUTO_FIELDS

    if args.gpu_backend != "cuda":
        raise ConfigError(f"--gpu_backend {args.gpu_backend}: only cuda is supported; use --device")
    typed = typed_options(args, TrainConfig)
    if args.resume:
        return resume_config(args.resume, {k: v for k, v in typed.items() if v != AUTO})
    options = {**defaults(TrainConfig), **typed}
    if options["time_budget"] is not None:
        shaped = ("rnn_size", "num_layers") if options["init_from"] or options["finetune"] else ()  # the checkpoint's shape stays
        options.update({k: AUTO for k in AUTO_FIELDS if k not in typed and k not in shaped})
    if args.text:
        if options["input_h5"] or options["input_json"]:
            raise ConfigError("give either a text file or --input_h5/--input_json, not both")
        options["input_txt"] = args.text
    return TrainConfig(**options)


def run_train(args) -> int:
    from ..core.distributed import rank
    from ..core.interrupt import StopNow, exit_code, signal_name
    from ..training.trainer import train

    cfg = train_config_from_args(args)
    try:
        result = train(cfg)
    except StopNow as e:  # a second Ctrl-C or SIGTERM: the checkpoints already written are whole
        if rank() == 0:
            print(f"rnnkit: stopped at once by a second {signal_name(e.signum)}; continue from the last checkpoint "
                  f"with: rnnkit train --resume {cfg.run_dir}", file=sys.stderr)
        return exit_code(e.signum)
    code = exit_code(result.stop_signal) if result.stopped == "interrupted" else 0
    if cfg.quiet or rank() != 0:  # under torchrun, rank 0 speaks for all
        return code
    best = f", best val_loss {result.best_val_loss:.4f} ({result.best_checkpoint})" if result.best_val_loss is not None else ""
    if result.mixed_val_loss is not None:
        best += f", {result.mixed_val_loss:.4f} with its n-gram"
    print(f"done: {result.iteration} iterations in {result.seconds:.0f}s ({result.stopped}){best}", file=sys.stderr)
    return code


# ---- sample ----------------------------------------------------------------------------------
def _sample_parser(sub) -> None:
    p = new_parser(sub, "sample", "generate text from a trained checkpoint (or run folder)")
    flag(p, "checkpoint", required=True, help="checkpoint .json, its .safetensors, or a run folder (its best)")
    flag(p, "length", type=int, default=2000)
    flag(p, "start_text", default="")
    flag(p, "sample", type=torch_bool, default=True, help="1: sample; 0: argmax")
    flag(p, "temperature", type=float, default=1.0)
    flag(p, "top_k", type=int, default=None)
    flag(p, "top_p", type=float, default=None)
    flag(p, "num_samples", type=int, default=1, help="samples generated together as one batch")
    flag(p, "stop_at", default=None, help="end each sample at this string (\\n for one line)")
    flag(p, "stream", action="store_true", help="print text as it is generated")
    flag(p, "seed", type=int, default=None)
    flag(p, "skip_unknown", action="store_true", help="leave out start-text characters the model never saw")
    flag(p, "lines", type=int, default=None, metavar="N", help="list mode: print N complete lines")
    flag(p, "novel", action="store_true", help="list mode: only lines not in the training text")
    flag(p, "min_chars", type=int, default=1)
    flag(p, "max_chars", type=int, default=200)
    flag(p, "train_text", default=None, help="the training text, if the run folder lost track of it")
    flag(p, "report", action="store_true", help="also print the fraction of novel substrings (stderr)")
    flag(p, "gpu", type=int, default=None)
    flag(p, "gpu_backend", default="cuda")
    flag(p, "device", default="auto")
    flag(p, "verbose", type=torch_bool, default=False)
    flag(p, "output", default=None, help="write the text to this file instead of stdout")
    flag(p, "force", action="store_true", help="overwrite the --output file if it exists")
    flag(p, "no_ngram", action="store_true", help=NO_NGRAM_HELP)
    p.set_defaults(func=run_sample)


def run_sample(args) -> int:
    from ..sampling.generator import Generator, SampleOptions

    stop_at = args.stop_at.encode().decode("unicode_escape") if args.stop_at else None
    opts = SampleOptions(
        length=args.length, start_text=args.start_text, sample=args.sample, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, num_samples=args.num_samples, seed=args.seed,
        stop_at=stop_at, skip_unknown=args.skip_unknown,
    )
    if args.output:
        _check_output_path(args.output, args.force)
    gen = Generator.load(args.checkpoint, args.device, args.gpu, ngram=not args.no_ngram)
    if args.verbose:
        d = gen.describe()
        print(f"loaded {d['checkpoint']}: {d['model_type']} {d['num_layers']}x{d['rnn_size']}, "
              f"{d['parameters']:,} parameters, vocabulary {d['vocab_size']}, on {d['device']}", file=sys.stderr)
    if args.lines is not None:
        return _sample_lines(gen, opts, args)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.stream:
            for piece in gen.stream(opts):
                out.write(piece)
                out.flush()
            out.write("\n")
        else:
            texts = gen.generate(opts)
            out.write(("\n" + "-" * 40 + "\n").join(texts) + "\n")
            if args.report:
                _report_novelty(gen, texts, args.train_text)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _check_output_path(path: str, force: bool) -> None:
    from pathlib import Path

    from ..core.atomic import ensure_writable_folder
    from ..errors import InputFileError, OutputExistsError

    out = Path(path)
    ensure_writable_folder(out.parent, f"--output {path}")
    if out.is_dir():
        raise InputFileError(f"--output {path} is a folder; give a file name")
    if out.exists() and not force:
        raise OutputExistsError(f"--output {path} already exists; pass --force to overwrite it or choose another file name")


def _sample_lines(gen, opts, args) -> int:
    from ..sampling.lines import generate_lines, novel_against

    avoid = novel_against(gen, args.train_text) if args.novel else None
    for line in generate_lines(gen, args.lines, avoid, args.min_chars, args.max_chars, opts):
        print(line)
    return 0


def _report_novelty(gen, texts: list[str], train_text: str | None) -> None:
    from ..sampling.lines import training_sources
    from ..sampling.novelty import format_table, novel_substring_fractions, read_text

    sources = [train_text] if train_text else training_sources(gen.meta)
    train = "".join(read_text(p) for p in sources)
    print(format_table(novel_substring_fractions("".join(texts), train)), file=sys.stderr)


# ---- demo --------------------------------------------------------------------------------------
def run_demo(args) -> int:
    from .demo import demo

    demo(run_dir=args.run_dir, time_budget=parse_duration(args.time_budget))
    return 0
