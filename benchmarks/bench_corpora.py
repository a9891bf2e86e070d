"""Quality after `rnnkit train FILE --time_budget B` on seven kinds of corpus, against
references trained on the same split for the same wall clock.

    python benchmarks/bench_corpora.py                  # B = 120 s, all seven corpora (~50 minutes)
    python benchmarks/bench_corpora.py --quick          # B = 15 s, the big corpus cut to 6 MB: a smoke run
    python benchmarks/bench_corpora.py --corpora names tiny --budget 60
    python benchmarks/bench_corpora.py --corpora names --budget 600 --no_bare   # names vs makemore, 10 minutes

rnnkit runs as a user runs it: `rnnkit train FILE --time_budget B --checkpoint_name DIR/ck`
and no other flag (the word corpus goes through `rnnkit preprocess --tokens word` first, so
it trains from --input_h5/--input_json instead of FILE). Then, on the split that run made,
one at a time in this process:
  - bare PyTorch loops of a 2x256 and a 2x128 LSTM as torch-rnn trains them (embedding 64,
    Adam 2e-3, gradient values clipped at 5, 50 lanes x 50), each for B seconds of wall
    clock counted as rnnkit counts its budget (evaluations during training inside it, the
    final one after). Evaluations come as often as rnnkit's (schedule.eval_interval) and read
    the validation split as rnnkit's own evaluation does (its lanes), so every LSTM figure
    is the same quantity; the best evaluation is kept, as rnnkit keeps its best;
  - interpolated Kneser-Ney n-grams (rnnkit.model.ngram) of orders 2..7 over the whole
    validation split read as one stream; the best order is reported;
  - on the names corpus, karpathy/makemore's default Transformer, trained on the whole names
    of the train split and scored on those of the validation split with makemore's loss
    (mean nats per predicted character, the end of the name included), next to rnnkit's
    best checkpoint scored on the same names the same way.
Losses are nats per token: per character, per word for the word corpus.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_quality import BareLM
from common import Result, header, load, machine, matmul_gflops, wait_quiet, workdir
from corpora import Corpus, all_corpora
from torch import nn

BUDGET, QUICK_BUDGET = 120.0, 15.0
BARE_WIDTHS = (256, 128)
BARE = dict(layers=2, wordvec=64, batch=50, seq=50, lr=2e-3, clip=5.0)
NGRAM_ORDERS = range(2, 8)
MAKEMORE = dict(n_layer=4, n_embd=64, n_head=4, batch=32, lr=5e-4, weight_decay=0.01)
DEFAULT_CACHE = Path.home() / ".cache" / "rnnkit" / "bench-corpora"


@dataclass
class Row:
    """Everything measured on one corpus (losses in nats per token)."""

    corpus: str
    what: str
    tokens_kind: str
    file_bytes: int
    tokens: int = 0
    vocab: int = 0
    rnnkit_best: float | None = None  # the network's best evaluation
    rnnkit_last: float | None = None
    rnnkit_mixed: float | None = None  # the best checkpoint with its n-gram mixture (what sample and score use)
    mixture: str = ""  # its order and weight, or why there is none
    rnnkit_iterations: int = 0
    rnnkit_seconds: float = 0.0  # wall clock of the whole command
    auto_choice: dict = field(default_factory=dict)
    batch_size: int = 0  # rnnkit's, from config.json: its evaluation's lanes
    seq_length: int = 0
    eval_tokens: int | None = None  # rnnkit's evaluations read this much of the validation split (None: all)
    bare: dict = field(default_factory=dict)  # "2x256" -> {best, last, iterations}
    ngram: dict = field(default_factory=dict)  # order -> val loss
    # rnnkit's mixture is fitted and reported on the start of a long validation split: the n-grams
    # scored on those same tokens (order -> loss), which the ratio then uses
    mixture_tokens: int | None = None
    ngram_on_mixture_tokens: dict = field(default_factory=dict)
    ngram_order: int | None = None
    ngram_fit_seconds: float | None = None
    makemore: dict = field(default_factory=dict)  # names only

    @property
    def gap(self) -> float | None:
        return None if self.rnnkit_best is None or self.rnnkit_last is None else self.rnnkit_last - self.rnnkit_best

    @property
    def rnnkit(self) -> float | None:
        """rnnkit's held-out loss as a user gets it: with its n-gram mixture when it kept one."""
        return self.rnnkit_mixed if self.rnnkit_mixed is not None else self.rnnkit_best

    @property
    def best_reference(self) -> tuple[str, float] | None:
        refs = {f"bare {k}": v["best"] for k, v in self.bare.items()}
        if self.ngram_order:
            same = self.ngram_on_mixture_tokens
            refs[f"{self.ngram_order}-gram"] = same[self.ngram_order] if same else self.ngram[self.ngram_order]
        return min(refs.items(), key=lambda kv: kv[1]) if refs else None


# ---- rnnkit, as a user runs it -------------------------------------------------------------------
@dataclass
class RnnkitRun:
    run_dir: Path
    h5: Path
    json: Path
    seconds: float  # the whole command's wall clock: preprocessing, auto's probe, training, evaluations


def rnnkit_train(corpus: Corpus, text: Path, base: Path, budget: float, extra: tuple[str, ...] = ()) -> RnnkitRun:
    """`rnnkit train FILE --time_budget B` and no other flag (`extra`: flags a side experiment adds)."""
    run_dir = base / corpus.name
    if corpus.tokens == "word":
        h5, js = word_corpus(text, base / f"{corpus.name}-data")
        inputs = ["--input_h5", str(h5), "--input_json", str(js)]
    else:
        h5, js = run_dir / "corpus.h5", run_dir / "corpus.json"
        inputs = [str(text)]
    cmd = [sys.executable, "-m", "rnnkit", "train", *inputs, "--time_budget", f"{budget:g}s",
           "--checkpoint_name", str(run_dir / "ck"), *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"rnnkit train failed on {corpus.name}:\n{done.stderr[-3000:]}")
    print("  rnnkit: " + (done.stderr.strip().splitlines() or ["(no output)"])[-1], flush=True)
    return RnnkitRun(run_dir, h5, js, seconds)


def word_corpus(text: Path, folder: Path) -> tuple[Path, Path]:
    """`rnnkit preprocess --tokens word` with its default splits."""
    from rnnkit.text.corpus import preprocess

    folder.mkdir(parents=True, exist_ok=True)
    h5, js = folder / "corpus.h5", folder / "corpus.json"
    preprocess(input_txt=[str(text)], output_h5=str(h5), output_json=str(js), tokens="word", quiet=True)
    return h5, js


def read_rnnkit_run(run: RnnkitRun, row: Row) -> None:
    from rnnkit.runs.metrics import read_metrics

    records = read_metrics(run.run_dir)
    evals = [r["val_loss"] for r in records if r.get("val_loss") is not None]
    config = json.loads((run.run_dir / "config.json").read_text())
    row.rnnkit_best = min(evals) if evals else None
    mixed = [r for r in records if r.get("event") == "ngram"]
    if mixed and mixed[-1].get("ngram_order"):
        m = mixed[-1]
        row.rnnkit_mixed = m["val_loss_mixed"]
        row.mixture_tokens = m["val_tokens"]
        row.mixture = (f"{m['ngram_order']}-gram, network weight {m['network_weight']:.2f}: {m['val_loss_mixed']:.3f} vs the "
                       f"network's {m['val_loss_network']:.3f} on the same {m['val_tokens']:,} tokens read as one pass")
    else:
        row.mixture = "none kept" if mixed else "not fitted"
    row.rnnkit_last = evals[-1] if evals else None
    row.rnnkit_iterations = max((r.get("iteration", 0) for r in records), default=0)
    row.rnnkit_seconds = run.seconds
    row.auto_choice = config.get("auto_choice") or {}
    row.batch_size, row.seq_length = int(config["batch_size"]), int(config["seq_length"])
    row.eval_tokens = config.get("eval_tokens")


# ---- wall-clock training with evaluations inside the budget -------------------------------------
def timed_training(step: Callable[[], None], evaluate: Callable[[], float], budget: float,
                   interval: float) -> dict:
    """step() for `budget` seconds of wall clock, counted as rnnkit's --time_budget counts them:
    an evaluation `interval` s after the previous one ended is inside the budget, the final one
    after it. Returns {best, last, iterations, evals}."""
    t0 = time.perf_counter()
    last_eval, iterations, losses, fresh = t0, 0, [], False
    while time.perf_counter() - t0 < budget:
        step()
        iterations, fresh = iterations + 1, False
        if time.perf_counter() - last_eval >= interval:
            losses.append(evaluate())
            last_eval, fresh = time.perf_counter(), True
    if not fresh:
        losses.append(evaluate())
    return dict(best=min(losses), last=losses[-1], iterations=iterations, evals=len(losses))


# ---- bare LSTM loops --------------------------------------------------------------------------
def bare_lstm(train: np.ndarray, val_lanes, vocab_size: int, width: int, budget: float, interval: float) -> dict:
    from rnnkit.text.splits import Lanes, fit_lanes

    torch.manual_seed(0)
    model = BareLM(vocab_size, BARE["wordvec"], width, BARE["layers"])
    opt = torch.optim.Adam(model.parameters(), lr=BARE["lr"])
    lanes = Lanes(train, *fit_lanes(len(train), BARE["batch"], BARE["seq"]))
    position = {"i": 0, "state": None}

    def step() -> None:
        i = position["i"] % len(lanes)
        x, y = lanes.batch(i)
        logits, state = model(x, None if i == 0 else position["state"])
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1) - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), BARE["clip"])
        opt.step()
        position["i"], position["state"] = position["i"] + 1, tuple(s.detach() for s in state)

    return timed_training(step, lambda: lanes_loss(model, val_lanes), budget, interval)


@torch.no_grad()
def lanes_loss(model: nn.Module, lanes) -> float:
    """Mean loss per token over the validation lanes, as rnnkit's trainer evaluates."""
    model.eval()
    total, count, state = 0.0, 0, None
    for i in range(len(lanes)):
        x, y = lanes.batch(i)
        logits, state = model(x, state)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1) - 1, reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def rnnkit_eval_lanes(train: np.ndarray, val: np.ndarray, row: Row):
    """The validation lanes rnnkit's own evaluation read (as trainer.open_data cuts them: its
    --eval_tokens first tokens of the split, in its lanes)."""
    from rnnkit.text.splits import Lanes, fit_lanes

    b, _ = fit_lanes(len(train), row.batch_size, row.seq_length)  # shrunk where the training split is short
    val = val[:row.eval_tokens] if row.eval_tokens else val
    vb, vt = fit_lanes(len(val), b, row.seq_length)
    return Lanes(val, vb, vt) if vb else None


# ---- n-grams ------------------------------------------------------------------------------------
def ngram_scores(train: np.ndarray, val: np.ndarray, vocab_size: int, row: Row) -> None:
    from rnnkit.model.ngram import NGram

    models = NGram.fit_orders(train, vocab_size, NGRAM_ORDERS)
    row.ngram = {k: float(-m.log_prob(val).mean()) for k, m in models.items()}
    row.ngram_order = min(row.ngram, key=row.ngram.get)
    if row.mixture_tokens and row.eval_tokens and row.eval_tokens < len(val) - 1:  # a capped split, read as one stream
        row.ngram_on_mixture_tokens = {k: float(-m.log_prob(val[:row.mixture_tokens + 1])[1:].mean())
                                       for k, m in models.items()}
    t0 = time.perf_counter()
    NGram.fit(train, vocab_size, row.ngram_order)  # the best order's counting time on its own
    row.ngram_fit_seconds = time.perf_counter() - t0


# ---- makemore (names) ---------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(approximate="tanh"), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class MakemoreTransformer(nn.Module):
    """makemore's Transformer: token 0 starts and ends a name."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_embd: int, n_head: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*(Block(n_embd, n_head) for _ in range(n_layer)))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.lm_head(self.ln_f(self.blocks(self.wte(idx) + self.wpe(pos))))


def whole_lines(vocab, ids: np.ndarray, starts_at_line: bool) -> list[str]:
    """The complete, non-empty lines of a split: a line the split cuts at either end is left out."""
    lines = vocab.decode(ids).split("\n")
    lines = lines[:-1]  # after the last newline: empty or cut
    return [s for s in (lines if starts_at_line else lines[1:]) if s]


def makemore_tensors(lines: list[str], chars: dict[str, int], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """makemore's examples: x = [0, name, 0...], y = [name, 0, -1...]."""
    x = torch.zeros(len(lines), block_size, dtype=torch.long)
    y = torch.full((len(lines), block_size), -1, dtype=torch.long)
    for i, line in enumerate(lines):
        codes = torch.tensor([chars[c] for c in line], dtype=torch.long)
        x[i, 1: 1 + len(line)] = codes
        y[i, : len(line)], y[i, len(line)] = codes, 0
    return x, y


@torch.no_grad()
def makemore_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    model.eval()
    total = sum(F.cross_entropy(model(x[i:i + batch]).flatten(0, 1), y[i:i + batch].flatten(), ignore_index=-1,
                                reduction="sum").item() for i in range(0, len(x), batch))
    model.train()
    return total / int((y >= 0).sum())


def makemore_run(train_lines: list[str], val_lines: list[str], budget: float, interval: float) -> dict:
    c = MAKEMORE
    chars = {ch: i + 1 for i, ch in enumerate(sorted(set("".join(train_lines + val_lines))))}
    block_size = max(map(len, train_lines + val_lines)) + 1
    (xt, yt), (xv, yv) = (makemore_tensors(lines, chars, block_size) for lines in (train_lines, val_lines))
    torch.manual_seed(0)
    model = MakemoreTransformer(len(chars) + 1, block_size, c["n_layer"], c["n_embd"], c["n_head"])
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=c["weight_decay"], betas=(0.9, 0.99), eps=1e-8)

    def step() -> None:
        pick = torch.randint(len(xt), (c["batch"],))
        loss = F.cross_entropy(model(xt[pick]).flatten(0, 1), yt[pick].flatten(), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    result = timed_training(step, lambda: makemore_loss(model, xv, yv), budget, interval)
    return {**result, "block_size": block_size, "train_names": len(train_lines), "val_names": len(val_lines)}


def rnnkit_line_loss(run_dir: Path, lines: list[str]) -> float:
    """rnnkit's best checkpoint, with its n-gram mixture if it kept one (as `rnnkit sample` and
    `rnnkit score` use it), on whole lines read one by one from a zero state, as makemore reads
    names: a newline starts each line and every character and the closing newline are predicted."""
    from rnnkit.sampling.generator import Generator

    results = Generator.load(run_dir, "cpu").score_lines(lines)
    return sum(r.total_nats for r in results) / sum(r.tokens for r in results)


def names_comparison(run: RnnkitRun, vocab, train: np.ndarray, val: np.ndarray, budget: float, interval: float) -> dict:
    train_lines = whole_lines(vocab, train, True)
    val_lines = whole_lines(vocab, val, vocab.decode(train[-1:]) == "\n")
    wait_quiet()
    result = makemore_run(train_lines, val_lines, budget, interval)
    result["rnnkit_per_line"] = rnnkit_line_loss(run.run_dir, val_lines)
    return result


# ---- one corpus ---------------------------------------------------------------------------------
def measure_corpus(corpus: Corpus, cache: Path, base: Path, budget: float, bare: bool = True) -> Row:
    from rnnkit.text.splits import open_split
    from rnnkit.text.vocab import Vocab
    from rnnkit.training.schedule import eval_interval

    text = corpus.build(cache)
    row = Row(corpus.name, corpus.what, corpus.tokens, text.stat().st_size)
    print(f"\n-- {corpus.name}: {corpus.what} ({row.file_bytes / 1e6:.2f} MB)", flush=True)
    wait_quiet()
    run = rnnkit_train(corpus, text, base, budget)
    read_rnnkit_run(run, row)
    vocab = Vocab.load(run.json)
    train, val = np.asarray(open_split(run.h5, "train")), np.asarray(open_split(run.h5, "val"))
    row.vocab, row.tokens = len(vocab), len(train) + len(val) + len(open_split(run.h5, "test"))
    print(f"  {row.tokens:,} tokens, vocabulary {row.vocab}; rnnkit network best {_f(row.rnnkit_best)}, last "
          f"{_f(row.rnnkit_last)}, {row.rnnkit_iterations} iterations; n-gram mixture: {row.mixture}; "
          f"auto: {_choice(row.auto_choice)}", flush=True)
    interval = eval_interval(budget)
    val_lanes = rnnkit_eval_lanes(train, val, row)
    for width in BARE_WIDTHS if val_lanes is not None and bare else ():
        wait_quiet()
        row.bare[f"2x{width}"] = bare_lstm(train, val_lanes, row.vocab, width, budget, interval)
        print(f"  bare 2x{width}: best {_f(row.bare[f'2x{width}']['best'])} "
              f"({row.bare[f'2x{width}']['iterations']} iterations)", flush=True)
    ngram_scores(train, val, row.vocab, row)
    print("  n-grams: " + ", ".join(f"{k}: {v:.3f}" for k, v in row.ngram.items())
          + f"; order {row.ngram_order} counted in {row.ngram_fit_seconds:.2f} s", flush=True)
    if row.ngram_on_mixture_tokens:
        print(f"  n-grams on the {row.mixture_tokens:,} validation tokens rnnkit's mixture was fitted on (the ratio "
              "uses these): " + ", ".join(f"{k}: {v:.3f}" for k, v in row.ngram_on_mixture_tokens.items()), flush=True)
    if corpus.name == "names":
        row.makemore = names_comparison(run, vocab, train, val, budget, interval)
        print(f"  makemore Transformer: {_f(row.makemore['best'])} per name character "
              f"({row.makemore['iterations']} steps); rnnkit on the same names: {_f(row.makemore['rnnkit_per_line'])}",
              flush=True)
    return row


# ---- report -------------------------------------------------------------------------------------
def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _choice(choice: dict) -> str:
    keys = ("num_layers", "rnn_size", "batch_size", "seq_length", "learning_rate", "dropout", "weight_decay")
    return " ".join(f"{k}={choice[k]}" for k in keys if choice.get(k) is not None) or "-"


def table(rows: list[Row]) -> str:
    head = (f"  {'corpus':<9} {'MB':>6} {'tokens':>11} {'vocab':>6} | {'rnnkit':>6} {'net':>6} {'last':>6} {'gap':>6} {'iters':>6} | "
            f"{'2x256':>6} {'2x128':>6} {'n-gram':>10} {'makemore':>8} | {'ratio':>5} vs")
    lines = [head, "  " + "-" * (len(head) - 2)]
    for r in rows:
        ref = r.best_reference
        scores = r.ngram_on_mixture_tokens or r.ngram  # *: on the validation tokens the mixture was fitted on
        ngram = f"{_f(scores.get(r.ngram_order))}{'*' if r.ngram_on_mixture_tokens else ''} ({r.ngram_order})" if r.ngram_order else "-"
        lines.append(
            f"  {r.corpus:<9} {r.file_bytes / 1e6:>6.2f} {r.tokens:>11,} {r.vocab:>6} | {_f(r.rnnkit):>6} {_f(r.rnnkit_best):>6} "
            f"{_f(r.rnnkit_last):>6} {_f(r.gap):>6} {r.rnnkit_iterations:>6} | "
            f"{_f(r.bare.get('2x256', {}).get('best')):>6} {_f(r.bare.get('2x128', {}).get('best')):>6} {ngram:>10} "
            f"{_f(r.makemore.get('best')):>8} | "
            + (f"{r.rnnkit / ref[1]:>5.2f} {ref[0]}" if ref and r.rnnkit else "    -"))
    return "\n".join(lines)


def notes(rows: list[Row]) -> str:
    out = []
    for r in rows:
        out.append(f"  {r.corpus}: auto {_choice(r.auto_choice)}; rnnkit's n-gram mixture: {r.mixture}; the best n-gram "
                   f"alone, order {r.ngram_order}, counted in {_f(r.ngram_fit_seconds, 2)} s")
        if r.ngram_on_mixture_tokens:
            out.append(f"  {r.corpus}: *the n-gram and rnnkit on the first {r.mixture_tokens:,} validation tokens, which "
                       f"rnnkit's mixture was fitted on; on the whole split the {r.ngram_order}-gram scores "
                       f"{_f(r.ngram[r.ngram_order])}")
        if r.makemore:
            m = r.makemore
            out.append(f"  {r.corpus}: per name (makemore's loss, {m['val_names']} names of the val split): rnnkit "
                       f"{_f(m['rnnkit_per_line'])} vs makemore Transformer {_f(m['best'])} "
                       f"(ratio {m['rnnkit_per_line'] / m['best']:.2f}). rnnkit's network val loss {_f(r.rnnkit_best)} is over the "
                       "split's running text: the same characters and newlines, but each name read after the names "
                       "before it, and a name cut at either end of the split or of a lane counted too")
    return "\n".join(out)


def environment() -> dict:
    info = {"machine": machine(), "python": platform.python_version(), "torch": torch.__version__}
    try:
        import faker

        info["faker"] = faker.VERSION
    except ImportError:
        pass
    return info


def main(quick: bool = False, budget: float | None = None, names: list[str] | None = None,
         cache: Path = DEFAULT_CACHE, out: Path | None = None, bare: bool = True) -> list[Result]:
    budget = budget or (QUICK_BUDGET if quick else BUDGET)
    corpora = [c for c in all_corpora(quick) if not names or c.name in names]
    header(f"corpora: rnnkit train FILE --time_budget {budget:g}s vs references trained {budget:g} s each")
    gflops = matmul_gflops()
    print(f"  fp32 matmul 1024x1024: {gflops:.0f} GFLOP/s ({torch.get_num_threads()} threads)", flush=True)
    started, base = time.perf_counter(), workdir("corpora")
    rows = [measure_corpus(c, cache, base, budget, bare) for c in corpora]
    elapsed = time.perf_counter() - started
    print(f"\n== corpora, {budget:g} s each (val loss, nats per token; ratio = rnnkit's best / the best reference "
          f"of the same split) ==\n{table(rows)}\n{notes(rows)}")
    out = out or cache / "bench_corpora.json"
    report = {"budget_s": budget, "quick": quick, "matmul_gflops": gflops, "seconds": elapsed, "load": load(),
              **environment(), "corpora": [{**asdict(r), "gap": r.gap} for r in rows]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"  {elapsed:.0f} s in all; results also in {out}", flush=True)
    return [result(r) for r in rows]


def result(row: Row) -> Result:
    ref = row.best_reference
    return Result("corpora", f"{row.corpus}: val loss vs {ref[0] if ref else '-'}", row.rnnkit or math.nan,
                  ref[1] if ref else None, "nats", "(measured, no target)", None)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_BUDGET:g} s budgets and a 6 MB big corpus: a smoke run")
    ap.add_argument("--budget", type=float, help=f"seconds per training (default {BUDGET:g}, --quick {QUICK_BUDGET:g})")
    ap.add_argument("--corpora", nargs="+", choices=[c.name for c in all_corpora()], help="measure only these")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"where the corpora are built (default {DEFAULT_CACHE})")
    ap.add_argument("--json", type=Path, help="where to write the results (default CACHE/bench_corpora.json)")
    ap.add_argument("--no_bare", action="store_true", help="skip the bare LSTM loops (e.g. names against makemore alone)")
    a = ap.parse_args()
    main(a.quick, a.budget, a.corpora, a.cache, a.json, not a.no_bare)
