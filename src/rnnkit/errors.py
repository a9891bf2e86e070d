"""User mistakes, reported as one line and exit code 2 by the CLI.

Anything else that escapes is a bug: exit code 1, traceback only with --debug.
"""


class RnnkitError(Exception):
    """A problem with the user's input or flags; the message says what to do."""


class InputFileError(RnnkitError):
    """An input file is missing, empty, unreadable or in the wrong format."""


class ConfigError(RnnkitError):
    """A flag has an impossible value."""


class CheckpointError(RnnkitError):
    """A checkpoint is missing, truncated, corrupted or from a newer rnnkit."""


class OutputExistsError(RnnkitError):
    """Writing would overwrite the user's earlier work without --force."""
