"""Text to token ids: the vocabulary, preprocessing into HDF5 + JSON, splits and lanes."""
