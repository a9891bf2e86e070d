"""Training the language model: the trainer, its step and checkpoints, the configuration,
the learning-rate schedule, the optimizer and `auto` sizes."""
