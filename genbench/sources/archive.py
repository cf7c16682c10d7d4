"""ZipSource and TarSource: images stored as members of a .zip or .tar[.gz|.bz2|.xz] archive.

Members are read into memory and decoded there; nothing is ever extracted to disk, so member names with
absolute paths or ``..`` are harmless and kept as they are (they are only keys). Image members (by
extension, case-insensitive) are sorted by member name; folders, links, other members and anything under
a ``__MACOSX/`` folder (macOS resource forks) are skipped and counted in ``skipped``.

ZipSource opens its archive lazily, once per process: the open ZipFile is never pickled, and a process that
inherits one (fork) opens its own, so DataLoader workers never share a file offset. TarSource keeps no
handle: an uncompressed tar is opened for each member read, a compressed one is read from memory.

Memory behaviour:

* ``.zip`` and uncompressed ``.tar``: random access. Opening lists the members (tar: reads the headers);
  ``read(i)`` reads just that member. Memory stays small whatever the archive size.
* compressed tar (``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2``, ``.tar.xz``/``.txz``): a compressed stream
  has no random access, so opening decompresses the archive once, sequentially, and keeps the bytes of the
  image members (still PNG/JPEG-encoded, so about the archive's size) in one in-memory buffer; reads slice
  it. Above ``max_cache_bytes`` (default 4 GiB) it raises InputError suggesting an uncompressed tar, a zip
  or a folder. DataLoader workers started by fork share the buffer; with spawn each worker gets a copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import IMAGE_EXTENSIONS, decode_image, has_image_extension

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
DEFAULT_MAX_CACHE_BYTES = 4 << 30

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


def _is_image_member(name: str) -> bool:
    return has_image_extension(name) and not (name.startswith("__MACOSX/") or "/__MACOSX/" in name)


def _no_images_error(path: Path, skipped: int) -> InputError:
    return InputError(
        f"{path}: archive holds no image members (looked for {', '.join(IMAGE_EXTENSIONS)}, any case); "
        f"{skipped} other member(s) skipped"
    )


class _ArchiveSource(ImageSource):
    """Shared parts: path check, member names, skipped count, keys and fingerprint."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such archive file")
        self.names: list[str] = []
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.names)

    def key(self, index: int) -> str:
        return self.names[index]

    def _fingerprint(self, members: list[str]) -> str:
        st = self.path.stat()
        h = hashlib.sha256(f"genbench-{self.kind}-v1\n{st.st_size}\t{st.st_mtime_ns}\n".encode())
        for line in members:
            h.update(line.encode("utf-8", "surrogateescape") + b"\n")
        return h.hexdigest()

    def _member_name(self, index: int) -> str:
        return f"{self.path}::{self.names[index]}"


class ZipSource(_ArchiveSource):
    """Image members of a ``.zip`` file, sorted by member name; ``key(i)`` is the member name.

    Raises InputError for a file that is not a zip, encrypted image members, or no image members;
    ``read`` raises InputError naming ``archive::member`` for a corrupt member or image.
    """

    kind = "zip"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._handle: zipfile.ZipFile | None = None
        self._handle_pid: int | None = None
        zf = self._open_handle()
        try:
            infos = zf.infolist()
        finally:
            zf.close()
        chosen: list[tuple[str, int]] = []
        for position, info in enumerate(infos):
            if not info.is_dir() and _is_image_member(info.filename):
                if info.flag_bits & 0x1:
                    raise InputError(f"{self.path}::{info.filename}: encrypted zip members are not supported")
                chosen.append((info.filename, position))
            else:
                self.skipped += 1
        chosen.sort()
        self.names = [name for name, _ in chosen]
        self._positions = [position for _, position in chosen]
        self._members = [f"{infos[p].filename}\t{infos[p].file_size}\t{infos[p].CRC}" for p in self._positions]
        if not self.names:
            raise _no_images_error(self.path, self.skipped)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_handle_pid"] = None
        return state

    def close(self) -> None:
        """Close this process's handle (it reopens on the next read)."""
        handle = self.__dict__.get("_handle")
        if handle is not None and self._handle_pid == os.getpid():
            handle.close()
        self._handle = None
        self._handle_pid = None

    def _get_handle(self) -> zipfile.ZipFile:
        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = self._open_handle()
            self._handle_pid = os.getpid()
        return self._handle

    def _open_handle(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path, "r")
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{self.path}: cannot open as a zip archive ({exc})") from None

    def read(self, index: int) -> np.ndarray:
        zf = self._get_handle()
        info = zf.infolist()[self._positions[index]]
        try:
            data = zf.read(info)
        except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError, RuntimeError) as exc:
            raise InputError(f"{self._member_name(index)}: cannot read zip member ({exc})") from None
        return decode_image(io.BytesIO(data), self._member_name(index))

    def fingerprint(self) -> str:
        """sha256 of archive size, mtime_ns and the image member list (name, size, CRC)."""
        return self._fingerprint(self._members)


class TarSource(_ArchiveSource):
    """Image members of a ``.tar`` (optionally gzip, bzip2 or xz compressed), sorted by member name.

    Only regular file members are read; links and other members are skipped and counted. See the module
    docstring for memory behaviour (compressed tars are decompressed once into memory, up to
    ``max_cache_bytes``). Raises InputError for an unreadable archive or no image members; ``read`` raises
    InputError naming ``archive::member`` for a corrupt image.
    """

    kind = "tar"

    def __init__(self, path: str | os.PathLike, max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES) -> None:
        super().__init__(path)
        with open(self.path, "rb") as fh:
            magic = fh.read(6)
        self.compressed = magic.startswith((_GZIP_MAGIC, _BZIP2_MAGIC, _XZ_MAGIC))
        self._cache: np.ndarray | None = None
        if self.compressed:
            entries = self._scan_compressed(max_cache_bytes)
        else:
            entries = self._scan_uncompressed()
        entries.sort()
        self.names = [e[0] for e in entries]
        self._offsets = np.asarray([e[1] for e in entries], dtype=np.int64)
        self._sizes = np.asarray([e[2] for e in entries], dtype=np.int64)
        self._members = [f"{name}\t{size}" for name, _, size in entries]
        if not self.names:
            raise _no_images_error(self.path, self.skipped)

    def _tar_error(self, exc: BaseException) -> InputError:
        return InputError(f"{self.path}: cannot read as a tar archive ({exc or type(exc).__name__})")

    def _scan_uncompressed(self) -> list[tuple[str, int, int]]:
        """(name, data offset, size) of image members, reading headers only."""
        entries = []
        try:
            with tarfile.open(self.path, "r:") as tf:
                for m in tf:
                    if m.isreg() and not m.issparse() and _is_image_member(m.name):
                        entries.append((m.name, m.offset_data, m.size))
                    else:
                        self.skipped += 1
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise self._tar_error(exc) from None
        return entries

    def _scan_compressed(self, max_cache_bytes: int) -> list[tuple[str, int, int]]:
        """Decompress once, keeping image member bytes in one buffer; (name, buffer offset, size)."""
        entries = []
        buffer = bytearray()
        try:
            with tarfile.open(self.path, "r|*") as tf:
                for m in tf:
                    if not (m.isreg() and _is_image_member(m.name)):
                        self.skipped += 1
                        continue
                    if len(buffer) + m.size > max_cache_bytes:
                        raise InputError(
                            f"{self.path}: compressed tar holds more than {max_cache_bytes} bytes of images, "
                            "which would all be held in memory (no random access in a compressed stream); "
                            "use an uncompressed .tar, a .zip or an extracted folder instead"
                        )
                    fh = tf.extractfile(m)
                    data = fh.read() if fh is not None else b""
                    if len(data) != m.size:
                        raise InputError(f"{self.path}::{m.name}: truncated tar member")
                    entries.append((m.name, len(buffer), m.size))
                    buffer += data
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise self._tar_error(exc) from None
        self._cache = np.frombuffer(buffer, dtype=np.uint8)  # a view: no second copy
        return entries

    def _member_bytes(self, index: int) -> bytes:
        offset, size = int(self._offsets[index]), int(self._sizes[index])
        if self._cache is not None:
            return self._cache[offset : offset + size].tobytes()
        with open(self.path, "rb") as fh:  # one open per member: no handle to share between processes
            fh.seek(offset)
            data = fh.read(size)
        if len(data) != size:
            raise InputError(f"{self._member_name(index)}: truncated tar member ({len(data)} of {size} bytes)")
        return data

    def read(self, index: int) -> np.ndarray:
        return decode_image(io.BytesIO(self._member_bytes(index)), self._member_name(index))

    def fingerprint(self) -> str:
        """sha256 of archive size, mtime_ns and the image member list (name, size)."""
        return self._fingerprint(self._members)
