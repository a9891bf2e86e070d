"""Generating text from a trained model: temperature, top-k, top-p, argmax, batches, streams.

Every sample in a batch advances together, one step per token. On a CPU the step runs
in NumPy (cpu_step.py: ~10x faster than calling the torch model per token, same
probabilities); elsewhere it is the model's own forward, and without --stop_at or
streaming that loop never waits on the host, so on a GPU it runs ahead asynchronously.
Tokens are drawn with the Gumbel-max trick from NumPy noise, so a seed gives the same
text on either path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from ..core.checkpoint import load_checkpoint
from ..core.device import resolve_device
from ..errors import ConfigError, RnnkitError
from ..model.language_model import LanguageModel, model_from_checkpoint
from ..model.mixture import Histories, Mixture, load_mixture
from ..text.vocab import UnknownTokensError, Vocab
from . import score as scoring
from .cpu_step import CpuLM, blas_threads_for
from .score import ScoreResult


@dataclass
class SampleOptions:
    length: int = 2000
    start_text: str = ""
    sample: bool = True  # False: argmax at every step
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    num_samples: int = 1
    seed: int | None = None
    stop_at: str | None = None
    skip_unknown: bool = False  # drop start-text characters the model never saw

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ConfigError(f"--length must be 0 or more, got {self.length}")
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be greater than 0, got {self.temperature}; use --sample 0 for argmax")
        if self.top_k is not None and self.top_k <= 0:
            raise ConfigError(f"--top_k must be a positive whole number, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top_p must be in (0, 1], got {self.top_p}")
        if self.num_samples <= 0:
            raise ConfigError(f"--num_samples must be 1 or more, got {self.num_samples}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"--seed must be 0 or more, got {self.seed}")
        if self.stop_at == "":
            self.stop_at = None


class Generator:
    """A trained language model ready to sample from."""

    fast_path = True  # on a CPU, step in NumPy (cpu_step.py); False: the torch model's own forward

    def __init__(self, model: LanguageModel, vocab: Vocab, meta: dict | None = None, mixture: Mixture | None = None):
        self.model = model.eval()
        self.vocab = vocab
        self.meta = meta or {}
        self.mixture = mixture  # the n-gram mixed into every distribution (None: the network alone)
        self.device = next(model.parameters()).device
        self._cache: dict = {}  # the NumPy copy of the weights; shallow copies share it

    @classmethod
    def load(cls, checkpoint: str | Path, device: str | None = "auto", gpu: int | None = None,
             ngram: bool = True) -> "Generator":
        """ngram: mix in the checkpoint's n-gram where it has one (False: the network alone)."""
        dev = resolve_device(device, gpu)
        ckpt = load_checkpoint(checkpoint)
        model = model_from_checkpoint(ckpt, dev)
        meta = dict(ckpt.meta, checkpoint_path=str(ckpt.path))
        mixture = load_mixture(ckpt.meta["ngram"], ckpt.path) if ngram and ckpt.meta.get("ngram") else None
        return cls(model, Vocab.from_json_dict(ckpt.meta["vocab"]), meta, mixture)

    def describe(self) -> dict:
        c = self.model.config
        return {
            "checkpoint": self.meta.get("checkpoint_path"),
            "model_type": c.model_type,
            "rnn_size": c.rnn_size,
            "num_layers": c.num_layers,
            "wordvec_size": c.wordvec_size,
            "parameters": self.model.num_parameters(),
            "vocab_size": len(self.vocab),
            "tokens": self.vocab.kind,
            "iteration": self.meta.get("iteration"),
            "val_loss": self.meta.get("val_loss"),
            "ngram": self.mixture.describe() if self.mixture else None,
            "val_loss_mixed": self.mixed_val_loss(),
            "device": str(self.device),
        }

    def mixed_val_loss(self) -> float | None:
        """The validation loss of what this generator samples from, where training measured it
        (the n-gram mixture's; None without one)."""
        return (self.meta.get("ngram") or {}).get("val_loss_mixed") if self.mixture else None

    # ---- public API ------------------------------------------------------------------
    def generate(self, opts: SampleOptions | None = None, **kwargs) -> list[str]:
        """num_samples texts, each the start text followed by up to `length` new tokens."""
        opts = opts or SampleOptions(**kwargs)
        tokens = self._run(opts)
        return [opts.start_text + self._decode(row) for row in tokens]

    def stream(self, opts: SampleOptions | None = None, **kwargs) -> Iterator[str]:
        """Text pieces of one sample as they are generated (the start text first)."""
        opts = opts or SampleOptions(**kwargs)
        if opts.num_samples != 1:
            raise ConfigError("streaming writes one sample; drop --num_samples or --stream")
        decoder = self.vocab.decoder()
        if opts.start_text:
            yield opts.start_text
        for ids in self._steps(opts, live=True):
            if ids[0]:
                yield decoder.feed(ids[0])
        tail = decoder.flush()
        if tail:
            yield tail

    # ---- scoring (score.py) ------------------------------------------------------------
    def score(self, text: str | bytes, skip_unknown: bool = False, amp: str = "off") -> ScoreResult:
        """How well the model predicts `text`: nats and bits per token, perplexity, tokens counted.
        The first token is predicted from the start of a line, as sampling begins."""
        return scoring.score_text(self.model, self.vocab, text, skip_unknown, scoring.precision_for(amp, self.model),
                                  self.mixture)

    def score_lines(self, lines: Iterable[str | bytes], skip_unknown: bool = False, amp: str = "off") -> list[ScoreResult]:
        """One result per line, each with its newline and from a fresh state, as list mode generates it."""
        return scoring.score_lines(self.model, self.vocab, lines, skip_unknown, scoring.precision_for(amp, self.model),
                                   self.mixture)

    def next_tokens(self, text: str | bytes = "", k: int = 10, skip_unknown: bool = False) -> list[tuple[str, float]]:
        """The k most likely tokens after `text` (empty: the start of a line), with their probabilities."""
        return scoring.next_tokens(self.model, self.vocab, text, k, skip_unknown, self.mixture)

    # ---- the loop --------------------------------------------------------------------
    def _decode(self, row: list[int]) -> str:
        return self.vocab.decode(row)

    def _prime_ids(self, opts: SampleOptions) -> torch.Tensor:
        text = opts.start_text
        if text:
            try:
                ids = self.vocab.encode(text, unknown="skip" if opts.skip_unknown else "error")
            except UnknownTokensError as e:
                raise RnnkitError(
                    f"the start text has {e} (the model never saw them); remove them or pass --skip_unknown to leave them out"
                ) from None
            if len(ids):
                return torch.as_tensor(ids, dtype=torch.long)
        newline = self.vocab.id_of("\n")
        if newline is not None:  # begin as if at the start of a line
            return torch.tensor([newline])
        return torch.randint(1, len(self.vocab) + 1, (1,), generator=self._cpu_gen)

    def _run(self, opts: SampleOptions) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(opts.num_samples)]
        for ids in self._steps(opts):
            for row, i in zip(out, ids):
                if i:
                    row.append(i)
        return out

    def _steps(self, opts: SampleOptions, live: bool = False) -> Iterator[list[int]]:
        """Yields, per step, one id per sample (0 once that sample has stopped).

        With `live` (streaming) each step reaches the host at once; otherwise in chunks.
        """
        rng = np.random.default_rng(opts.seed)  # no seed: fresh entropy
        self._cpu_gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        n = opts.num_samples
        prime = self._prime_ids(opts).to(self.device)
        stop = StopMatcher(self.vocab, opts.stop_at, n) if opts.stop_at else None
        noise = GumbelNoise(rng, n, self.model.config.vocab_size, self.device)
        with torch.inference_mode():
            logits, state = self.model(prime.unsqueeze(0))  # the start text once, for all samples
        fast = self.fast_path and self.device.type == "cpu" and opts.length > 0
        history = Histories(prime.cpu().numpy(), n, self.mixture.context) if self.mixture else None
        steps = (self._numpy_steps(logits, state, n, opts, noise, history) if fast
                 else self._torch_steps(logits, state, n, opts, noise, history))
        chunk: list = []
        for ids in steps:
            if stop is None and not live:
                chunk.append(ids)
                if len(chunk) == 256:  # one host transfer per chunk, not per token
                    yield from _rows(chunk)
                    chunk = []
            else:
                row = ids.tolist()
                if stop is not None:
                    row = stop.filter(row)
                yield row
                if stop is not None and stop.all_done:
                    return
        if chunk:
            yield from _rows(chunk)

    def _torch_steps(self, logits, state, n: int, opts: SampleOptions, noise: "GumbelNoise",
                     history: Histories | None) -> Iterator[torch.Tensor]:
        """The model's own forward, one token per call: any device, any model."""
        state = tuple(s.expand(-1, n, -1).contiguous() for s in state) if isinstance(state, tuple) else state.expand(-1, n, -1).contiguous()
        logits = logits[:, -1].expand(n, -1)
        with torch.inference_mode():
            for i in range(opts.length):
                if history is not None:  # the n-gram is counted on the host: one sync per token
                    logits = torch.from_numpy(self.mixture.mix_logits(logits.float().cpu().numpy(), history.ids)).to(self.device)
                ids = pick_next(logits, opts, noise.next()) + 1
                if history is not None:
                    history.push(ids.cpu().numpy())
                yield ids
                if i + 1 < opts.length:
                    logits, state = self.model(ids.view(n, 1), state)
                    logits = logits[:, -1]

    def _cpu_lm(self) -> CpuLM:
        """The NumPy weights, rebuilt only when the model's weights changed (shared by copies)."""
        key = CpuLM.key(self.model)
        if self._cache.get("key") != key:
            self._cache.update(key=key, lm=CpuLM(self.model))
        return self._cache["lm"]

    def _numpy_steps(self, logits, state, n: int, opts: SampleOptions, noise: "GumbelNoise",
                     history: Histories | None) -> Iterator[np.ndarray]:
        """The same step in NumPy (cpu_step.py): no per-op dispatch cost."""
        lm = self._cpu_lm()
        streams = lm.start(state, n)
        logits = np.repeat(logits[:, -1].float().numpy(), n, axis=0)
        with blas_threads_for(n):
            for i in range(opts.length):
                if history is not None:
                    logits = self.mixture.mix_logits(logits, history.ids)
                ids = pick_next_np(logits, opts, noise.next_np())
                ids += 1
                if history is not None:
                    history.push(ids)
                yield ids
                if i + 1 < opts.length:
                    logits = streams.step(ids)


class GumbelNoise:
    """Per-step Gumbel noise (n, V), drawn by NumPy from the seeded generator in fixed-size chunks.

    argmax(logits / T + Gumbel noise) is an exact sample of softmax(logits / T) (the
    Gumbel-max trick). Both step paths draw the same chunks, so a seed gives the same
    text on either path (up to float rounding at a near-tie) and on any device. NumPy
    draws it because torch's threaded kernels would leave threads spinning beside the
    single-threaded NumPy step.
    """

    def __init__(self, rng: np.random.Generator, n: int, vocab_size: int, device: torch.device):
        self.rng, self.shape, self.device = rng, (n, vocab_size), device
        self.chunk_steps = max(1, min(256, (1 << 18) // (n * vocab_size)))
        self.block, self.block_t, self.i = None, None, self.chunk_steps

    def _refill(self) -> None:
        u = self.rng.random((self.chunk_steps, *self.shape), dtype=np.float32)
        with np.errstate(divide="ignore"):  # u = 0 gives -inf: never picked
            self.block = -np.log(-np.log(u))
        self.block_t = None
        self.i = 0

    def next_np(self) -> np.ndarray:
        if self.i == self.chunk_steps:
            self._refill()
        self.i += 1
        return self.block[self.i - 1]

    def next(self) -> torch.Tensor:
        self.next_np()
        if self.block_t is None:
            self.block_t = torch.from_numpy(self.block).to(self.device)
        return self.block_t[self.i - 1]


def _rows(chunk: list) -> Iterator[list[int]]:
    """Per-step id lists from a chunk of (n,) arrays or tensors, in one host transfer."""
    if isinstance(chunk[0], np.ndarray):
        return iter(np.stack(chunk, 0).tolist())
    return iter(torch.stack(chunk, 0).cpu().tolist())


class StopMatcher:
    """Ends each sample once its text ends with `stop_at` (the stop string is kept)."""

    def __init__(self, vocab: Vocab, stop_at: str, n: int):
        self.vocab = vocab
        self.stop_at = stop_at
        self.tails = [""] * n
        self.done = [False] * n
        self.decoders = [vocab.decoder() for _ in range(n)]

    @property
    def all_done(self) -> bool:
        return all(self.done)

    def filter(self, row: list[int]) -> list[int]:
        for j, i in enumerate(row):
            if self.done[j]:
                row[j] = 0
                continue
            tail = self.tails[j] + self.decoders[j].feed(i)
            self.tails[j] = tail[-len(self.stop_at):]
            if tail.endswith(self.stop_at):
                self.done[j] = True
        return row


def pick_next(logits: torch.Tensor, opts: SampleOptions, noise: torch.Tensor) -> torch.Tensor:
    """(n,) class indices, 0-based: argmax, or a sample by the Gumbel-max trick."""
    if not opts.sample:
        return logits.argmax(-1)
    logits = logits.float() / opts.temperature
    if opts.top_k is not None and opts.top_k < logits.shape[-1]:
        kth = torch.topk(logits, opts.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p is not None and opts.top_p < 1:
        sorted_p, order = torch.sort(torch.softmax(logits, -1), descending=True, stable=True, dim=-1)
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        drop = (sorted_p.cumsum(-1) - sorted_p) >= opts.top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter_(-1, order, drop), float("-inf"))
    return (logits + noise).argmax(-1)


def pick_next_np(logits: np.ndarray, opts: SampleOptions, noise: np.ndarray) -> np.ndarray:
    """pick_next in NumPy; `logits` is a scratch buffer and is changed in place."""
    if not opts.sample:
        return logits.argmax(-1)
    if opts.temperature != 1:
        logits /= np.float32(opts.temperature)
    V = logits.shape[-1]
    if opts.top_k is not None and opts.top_k < V:
        kth = np.partition(logits, V - opts.top_k, axis=-1)[:, V - opts.top_k:V - opts.top_k + 1]
        logits[logits < kth] = -np.inf
    if opts.top_p is not None and opts.top_p < 1:
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, -1)
        drop = (sorted_p.cumsum(-1) - sorted_p) >= opts.top_p
        np.put_along_axis(logits, order, np.where(drop, -np.inf, np.take_along_axis(logits, order, -1)), -1)
    logits += noise
    return logits.argmax(-1)


def sample(checkpoint: str | Path, device: str | None = "auto", **options) -> list[str]:
    """One-call API: `rnnkit.sample("cv/checkpoint_1000.json", length=200, temperature=0.8)`."""
    return Generator.load(checkpoint, device).generate(SampleOptions(**options))
