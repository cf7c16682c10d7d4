"""Run ``python -m genbench`` with one folder behaving as a full or a read-only disk, without mounting anything.

``python -m tests.faults.diskfaults full|readonly FOLDER ARGS...`` runs ``genbench ARGS`` in this process after
patching the file-opening calls of Python (``builtins.open``/``io.open``, ``os.open``, ``os.mkdir``,
``os.replace``/``os.rename``, ``os.unlink``/``os.rmdir``) for paths under FOLDER only:

- ``full``: files and folders are created as usual (a full disk still has inodes), but every file opened
  there for writing is backed by ``/dev/full``, so the kernel itself fails its writes with ENOSPC when
  they reach it (at a flush or close), wherever in genbench (numpy, zipfile, PIL, pathlib) the write is;
- ``readonly``: creating, opening for writing, renaming onto or removing anything under FOLDER fails at once
  with EROFS, as a read-only mount does.

The tmpfs route of tests/faults/test_process_faults.py tests the same cases on a real small filesystem where
``mount`` is allowed; this route runs everywhere.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import runpy
import sys
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _inside(path: Any, root: str) -> bool:
    if isinstance(path, int):  # an already open file descriptor
        return False
    try:
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
    except TypeError:
        return False
    return real == root or real.startswith(root + os.sep)


def install(kind: str, folder: str) -> None:
    """Patch this process so that ``folder`` behaves as a ``kind`` ('full' or 'readonly') disk."""
    if kind not in ("full", "readonly"):
        raise ValueError(f"kind must be 'full' or 'readonly', not {kind!r}")
    root = os.path.realpath(folder)
    real_open, real_os_open = io.open, os.open
    real_mkdir, real_replace, real_rename = os.mkdir, os.replace, os.rename
    real_unlink, real_rmdir = os.unlink, os.rmdir

    def refuse(path: Any) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(os.fspath(path)))

    def patched_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        writing = any(c in mode for c in "wax+")
        if not writing or not _inside(file, root):
            return real_open(file, mode, *args, **kwargs)
        if kind == "readonly":
            raise refuse(file)
        real_open(file, "xb" if "x" in mode else "ab").close()  # the file exists, empty, as on a full disk
        full_mode = "w" + ("+" if "+" in mode else "") + ("b" if "b" in mode else "")
        return real_open("/dev/full", full_mode, *args, **kwargs)

    def patched_os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
        if kind == "readonly" and flags & _WRITE_FLAGS and dir_fd is None and _inside(path, root):
            raise refuse(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def guard(real: Any) -> Any:
        def call(*paths: Any, **kwargs: Any) -> Any:
            if kind == "readonly":
                for p in paths:
                    if _inside(p, root):
                        raise refuse(p)
            return real(*paths, **kwargs)

        return call

    builtins.open = io.open = patched_open  # type: ignore[assignment]
    os.open = patched_os_open  # type: ignore[assignment]
    os.mkdir = guard(real_mkdir)
    os.replace, os.rename = guard(real_replace), guard(real_rename)
    os.unlink, os.remove, os.rmdir = guard(real_unlink), guard(real_unlink), guard(real_rmdir)


def main(argv: list[str]) -> None:
    kind, folder, *args = argv
    install(kind, folder)
    sys.argv = ["genbench", *args]
    runpy.run_module("genbench", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
