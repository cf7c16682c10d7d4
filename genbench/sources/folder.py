"""FolderSource: every image file under a folder, recursively, in sorted order."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import IMAGE_EXTENSIONS, decode_image, has_image_extension

#: stat errors that mean "no file here" (skipped and counted) rather than "cannot read" (InputError).
_SKIPPED_ERRNOS = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)


class FolderSource(ImageSource):
    """Images under ``root`` (recursive), ordered by relative POSIX path.

    Files whose name ends in one of :data:`~genbench.sources.convert.IMAGE_EXTENSIONS` (case-insensitive)
    are images; other files are skipped without being read and counted in ``skipped``. Symbolic links to
    files are followed; links to folders are not (no cycles). Whatever is not a readable regular file
    (dangling links, link loops, links to folders, sockets, fifos, files removed while listing) is skipped
    and counted the same way, whatever its name. ``key(i)`` is the relative POSIX path.

    Raises InputError when ``root`` is not a folder or holds no image file; ``read`` raises InputError
    naming the file when it is corrupt, truncated or not an image.
    """

    kind = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder (expected a folder of images)")
        found: list[tuple[str, int, int, int]] = []  # (relative POSIX path, size, mtime_ns, inode)
        skipped = _scan(str(self.root), "", found)
        found.sort()
        self.names: list[str] = [name for name, *_ in found]
        self._stats: list[tuple[int, int, int]] = [(size, mtime, inode) for _, size, mtime, inode in found]
        self.skipped: int = skipped
        if not found:
            raise InputError(
                f"{self.root}: no images found (looked recursively for {', '.join(IMAGE_EXTENSIONS)}, "
                f"any case); {skipped} other file(s) skipped"
            )

    def __len__(self) -> int:
        return len(self.names)

    def path(self, index: int) -> Path:
        return self.root / self.names[index]

    def read(self, index: int) -> np.ndarray:
        return decode_image(str(self.path(index)), str(self.path(index)))

    def key(self, index: int) -> str:
        return self.names[index]

    def fingerprint(self) -> str:
        """sha256 over (relative path, size, mtime_ns, inode) of every image file, in order (as found by the scan).

        The images are not read: a file rewritten in place with the same size, restored mtime and the same
        inode is not noticed (the rule of make and rsync); hashing every image would make a cached re-score
        of a large folder as slow as reading it. A replaced file (new inode) or a touched one is noticed.
        """
        h = hashlib.sha256(b"genbench-folder-v2\n")
        lines = "".join(
            f"{name}\t{size}\t{mtime}\t{inode}\n" for name, (size, mtime, inode) in zip(self.names, self._stats)
        )
        h.update(lines.encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def _scan(folder: str, prefix: str, found: list[tuple[str, int, int, int]]) -> int:
    """Append (relative path, size, mtime_ns, inode) of every image file under ``folder`` to ``found``,
    recursing into sub-folders (not into links to folders); returns how many other entries were skipped
    (non-image files, and entries that are no regular file: dangling links, link loops, links to folders).

    One ``stat`` per file (``os.scandir`` knows file types without one): a 50k-image folder takes well
    under a second.
    """
    skipped = 0
    try:
        with os.scandir(folder) as entries:
            items = list(entries)
    except OSError as exc:
        _raise_walk_error(exc)
    for entry in items:
        try:
            if entry.is_dir(follow_symlinks=False):
                skipped += _scan(entry.path, f"{prefix}{entry.name}/", found)
                continue
            if not entry.is_file():  # follows links to files; False for broken links, sockets, fifos
                skipped += 1
                continue
            if not has_image_extension(entry.name):
                skipped += 1
                continue
            st = entry.stat()
        except OSError as exc:
            if exc.errno in _SKIPPED_ERRNOS:  # removed while listing, a link loop, a link through a file
                skipped += 1
                continue
            raise InputError(f"{entry.path}: cannot stat ({exc.strerror or exc})") from None
        found.append((prefix + entry.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return skipped


def _raise_walk_error(exc: OSError) -> None:
    raise InputError(f"{exc.filename}: cannot list folder ({exc.strerror or exc})")
