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

Size limit (decompression bombs): no image member is inflated past ``max_member_bytes`` (default
:data:`~genbench.sources.limits.DEFAULT_MAX_MEMBER_BYTES`, 64 MiB; ``$GENBENCH_MAX_MEMBER_BYTES`` raises it).
The size the member's header declares is checked first, and the read itself stops after limit + 1 bytes,
since a header can lie; either way InputError names ``archive::member``, the limit and how to raise it.
A zip member is checked when it is read; a compressed tar's members while the archive is opened (that is
when they are decompressed), an uncompressed tar's when read.

Faults: a corrupt member (bad deflate/bzip2/lzma stream, CRC mismatch, truncated data, unsupported
compression) raises InputError naming ``archive::member``, never zlib.error or OSError. A compressed tar is
decompressed to the end of its stream (so the gzip CRC is checked), and in any tar what follows the
end-of-archive marker must be zero padding: tarfile reads a damaged member header as the end of the archive
and would silently drop the members after it.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import IMAGE_EXTENSIONS, decode_image, has_image_extension
from .hashing import file_fingerprint
from .limits import max_member_bytes as resolve_member_limit
from .limits import member_too_large, read_bounded

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
DEFAULT_MAX_CACHE_BYTES = 4 << 30

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
#: What opening or reading a zip (member) raises on a corrupt, truncated or unsupported file.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
    struct.error,
    NotImplementedError,
    RuntimeError,
)
#: What reading a tar (member) raises on a corrupt or truncated file.
_TAR_ERRORS = (tarfile.TarError, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, struct.error)


def _is_image_member(name: str) -> bool:
    return has_image_extension(name) and not (name.startswith("__MACOSX/") or "/__MACOSX/" in name)


def _no_images_error(path: Path, skipped: int) -> InputError:
    return InputError(
        f"{path}: archive holds no image members (looked for {', '.join(IMAGE_EXTENSIONS)}, any case); "
        f"{skipped} other member(s) skipped"
    )


class _ArchiveSource(ImageSource):
    """Shared parts: path check, member names, skipped count, keys and fingerprint."""

    def __init__(self, path: str | os.PathLike, max_member_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such archive file")
        self.names: list[str] = []
        self.skipped = 0
        self.max_member_bytes = resolve_member_limit(max_member_bytes)  # resolved once: workers use the same

    def __len__(self) -> int:
        return len(self.names)

    def key(self, index: int) -> str:
        return self.names[index]

    def _fingerprint(self, members: list[str]) -> str:
        h = hashlib.sha256(f"genbench-{self.kind}-v2\n{file_fingerprint(self.path)}\n".encode())
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

    def __init__(self, path: str | os.PathLike, max_member_bytes: int | None = None) -> None:
        super().__init__(path, max_member_bytes)
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
        except _ZIP_ERRORS as exc:
            raise InputError(f"{self.path}: cannot open as a zip archive ({_reason(exc)})") from None

    def _member_bytes(self, index: int) -> bytes:
        """The member's uncompressed bytes: declared size checked, then a read bounded by the limit."""
        name, limit = self._member_name(index), self.max_member_bytes
        zf = self._get_handle()
        info = zf.infolist()[self._positions[index]]
        if info.file_size > limit:
            raise member_too_large(name, info.file_size, limit, declared=True)
        try:
            with zf.open(info) as fh:
                return read_bounded(fh, limit, name)
        except _ZIP_ERRORS as exc:
            raise InputError(f"{name}: cannot read zip member, corrupt or unsupported ({_reason(exc)})") from None

    def read(self, index: int) -> np.ndarray:
        return decode_image(io.BytesIO(self._member_bytes(index)), self._member_name(index))

    def fingerprint(self) -> str:
        """sha256 of the archive's :func:`~genbench.sources.hashing.file_fingerprint` (content, or stat and
        ends for a file over 256 MiB) and the image member list (name, size, CRC)."""
        return self._fingerprint(self._members)


class TarSource(_ArchiveSource):
    """Image members of a ``.tar`` (optionally gzip, bzip2 or xz compressed), sorted by member name.

    Only regular file members are read; links and other members are skipped and counted. See the module
    docstring for memory behaviour (compressed tars are decompressed once into memory, up to
    ``max_cache_bytes``). Raises InputError for an unreadable archive or no image members; ``read`` raises
    InputError naming ``archive::member`` for a corrupt image.
    """

    kind = "tar"

    def __init__(
        self,
        path: str | os.PathLike,
        max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
        max_member_bytes: int | None = None,
    ) -> None:
        super().__init__(path, max_member_bytes)
        try:
            with open(self.path, "rb") as fh:
                magic = fh.read(6)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read archive ({exc.strerror or exc})") from None
        self.compressed = magic.startswith((_GZIP_MAGIC, _BZIP2_MAGIC, _XZ_MAGIC))
        self._cache: np.ndarray | None = None
        if self.compressed:
            entries = self._scan_compressed(magic, max_cache_bytes)
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
        return InputError(f"{self.path}: cannot read as a tar archive ({_reason(exc)})")

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
                end = tf.offset
            with open(self.path, "rb") as fh:
                fh.seek(end)
                self._check_tail(fh, end)
        except _TAR_ERRORS as exc:
            raise self._tar_error(exc) from None
        return entries

    def _scan_compressed(self, magic: bytes, max_cache_bytes: int) -> list[tuple[str, int, int]]:
        """Decompress once, keeping image member bytes in one buffer; (name, buffer offset, size).

        The stream is decompressed by gzip/bz2/lzma (not by tarfile, which skips the gzip CRC) and read to
        its end, so a damaged stream is an error even where the tar headers still parse.
        """
        opener: Callable[[Path, Literal["rb"]], io.BufferedIOBase]
        if magic.startswith(_GZIP_MAGIC):
            opener = gzip.open
        elif magic.startswith(_BZIP2_MAGIC):
            opener = bz2.open
        else:
            opener = lzma.open
        entries = []
        buffer = bytearray()
        try:
            with opener(self.path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tf:
                for m in tf:
                    if not (m.isreg() and _is_image_member(m.name)):
                        self.skipped += 1
                        continue
                    if m.size > self.max_member_bytes:
                        raise member_too_large(f"{self.path}::{m.name}", m.size, self.max_member_bytes, declared=True)
                    if len(buffer) + m.size > max_cache_bytes:
                        raise InputError(
                            f"{self.path}: compressed tar holds more than {max_cache_bytes} bytes of images, "
                            "which would all be held in memory (no random access in a compressed stream); "
                            "use an uncompressed .tar, a .zip or an extracted folder instead"
                        )
                    fh = tf.extractfile(m)
                    try:
                        data = read_bounded(fh, self.max_member_bytes, f"{self.path}::{m.name}") if fh else b""
                    except _TAR_ERRORS as exc:
                        raise InputError(
                            f"{self.path}::{m.name}: cannot read tar member, corrupt or truncated ({_reason(exc)})"
                        ) from None
                    if len(data) != m.size:
                        raise InputError(f"{self.path}::{m.name}: truncated tar member")
                    entries.append((m.name, len(buffer), m.size))
                    buffer += data
                self._check_tail(raw, None)  # reads to the end of the stream: its CRC and length are checked
        except _TAR_ERRORS as exc:
            raise self._tar_error(exc) from None
        self._cache = np.frombuffer(buffer, dtype=np.uint8)  # a view: no second copy
        return entries

    def _check_tail(self, fh, offset: int | None) -> None:
        """InputError unless what follows the end-of-archive marker is zeros (padding) up to the end.

        tarfile takes a damaged member header for the end of the archive and silently drops what follows.
        """
        while block := fh.read(1 << 20):
            if block.count(0) != len(block):
                where = f" at byte {offset}" if offset is not None else ""
                raise InputError(
                    f"{self.path}: damaged tar archive: data follows what reads as its end{where} "
                    "(a corrupt member header, or several tars concatenated); the members after it would be lost"
                )

    def _member_bytes(self, index: int) -> bytes:
        offset, size = int(self._offsets[index]), int(self._sizes[index])
        if self._cache is not None:
            return self._cache[offset : offset + size].tobytes()
        if size > self.max_member_bytes:  # a tar member is stored as is: reading ``size`` bytes is the bound
            raise member_too_large(self._member_name(index), size, self.max_member_bytes, declared=True)
        try:
            with open(self.path, "rb") as fh:  # one open per member: no handle to share between processes
                fh.seek(offset)
                data = fh.read(size)
        except OSError as exc:
            raise InputError(f"{self._member_name(index)}: cannot read tar member ({exc.strerror or exc})") from None
        if len(data) != size:
            raise InputError(f"{self._member_name(index)}: truncated tar member ({len(data)} of {size} bytes)")
        return data

    def read(self, index: int) -> np.ndarray:
        return decode_image(io.BytesIO(self._member_bytes(index)), self._member_name(index))

    def fingerprint(self) -> str:
        """sha256 of the archive's :func:`~genbench.sources.hashing.file_fingerprint` (content, or stat and
        ends for a file over 256 MiB) and the image member list (name, size)."""
        return self._fingerprint(self._members)


def _reason(exc: BaseException) -> str:
    """An exception as a short phrase: its message, or its type when it has none."""
    return str(exc) or type(exc).__name__
