"""Shared machinery every stage uses: checkpoint files, atomic writes, the device, distributed
training, stop signals and the progress display."""
