"""FolderSource: every image file under a folder, recursively, in sorted order."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import IMAGE_EXTENSIONS, decode_image, has_image_extension


class FolderSource(ImageSource):
    """Images under ``root`` (recursive), ordered by relative POSIX path.

    Entries whose name ends in one of :data:`~genbench.sources.convert.IMAGE_EXTENSIONS` (case-insensitive)
    are images; other entries are skipped without being read and counted in ``skipped``, whatever they are.
    Symbolic links to files are followed; links to folders are not (no cycles). An entry with an image name
    that is no readable regular file (a dangling link, a link loop such as ``loop.png -> loop.png``, a link to
    a folder, a socket or fifo, a file removed while listing) is an InputError naming it, as a corrupt PNG
    is: leaving it out would silently score fewer images than the folder holds. ``key(i)`` is the relative
    POSIX path.

    Raises InputError when ``root`` is not a folder, holds no image file or holds an image entry that cannot
    be opened; ``read`` raises InputError naming the file when it is corrupt, truncated or not an image.
    """

    kind = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder (expected a folder of images)")
        found: list[tuple[str, int, int, int]] = []  # (relative POSIX path, size, mtime_ns, inode)
        unopenable: list[tuple[str, str]] = []  # (relative POSIX path, why)
        skipped = _scan(str(self.root), "", found, unopenable)
        if unopenable:
            unopenable.sort()
            name, why = unopenable[0]
            more = f" ({len(unopenable) - 1} more such entries)" if len(unopenable) > 1 else ""
            raise InputError(f"{self.root / name}: cannot open this image entry: {why}{more}; remove it or "
                             "replace it by the image it should be")
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


def _scan(folder: str, prefix: str, found: list[tuple[str, int, int, int]], unopenable: list[tuple[str, str]]) -> int:
    """Append (relative path, size, mtime_ns, inode) of every image file under ``folder`` to ``found`` and
    (relative path, why) of every image entry that is no readable regular file to ``unopenable``, recursing
    into sub-folders (not into links to folders); returns how many other entries were skipped.

    One ``stat`` per image entry (``os.scandir`` knows file types without one): a 50k-image folder takes well
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
                skipped += _scan(entry.path, f"{prefix}{entry.name}/", found, unopenable)
                continue
        except OSError as exc:
            raise InputError(f"{entry.path}: cannot stat ({exc.strerror or exc})") from None
        if not has_image_extension(entry.name):
            skipped += 1
            continue
        try:
            st = entry.stat()  # follows a link to its target
        except OSError as exc:
            unopenable.append((prefix + entry.name, _why_not(entry, exc)))
            continue
        if not stat.S_ISREG(st.st_mode):
            kind = "a link to a folder (links to folders are not followed)" if stat.S_ISDIR(st.st_mode) else \
                "not a regular file (a fifo, socket or device)"
            unopenable.append((prefix + entry.name, kind))
            continue
        found.append((prefix + entry.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return skipped


def _why_not(entry: os.DirEntry, exc: OSError) -> str:
    """Why ``stat`` of an image entry failed, in words."""
    link = entry.is_symlink()
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop (the link leads back to itself)"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and link:
        try:
            target = os.readlink(entry.path)
        except OSError:
            target = "?"
        return f"a dangling symbolic link (its target {target} does not exist)"
    if exc.errno == errno.ENOENT:
        return "removed while the folder was being listed"
    return f"cannot stat ({exc.strerror or exc})"


def _raise_walk_error(exc: OSError) -> None:
    raise InputError(f"{exc.filename}: cannot list folder ({exc.strerror or exc})")
