"""The exported web page (`rnnkit export --format html`): file size, load time and characters/s in Chromium.

For 1x128, 2x128 and 2x256 LSTMs (64-dim embeddings, a 97-character vocabulary: printable
ASCII, tab and newline) with random weights (the speed and size do not depend on them),
the page is exported, opened from disk in headless Chromium, and timed: the load (parse
the embedded JSON, decode the base64 weights, build the first layer's input table) and
`rnnkit.generate()` sampling one stream at temperature 1, timed inside the page with
performance.now(). Best of three runs; all are printed. The README's table comes from here.

    python benchmarks/bench_export.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import string
import time
from pathlib import Path

import torch
from common import Result, header, wait_quiet, workdir

CHROMIUM = Path(os.environ.get("RNNKIT_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZES = ((1, 128), (2, 128), (2, 256))  # (layers, rnn_size)
WORDVEC = 64
VOCAB = sorted(set(string.printable) - {"\x0b", "\x0c", "\r"})

TIMED_GENERATE = """(length) => {
  const t0 = performance.now();
  const text = rnnkit.generate({length, seed: 1});
  return {ms: performance.now() - t0, chars: text.length};
}"""


def exported_page(folder: Path, layers: int, rnn_size: int) -> tuple[Path, int]:
    """A random-weight LSTM exported as a page: (the file, the model's parameter count)."""
    from rnnkit.core.checkpoint import save_checkpoint
    from rnnkit.export import export
    from rnnkit.model.language_model import LanguageModel, ModelConfig
    from rnnkit.text.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab(VOCAB)
    model = LanguageModel(ModelConfig(len(vocab), "lstm", WORDVEC, rnn_size, layers))
    run = folder / f"lstm_{layers}x{rnn_size}"
    run.mkdir()
    checkpoint = save_checkpoint(run / "checkpoint_1.json", {f"model.{k}": t for k, t in model.state_dict().items()},
                                 {"kind": "language_model", "model": model.config.to_dict(), "vocab": vocab.to_json_dict()})
    page = folder / f"lstm_{layers}x{rnn_size}.html"
    export(checkpoint, "html", page, training_lines=False)
    return page, model.num_parameters()


def measure(browser, page_file: Path, length: int, reps: int) -> tuple[list[float], list[float]]:
    """(load times in s, characters/s) over `reps` fresh page loads."""
    loads, speeds = [], []
    for _ in range(reps):
        wait_quiet()
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(page_file.as_uri())
        page.wait_for_function("window.rnnkit !== undefined")
        loads.append(time.perf_counter() - t0)
        page.evaluate(TIMED_GENERATE, 50)  # warm the JIT up
        run = page.evaluate(TIMED_GENERATE, length)
        speeds.append(run["chars"] / (run["ms"] / 1000))
        page.close()
    return loads, speeds


def main(quick: bool = False) -> list[Result]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is absent; install Debian's chromium (bash .ci/install-browser)")
    header("the exported web page in headless Chromium: size, load time, characters/s (one stream)")
    folder, reps, length = workdir("export"), 2 if quick else 3, 1000 if quick else 4000
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        print(f"  Chromium {browser.version}; vocabulary {len(VOCAB)}, wordvec {WORDVEC}, {length} characters per run")
        try:
            for layers, rnn_size in SIZES:
                page_file, params = exported_page(folder, layers, rnn_size)
                loads, speeds = measure(browser, page_file, length, reps)
                size = page_file.stat().st_size
                print(f"  {layers}x{rnn_size} LSTM, {params:,} parameters: {size / 1e6:.2f} MB, load "
                      f"{min(loads):.2f} s, {', '.join(f'{v:,.0f}' for v in speeds)} chars/s")
                results.append(Result("export", f"page chars/s, {layers}x{rnn_size} LSTM ({size / 1e6:.1f} MB)",
                                      max(speeds), None, "chars/s", "-", None))
        finally:
            browser.close()
    for r in results:
        print(r.line(), flush=True)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    main(ap.parse_args().quick)
