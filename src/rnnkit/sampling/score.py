"""Scoring text with a trained model: nats and bits per token, perplexity, lines ranked, next tokens.

A text is read as the validation pass reads its split: its ids are cut into many lanes that
advance together, one forward pass per chunk of columns, the hidden state carried from chunk
to chunk, so a CPU runs a few large matrix products rather than one small one per token.
Unlike the validation pass, every lane but the first first reads the WARMUP tokens before
its start without counting them, so the result is that of one pass from the beginning of the
text (2e-7 relative on a trained model; tests/test_score.py checks 1e-5), whatever the number
of lanes. The first token is predicted from the start of a line ("\n"), as `rnnkit sample`
begins; for a model that never saw a newline, the first token is context only.

Lines (score_lines) are each read from a fresh state primed with "\n" and end with their
newline, as list mode generates an item; lines of similar length share a padded batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputFileError, RnnkitError
from ..model.language_model import LanguageModel
from ..model.mixture import Mixture
from ..text.vocab import UnknownTokensError, Vocab

WARMUP = 64  # tokens a lane reads before its first counted one (32 already gave 2e-6 relative)
MIN_LANE = 16 * WARMUP  # shortest lane worth cutting: the warm-ups add at most 1/16
# lanes x columns per forward pass: on a 2-core Zen 5, 64 x 64 ran a 2x256 LSTM 5-15% faster than
# 128 or 256 lanes (the state of fewer lanes stays in cache); a GPU wants far more lanes
MAX_LANES = {"cpu": 64, "default": 1024}
MAX_COLUMNS = {"cpu": 64, "default": 128}
LOGITS_BUDGET = 1 << 24  # most logits held at once (64 MB in float32), for large vocabularies
BLOCK = 1 << 21  # tokens scored at once: memory stays bounded whatever the text's length


@dataclass
class ScoreResult:
    """How well the model predicts a text: `tokens` predicted at `total_nats` in all."""

    total_nats: float
    tokens: int
    skipped: int = 0  # unknown characters left out (skip_unknown)
    unknown: list[str] = field(default_factory=list)  # their names

    @property
    def nats_per_token(self) -> float:
        return self.total_nats / self.tokens if self.tokens else math.nan

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    def __add__(self, other: "ScoreResult") -> "ScoreResult":
        unknown = list(dict.fromkeys(self.unknown + other.unknown))
        return ScoreResult(self.total_nats + other.total_nats, self.tokens + other.tokens,
                           self.skipped + other.skipped, unknown)


# ---- text -> ids ---------------------------------------------------------------------------------
def encode(vocab: Vocab, text: str | bytes, skip_unknown: bool, where: str = "the text") -> tuple[np.ndarray, ScoreResult]:
    """The ids of `text`, and a ScoreResult holding only what was skipped; unknown characters
    are a one-line error unless skipped."""
    try:
        return vocab.encode(text), ScoreResult(0.0, 0)
    except UnknownTokensError as e:
        if not skip_unknown:
            raise InputFileError(f"{where} has {e} (the model never saw them); "
                                 "pass --skip_unknown to leave them out and count them") from None
        ids = vocab.encode(text, unknown="skip")
        return ids, ScoreResult(0.0, 0, len(vocab.symbols(text)) - len(ids), e.shown)


def line_start(vocab: Vocab) -> int | None:
    """The id every text is predicted after: the newline, as sampling begins; None if it has none."""
    return vocab.id_of("\n")


# ---- reading a model in batches -------------------------------------------------------------------
class Reader:
    """A model read in batches: lanes and columns per forward pass for its device, the
    autocast precision (--amp; None: float32), and the n-gram mixed in (None: the network alone)."""

    def __init__(self, model: LanguageModel, precision: torch.dtype | None = None, mixture: Mixture | None = None):
        self.model, self.precision, self.mixture = model, precision, mixture
        self.device = next(model.parameters()).device
        kind = self.device.type if self.device.type in MAX_LANES else "default"
        self.lanes, self.columns = MAX_LANES[kind], MAX_COLUMNS[kind]
        self.sum_dtype = torch.float32 if self.device.type == "mps" else torch.float64  # MPS has no float64

    def forward(self, ids: torch.Tensor, state=None):
        if self.precision is None:
            return self.model(ids, state)
        with torch.autocast(self.device.type, dtype=self.precision):
            return self.model(ids, state)

    def columns_for(self, rows: int) -> int:
        """Columns per pass for `rows` rows, fewer for a large vocabulary (LOGITS_BUDGET)."""
        return max(8, min(self.columns, LOGITS_BUDGET // (rows * self.model.config.vocab_size)))


def precision_for(amp: str, model: LanguageModel) -> torch.dtype | None:
    """What --amp off|bf16|fp16|auto means for scoring on the model's device (None: float32).
    bf16 on a CPU with bf16 instructions reads ~1.7x faster, its nats/token ~1e-4 off (README)."""
    from ..core.device import autocast_dtype, check_cpu_bf16

    device = next(model.parameters()).device
    dtype = autocast_dtype(amp, device)
    if dtype is not None and device.type == "cpu":
        check_cpu_bf16(model.config.model_type)
    return dtype


def _losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(batch, time) nats of each target class under (batch, time, classes) logits."""
    flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none")
    return flat.view(targets.shape)


# ---- one long text, in lanes -------------------------------------------------------------------------
class StreamScorer:
    """Scores a text fed in pieces (a file read in chunks) as one pass from its start would."""

    def __init__(self, reader: Reader, start: int | None):
        self.reader = reader
        self.context = np.array([] if start is None else [start], dtype=np.int64)
        self.at_start = True  # the context holds the whole text so far: read from a zero state
        self.pending: list[np.ndarray] = []
        self.result = ScoreResult(0.0, 0)

    def feed(self, ids: np.ndarray) -> None:
        self.pending.append(np.asarray(ids, dtype=np.int64))
        if sum(len(p) for p in self.pending) >= BLOCK:
            self._score_pending()

    def finish(self) -> ScoreResult:
        self._score_pending()
        return self.result

    def _score_pending(self) -> None:
        seq = np.concatenate([self.context, *self.pending])
        self.pending = []
        first = len(self.context) if len(self.context) else 1  # no start token: the first is context only
        if len(seq) > first:
            nats = block_nats(self.reader, seq, first, self.at_start)
            if self.reader.mixture is not None:
                nats = self.reader.mixture.token_nats(nats, seq, first)
            self.result = self.result + ScoreResult(float(nats.sum()), len(seq) - first)
            self.at_start = False  # blocks are >= BLOCK tokens: the next one has its full warm-up
            self.context = seq[-(WARMUP + 1):]
        else:
            self.context = seq


def lane_layout(n: int, first: int, max_lanes: int) -> tuple[np.ndarray, int]:
    """(first target position of each lane, lane length) for targets seq[first:first + n]."""
    lanes = max(1, min(max_lanes, n // MIN_LANE))
    length = -(-n // lanes)
    return first + length * np.arange(lanes), length


@torch.inference_mode()
def block_nats(reader: Reader, seq: np.ndarray, first: int, at_start: bool) -> np.ndarray:
    """The network's nats of predicting each token of seq[first:] from those before it.

    seq[:first] is context only. at_start: seq[0] begins the text (read from a zero state);
    else seq[:first] holds at least the WARMUP + 1 tokens before seq[first]."""
    starts, length = lane_layout(len(seq) - first, first, reader.lanes)
    inputs = starts[:, None] - 1 + np.arange(length)  # lane k reads seq[starts[k] - 1 ...]
    valid = inputs + 1 < len(seq)
    x = torch.from_numpy(seq[np.where(valid, inputs, 0)]).to(reader.device)
    y = torch.from_numpy(seq[np.where(valid, inputs + 1, 0)] - 1).to(reader.device)
    state = _warm_up(reader, seq, starts, at_start)
    columns = reader.columns_for(len(starts))
    nats = torch.zeros(x.shape, dtype=reader.sum_dtype, device=reader.device)
    for c in range(0, length, columns):
        logits, state = reader.forward(x[:, c:c + columns], state)
        nats[:, c:c + columns] = _losses(logits, y[:, c:c + columns])
    return nats.cpu().numpy()[valid]  # lane by lane: the targets in the text's order


def _warm_up(reader: Reader, seq: np.ndarray, starts: np.ndarray, at_start: bool):
    """The hidden state of each lane after the WARMUP tokens before its first input (None: all
    zero). A lane whose first input begins the text starts from zero instead."""
    begins_text = starts - 1 == 0 if at_start else np.zeros(len(starts), dtype=bool)
    if begins_text.all():
        return None
    assert (starts[~begins_text] - 1 >= WARMUP).all(), "every other lane has its full warm-up"
    cols = np.clip(starts[:, None] - 1 - WARMUP + np.arange(WARMUP), 0, None)
    _, state = reader.forward(torch.from_numpy(seq[cols]).to(reader.device))
    keep = torch.from_numpy(~begins_text).to(reader.device).view(1, -1, 1)
    return tuple(s * keep for s in state) if isinstance(state, tuple) else state * keep


def score_ids(reader: Reader, ids: np.ndarray, start: int | None) -> ScoreResult:
    scorer = StreamScorer(reader, start)
    for i in range(0, len(ids), BLOCK):
        scorer.feed(ids[i:i + BLOCK])
    return scorer.finish()


def score_text(model: LanguageModel, vocab: Vocab, text: str | bytes, skip_unknown: bool = False,
               precision: torch.dtype | None = None, mixture: Mixture | None = None) -> ScoreResult:
    ids, skipped = encode(vocab, text, skip_unknown)
    return score_ids(Reader(model, precision, mixture), ids, line_start(vocab)) + skipped


def score_file(model: LanguageModel, vocab: Vocab, path: str | Path, skip_unknown: bool = False,
               precision: torch.dtype | None = None, mixture: Mixture | None = None) -> ScoreResult:
    """A file read in 4 MB chunks, so memory stays bounded however large it is."""
    from ..text.corpus import iter_chunks

    path = Path(path)
    scorer, skipped = StreamScorer(Reader(model, precision, mixture), line_start(vocab)), ScoreResult(0.0, 0)
    for chunk in iter_chunks([path], vocab.kind):
        try:
            ids, chunk_skipped = encode(vocab, chunk, skip_unknown, str(path))
        except InputFileError:
            raise InputFileError(_unknown_in_file(vocab, path)) from None
        skipped = skipped + chunk_skipped
        scorer.feed(ids)
    result = scorer.finish() + skipped
    if result.tokens == 0:
        raise InputFileError(f"{path} has no tokens to score" + (" but unknown ones" if result.skipped else ""))
    return result


def _unknown_in_file(vocab: Vocab, path: Path) -> str:
    """The one-line error naming every character of the file that the model lacks."""
    from ..text.corpus import iter_chunks

    names: dict[str, None] = {}
    for chunk in iter_chunks([path], vocab.kind):
        try:
            vocab.encode(chunk)
        except UnknownTokensError as e:
            names.update(dict.fromkeys(e.shown))
    return (f"{path} has {UnknownTokensError(list(names))} (the model never saw them); "
            "pass --skip_unknown to leave them out and count them")


# ---- lines, each from a fresh state ----------------------------------------------------------------
def score_lines(model: LanguageModel, vocab: Vocab, lines: Iterable[str | bytes], skip_unknown: bool = False,
                precision: torch.dtype | None = None, mixture: Mixture | None = None) -> list[ScoreResult]:
    """One result per line (given without its newline): the line and its newline, read from the
    start of a line, as list mode generates an item."""
    newline = line_start(vocab)
    if newline is None:
        raise RnnkitError("this model never saw a newline, so it has no lines to score; score the file as one text")
    items, skipped = [], []
    for n, line in enumerate(lines, 1):
        ids, s = encode(vocab, line, skip_unknown, f"line {n}")
        items.append(np.concatenate([[newline], ids, [newline]]).astype(np.int64))
        skipped.append(s)
    reader = Reader(model, precision, mixture)
    nats = [n.sum() for n in item_nats(reader, items)]
    return [ScoreResult(float(t), len(item) - 1) + s for t, item, s in zip(nats, items, skipped)]


@torch.inference_mode()
def item_nats(reader: Reader, items: list[np.ndarray]) -> list[np.ndarray]:
    """The nats of each token of each item but its first (context only), under the network and
    the reader's mixture; items of similar length share a padded batch."""
    out: list[np.ndarray] = [np.zeros(0)] * len(items)
    # as many padded tokens per batch as a pass over lanes reads: 32k at once ran 4x slower on a CPU
    limit = max(reader.columns, min(reader.lanes * reader.columns, LOGITS_BUDGET // reader.model.config.vocab_size))
    for batch in _length_batches(items, limit):
        width = max(len(items[i]) for i in batch)
        padded = np.zeros((len(batch), width), dtype=np.int64)  # id 0: padding, masked out
        for row, i in enumerate(batch):
            padded[row, :len(items[i])] = items[i]
        ids = torch.from_numpy(padded).to(reader.device)
        x, y = ids[:, :-1], (ids[:, 1:] - 1).clamp(min=0)
        state, nats = None, torch.zeros(x.shape, dtype=reader.sum_dtype, device=reader.device)
        columns = reader.columns_for(len(batch))
        for c in range(0, width - 1, columns):
            logits, state = reader.forward(x[:, c:c + columns], state)
            nats[:, c:c + columns] = _losses(logits, y[:, c:c + columns])
        rows = nats.cpu().numpy()
        for row, i in enumerate(batch):
            out[i] = rows[row, :len(items[i]) - 1]
            if reader.mixture is not None:
                out[i] = reader.mixture.token_nats(out[i], items[i], 1)
    return out


def _length_batches(items: list[np.ndarray], limit: int) -> Iterator[list[int]]:
    """Item indices, shortest first, in batches of at most `limit` padded tokens (at least one item)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * len(items[i]) > limit:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


# ---- the next token ----------------------------------------------------------------------------------
@torch.inference_mode()
def next_tokens(model: LanguageModel, vocab: Vocab, text: str | bytes = "", k: int = 10,
                skip_unknown: bool = False, mixture: Mixture | None = None) -> list[tuple[str, float]]:
    """The k most likely tokens to follow `text`, most likely first: the distribution `rnnkit
    sample --start_text TEXT` draws its first token from (no text: the start of a line)."""
    if k < 1:
        raise RnnkitError(f"--top_k must be 1 or more, got {k}")
    ids, _ = encode(vocab, text, skip_unknown, "the start text")
    if len(ids) == 0:
        if line_start(vocab) is None:
            raise RnnkitError("give a start text: this model never saw a newline to begin a line from")
        ids = np.array([line_start(vocab)])
    device = next(model.parameters()).device
    logits, _ = model(torch.from_numpy(ids.astype(np.int64)).to(device).unsqueeze(0))
    logits = logits[0, -1:].float()
    if mixture is not None:
        logits = torch.from_numpy(mixture.mix_logits(logits.cpu().numpy(), ids[None].astype(np.int64)))
    probs = torch.softmax(logits[0], -1)
    top = torch.topk(probs, min(k, len(probs)))
    return [(vocab.tokens[i], p) for i, p in zip(top.indices.tolist(), top.values.tolist())]
