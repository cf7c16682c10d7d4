"""FolderSource: every image file under a folder, recursively, in sorted order."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import IMAGE_EXTENSIONS, decode_image, has_image_extension


class FolderSource(ImageSource):
    """Images under ``root`` (recursive), ordered by relative POSIX path.

    Files whose name ends in one of :data:`~genbench.sources.convert.IMAGE_EXTENSIONS` (case-insensitive)
    are images; other files are skipped without being read and counted in ``skipped``. Symbolic links to
    files are followed; links to folders are not (no cycles). ``key(i)`` is the relative POSIX path.

    Raises InputError when ``root`` is not a folder or holds no image file; ``read`` raises InputError
    naming the file when it is corrupt, truncated or not an image.
    """

    kind = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder (expected a folder of images)")
        names: list[str] = []
        skipped = 0
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=_raise_walk_error):
            dirnames.sort()
            base = Path(dirpath)
            for fname in filenames:
                path = base / fname
                if not path.is_file():
                    continue  # broken link, socket, fifo
                if has_image_extension(fname):
                    names.append(path.relative_to(self.root).as_posix())
                else:
                    skipped += 1
        names.sort()
        self.names: list[str] = names
        self.skipped: int = skipped
        if not names:
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
        """sha256 over (relative path, size, mtime_ns) of every image file, in order."""
        h = hashlib.sha256(b"genbench-folder-v1\n")
        for name in self.names:
            try:
                st = (self.root / name).stat()
            except OSError as exc:
                raise InputError(f"{self.root / name}: cannot stat ({exc.strerror or exc})") from None
            h.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def _raise_walk_error(exc: OSError) -> None:
    raise InputError(f"{exc.filename}: cannot list folder ({exc.strerror or exc})")
