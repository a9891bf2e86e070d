"""Generating from a trained model: the generator, the CPU one-token step, list mode and novelty."""
