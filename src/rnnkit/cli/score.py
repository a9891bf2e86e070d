"""`rnnkit score`: how well a trained model predicts text, lines ranked by likelihood, the next tokens."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from ..errors import ConfigError, InputFileError
from .common import NO_NGRAM_HELP, flag, new_parser


def register(sub) -> None:
    p = new_parser(
        sub, "score", "how well a model predicts text: nats and bits per token, perplexity; lines ranked; next tokens",
        description="Score text files with a trained model (mean nats and bits per token, perplexity, tokens "
        "counted; the first token is predicted from the start of a line), rank each line of them (--lines), "
        "or print the most likely next tokens after a start text (--top_k K --start_text TEXT).",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="text file(s) (or folders) to score, each on its own")
    flag(p, "checkpoint", required=True, help="checkpoint .json, its .safetensors, or a run folder (its best)")
    flag(p, "lines", action="store_true", help="score each line with its newline, from the start of a line, "
         "and print them ranked, most likely first")
    flag(p, "rank_by", default="per_token", choices=["per_token", "total"], help="--lines: rank by nats per token "
         "(default: the line's length does not count) or by total nats (the whole line's probability: short lines first)")
    flag(p, "output", default=None, help="write CSV to this file instead of the table")
    flag(p, "force", action="store_true", help="overwrite the --output file if it exists")
    flag(p, "top_k", type=int, default=None, metavar="K", help="print the K most likely next tokens after --start_text")
    flag(p, "start_text", default=None, help="the text whose next token --top_k shows (default: the start of a line)")
    flag(p, "skip_unknown", action="store_true", help="leave out characters the model never saw, and count them")
    flag(p, "amp", default="off", choices=["off", "auto", "bf16", "fp16"],
         help="off (float32, default), or bf16: faster on a CPU with bf16 instructions, ~1e-4 less exact")
    flag(p, "gpu", type=int, default=None, help="torch-rnn's GPU index; -1 for the CPU")
    flag(p, "device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    flag(p, "no_ngram", action="store_true", help=NO_NGRAM_HELP)
    p.set_defaults(func=run_score)


def run_score(args) -> int:
    from ..sampling.generator import Generator
    from .lm import _check_output_path

    next_mode = args.top_k is not None or args.start_text is not None
    if next_mode and args.files:
        raise ConfigError("give FILE(s) to score, or --top_k/--start_text for the next tokens, not both")
    if not next_mode and not args.files:
        raise ConfigError("give the text file(s) to score (rnnkit score --checkpoint CKPT FILE...), "
                          "or --top_k K --start_text TEXT for the most likely next tokens")
    if args.output:
        _check_output_path(args.output, args.force)
    gen = Generator.load(args.checkpoint, args.device, args.gpu, ngram=not args.no_ngram)
    if next_mode:
        rows = _next_tokens(gen, args)
    elif args.lines:
        rows = _ranked_lines(gen, args)
    else:
        rows = _files(gen, args)
    if args.output:
        _write_csv(Path(args.output), rows)
        print(f"wrote {len(rows) - 1} rows to {args.output}", file=sys.stderr)
    return 0


# ---- files, each as one text -----------------------------------------------------------------------
def _files(gen, args) -> list[list]:
    from ..sampling.score import precision_for, score_file
    from ..text.corpus import input_files

    files = input_files(args.files)
    precision = precision_for(args.amp, gen.model)
    results = []
    for path in files:
        result = score_file(gen.model, gen.vocab, path, args.skip_unknown, precision, gen.mixture)
        _note_skipped(str(path), result)
        results.append((str(path), result))
    if not args.output:
        _print_files_table(results)
    header = ["file", "tokens", "nats_per_token", "bits_per_token", "perplexity", "skipped"]
    return [header] + [[name, r.tokens, f"{r.nats_per_token:.6f}", f"{r.bits_per_token:.6f}", f"{r.perplexity:.6f}",
                        r.skipped] for name, r in results]


def _print_files_table(results: list) -> None:
    from ..sampling.score import ScoreResult

    if len(results) > 1:
        results = results + [("total", sum((r for _, r in results), ScoreResult(0.0, 0)))]
    width = max(4, *(len(name) for name, _ in results))
    print(f"{'file':<{width}}  {'tokens':>12}  {'nats/token':>10}  {'bits/token':>10}  {'perplexity':>10}")
    for name, r in results:
        print(f"{name:<{width}}  {r.tokens:>12,}  {r.nats_per_token:>10.4f}  {r.bits_per_token:>10.4f}  {r.perplexity:>10.3f}")


def _note_skipped(where: str, result) -> None:
    if result.skipped:
        names = ", ".join(result.unknown[:10]) + (f" and {len(result.unknown) - 10} more" if len(result.unknown) > 10 else "")
        print(f"note: {where}: left out {result.skipped:,} unknown character(s) ({names})", file=sys.stderr)


# ---- lines, ranked ------------------------------------------------------------------------------------
def _ranked_lines(gen, args) -> list[list]:
    from ..sampling.score import ScoreResult
    from ..text.corpus import input_files

    lines, blank = [], 0
    for path in input_files(args.files):
        file_lines = _read_lines(path, gen.vocab, args.skip_unknown)
        kept = [line for line in file_lines if line.strip()]
        blank += len(file_lines) - len(kept)
        lines.extend(kept)
    if blank:
        print(f"note: {blank:,} blank line(s) left out", file=sys.stderr)
    if not lines:
        raise InputFileError(f"{', '.join(args.files)}: no lines to score")
    results = gen.score_lines(lines, args.skip_unknown, args.amp)
    _note_skipped("the lines", sum(results, ScoreResult(0.0, 0)))
    rank_by = "nats_per_token" if args.rank_by == "per_token" else "total_nats"
    order = sorted(range(len(lines)), key=lambda i: getattr(results[i], rank_by))  # stable: ties keep file order
    shown = [_as_text(lines[i]) for i in order]
    if not args.output:
        print(f"{'nats/token':>10}  {'total nats':>10}  {'tokens':>6}  line")
        for i, text in zip(order, shown):
            r = results[i]
            print(f"{r.nats_per_token:>10.4f}  {r.total_nats:>10.3f}  {r.tokens:>6}  {text}")
    header = ["line", "nats_per_token", "total_nats", "tokens"]
    return [header] + [[text, f"{results[i].nats_per_token:.6f}", f"{results[i].total_nats:.6f}", results[i].tokens]
                       for i, text in zip(order, shown)]


def _read_lines(path: Path, vocab, skip_unknown: bool) -> list:
    """The file's lines without their newlines (bytes in bytes mode; a last line needs none),
    after a one-line error naming the characters the model lacks, unless they are to be skipped."""
    from ..sampling.score import encode

    if vocab.kind == "bytes":
        text = path.read_bytes()
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise InputFileError(f"{path} is not valid UTF-8 (byte {e.start}); convert it to UTF-8") from None
    if not skip_unknown:
        encode(vocab, text, False, str(path))  # the whole file's unknown characters in one line
    lines = text.split(b"\n" if isinstance(text, bytes) else "\n")
    return lines[:-1] if lines and not lines[-1] else lines


def _as_text(line) -> str:
    return line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line


# ---- the next token -----------------------------------------------------------------------------------
def _next_tokens(gen, args) -> list[list]:
    k = args.top_k if args.top_k is not None else 10
    top = gen.next_tokens(args.start_text or "", k, args.skip_unknown)
    names = gen.vocab.describe_tokens([token for token, _ in top])
    if not args.output:
        for name, (_, p) in zip(names, top):
            print(f"{p:.6f}  {name}")
    return [["token", "probability"]] + [[token, f"{p:.6f}"] for token, p in top]


def _write_csv(path: Path, rows: list[list]) -> None:
    from ..core.atomic import atomic_write_text

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    atomic_write_text(path, buffer.getvalue())
