"""Generating text from a trained model: temperature, top-k, top-p, argmax, batches, streams.

Every sample in a batch runs in one forward call per step. Without --stop_at or
streaming the loop never waits on the host, so on a GPU it runs ahead asynchronously.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from .checkpoint import load_checkpoint
from .device import resolve_device
from .errors import ConfigError, RnnkitError
from .model import LanguageModel, model_from_checkpoint
from .vocab import UnknownTokensError, Vocab


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
        if self.stop_at == "":
            self.stop_at = None


class Generator:
    """A trained language model ready to sample from."""

    def __init__(self, model: LanguageModel, vocab: Vocab, meta: dict | None = None):
        self.model = model.eval()
        self.vocab = vocab
        self.meta = meta or {}
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, checkpoint: str | Path, device: str | None = "auto", gpu: int | None = None) -> "Generator":
        dev = resolve_device(device, gpu)
        ckpt = load_checkpoint(checkpoint)
        model = model_from_checkpoint(ckpt, dev)
        meta = dict(ckpt.meta, checkpoint_path=str(ckpt.path))
        return cls(model, Vocab.from_json_dict(ckpt.meta["vocab"]), meta)

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
            "device": str(self.device),
        }

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
        self._cpu_gen = torch.Generator()
        if opts.seed is not None:
            self._cpu_gen.manual_seed(opts.seed)
        else:
            self._cpu_gen.seed()
        gen = self._cpu_gen
        if self.device.type != "cpu":
            gen = torch.Generator(self.device)
            gen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self._cpu_gen)))
        n = opts.num_samples
        prime = self._prime_ids(opts).to(self.device)
        stop = StopMatcher(self.vocab, opts.stop_at, n) if opts.stop_at else None
        with torch.inference_mode():
            logits, state = self.model(prime.unsqueeze(0).expand(n, -1))
            logits = logits[:, -1]
            chunk: list[torch.Tensor] = []
            for _ in range(opts.length):
                nxt = pick_next(logits, opts, gen)  # (n,) class indices, 0-based
                ids = nxt + 1
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
                logits, state = self.model(ids.view(n, 1), state)
                logits = logits[:, -1]
            if chunk:
                yield from _rows(chunk)


def _rows(chunk: list[torch.Tensor]) -> Iterator[list[int]]:
    """Per-step id lists from a chunk of (n,) tensors, in one host transfer."""
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


def pick_next(logits: torch.Tensor, opts: SampleOptions, gen: torch.Generator) -> torch.Tensor:
    if not opts.sample:
        return logits.argmax(-1)
    logits = logits.float() / opts.temperature
    if opts.top_k is not None and opts.top_k < logits.shape[-1]:
        kth = torch.topk(logits, opts.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    if opts.top_p is not None and opts.top_p < 1:
        sorted_p, order = torch.sort(probs, descending=True, dim=-1)
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        drop = (sorted_p.cumsum(-1) - sorted_p) >= opts.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def sample(checkpoint: str | Path, device: str | None = "auto", **options) -> list[str]:
    """One-call API: `rnnkit.sample("cv/checkpoint_1000.json", length=200, temperature=0.8)`."""
    return Generator.load(checkpoint, device).generate(SampleOptions(**options))
