"""`make demo`: a corpus from this Python's own standard library, two minutes of training, a sample.

The standard library's source ships with every Python, so the demo needs no download
and rnnkit ships no third-party text.
"""

from __future__ import annotations

from pathlib import Path

from ..text.stdlib import stdlib_corpus


def demo(run_dir: str = "demo", time_budget: float = 120.0) -> None:
    from ..sampling.generator import Generator, SampleOptions
    from ..training import train
    from .lm import train_config_from_args
    from .parser import build_parser

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    corpus = stdlib_corpus(run / "stdlib.txt")
    print(f"demo corpus: {corpus} ({corpus.stat().st_size:,} bytes of this Python's standard library)")
    # exactly what `rnnkit train stdlib.txt --time_budget 2m` gives a user: auto sizes for this machine
    args = build_parser().parse_args(["train", str(corpus), "--checkpoint_name", str(run / "checkpoint"),
                                      "--time_budget", f"{time_budget}s", "--print_every", "50", "--force"])
    result = train(train_config_from_args(args))
    mixed = f", {result.mixed_val_loss:.3f} with its n-gram" if result.mixed_val_loss is not None else ""
    print(f"\ntrained {result.iteration} iterations in {result.seconds:.0f}s; best validation loss "
          f"{result.best_val_loss:.3f} nats/char{mixed}. A sample (temperature 0.8):\n")
    gen = Generator.load(run)
    print(gen.generate(SampleOptions(length=600, temperature=0.8, start_text="def ", seed=0))[0])
    print(f"\nNext: rnnkit sample --checkpoint {run} --temperature 0.5 --length 1000"
          f"\n      rnnkit serve {run}        (a web page to play with the model)"
          f"\n      rnnkit classify synth --out events.csv   (the event-sequence classifier)")
