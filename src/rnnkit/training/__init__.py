"""Training the language model: the trainer and its state, one update, checkpoints, the
configuration, the run folder, the learning-rate schedule, the optimizer and `auto` sizes.

    from rnnkit.training import TrainConfig, train
    result = train(TrainConfig(input_txt=["my.txt"], max_iters=200))
"""

__all__ = ["TrainConfig", "TrainResult", "Trainer", "prepare_run", "resume_config", "train"]


def __getattr__(name: str):
    # Lazy: the CLI imports training.config to build its flags without importing torch.
    if name == "TrainConfig":
        from .config import TrainConfig

        return TrainConfig
    if name in ("prepare_run", "resume_config"):
        from . import run_folder

        return getattr(run_folder, name)
    if name in ("TrainResult", "Trainer", "train"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
