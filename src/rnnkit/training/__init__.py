"""Training the language model: the trainer and its state, one update, checkpoints, the
configuration, the run folder, the learning-rate schedule, the optimizer and `auto` sizes.

    from rnnkit.training import TrainConfig, train
    result = train(TrainConfig(input_txt=["my.txt"], max_iters=200))
"""

import importlib

__all__ = ["TrainConfig", "TrainResult", "Trainer", "prepare_run", "resume_config", "train"]


# Lazy: the CLI imports training.config to build its flags without importing torch.
_HOME = {"TrainConfig": "config", "prepare_run": "run_folder", "resume_config": "run_folder",
         "TrainResult": "trainer", "Trainer": "trainer", "train": "trainer"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
