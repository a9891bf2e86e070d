"""rnnkit: train recurrent neural networks on your own text or event data.

    import rnnkit
    rnnkit.preprocess(input_txt=["my.txt"], output_h5="my.h5", output_json="my.json")
    result = rnnkit.train(input_h5="my.h5", input_json="my.json", max_iters=500)
    print(rnnkit.sample(result.best_checkpoint, length=200, temperature=0.8)[0])
"""

import importlib

__version__ = "0.1.0"

__all__ = ["preprocess", "train", "sample", "Generator", "SampleOptions", "TrainConfig", "Vocab"]


# Lazy: `import rnnkit` (and the CLI's start-up) should not pay for importing torch.
_HOME = {"preprocess": "rnnkit.text.corpus", "train": "rnnkit.training.trainer", "TrainConfig": "rnnkit.training.config",
         "sample": "rnnkit.sampling.generator", "Generator": "rnnkit.sampling.generator",
         "SampleOptions": "rnnkit.sampling.generator", "Vocab": "rnnkit.text.vocab"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(name)
    return getattr(importlib.import_module(_HOME[name]), name)
