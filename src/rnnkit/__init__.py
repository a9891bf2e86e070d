"""rnnkit: train recurrent neural networks on your own text or event data.

    import rnnkit
    rnnkit.preprocess(input_txt=["my.txt"], output_h5="my.h5", output_json="my.json")
    result = rnnkit.train(input_h5="my.h5", input_json="my.json", max_iters=500)
    print(rnnkit.sample(result.best_checkpoint, length=200, temperature=0.8)[0])
"""

__version__ = "0.1.0"

__all__ = ["preprocess", "train", "sample", "Generator", "SampleOptions", "TrainConfig", "Vocab"]


def __getattr__(name: str):
    # Lazy: `import rnnkit` (and the CLI's start-up) should not pay for importing torch.
    if name == "preprocess":
        from .text.corpus import preprocess

        return preprocess
    if name in ("train", "TrainConfig"):
        from .training import trainer as training

        return getattr(training, name)
    if name in ("sample", "Generator", "SampleOptions"):
        from .sampling import generator as sampling

        return getattr(sampling, name)
    if name == "Vocab":
        from .text.vocab import Vocab

        return Vocab
    raise AttributeError(name)
