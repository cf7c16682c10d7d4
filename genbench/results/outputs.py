"""Output paths, checked before any work: nothing the user made is replaced without ``--overwrite``.

Every verb that writes calls :func:`check_output_file` or :func:`check_output_folder` for each
output option while parsing its options, so a bad path fails in milliseconds instead of after
minutes of extraction, and the later atomic write (:mod:`genbench.util.atomic`) cannot fail for a
reason that was knowable up front.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError


def _nearest_existing_parent(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_parent(path: Path, flag: str) -> None:
    parent = _nearest_existing_parent(path)
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def check_output_file(path: str | os.PathLike | None, flag: str, overwrite: bool) -> None:
    """A file to be written at ``path`` (None or ``-``: nothing to check); ConfigError naming ``flag`` otherwise.

    Refuses a folder, an existing file without ``overwrite``, and a parent that is a file or not writable.
    """
    if path is None or str(path) == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{flag} {target} is a folder; expected a file path")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise ConfigError(f"{flag} {target} exists; pass --overwrite to replace it")
    _check_parent(target, flag)


def check_output_folder(path: str | os.PathLike, flag: str, overwrite: bool) -> None:
    """A folder to be filled at ``path``; refuses a file, and a non-empty folder without ``overwrite``."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{flag} {target} is a file; expected a folder (or a path ending in the expected suffix)")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(f"{flag} {target} is a folder that is not empty; pass --overwrite to write into it")
    _check_parent(target / "x", flag)
