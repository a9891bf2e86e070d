"""Files written whole or not at all: temp file, fsync, rename, fsync the folder.

No torch here, so the CLI can use it without paying for importing torch.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputFileError


def atomic_write_bytes(path: Path, data: bytes, before_replace=None) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def ensure_writable_folder(folder: str | Path, what: str) -> None:
    """Fail now, in one line, if files cannot be created in `folder` (found by trying: root passes os.access)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputFileError(f"{what}: {folder} is a file, not a folder; choose another path")
    if not folder.is_dir():
        raise InputFileError(f"{what}: folder {folder} does not exist; create it first or choose another path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rnnkit-write-test-", dir=folder)
    except OSError as e:
        raise InputFileError(f"{what}: cannot write into {folder} ({e.strerror}); choose a folder you can write to") from None
    os.close(fd)
    os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
