"""The record of training runs: the metrics log, plots, comparing runs and sweeps."""
