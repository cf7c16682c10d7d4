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
compression, a damaged tar header) raises InputError naming ``archive::member``, never zlib.error or OSError.
A compressed tar is decompressed to the end of its stream (so the gzip CRC is checked), and in any tar what
follows the end-of-archive marker must be zero padding: tarfile reads a damaged member header as the end of the
archive and would silently drop the members after it; the member is named from the name field of that header.
A compressed tar's stream is one stream for all members, so where its damage shows outside a member's data (its
check value at the end of the stream, a header that no longer decompresses) the member is found by decoding
the image members read so far (the first that does not decode is the damaged one), else named as the member
after the last one read. Only damage that no member shows (a wrong check value itself, the padding) is named by
the archive alone, and the message says so.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import hashlib
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal, Protocol, cast

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
                last = None
                for m in tf:
                    last = m.name
                    if m.isreg() and not m.issparse() and _is_image_member(m.name):
                        entries.append((m.name, m.offset_data, m.size))
                    else:
                        self.skipped += 1
                end = tf.offset
            with open(self.path, "rb") as fh:
                fh.seek(end)
                self._check_tail(fh, end, last=last)
        except tarfile.ReadError as exc:  # the first header is damaged (or this is no tar)
            raise self._damaged_header(self._file_block(0), 0, exc) or self._tar_error(exc) from None
        except _TAR_ERRORS as exc:
            raise self._tar_error(exc) from None
        return entries

    def _file_block(self, offset: int) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return fh.read(512)
        except OSError:
            return b""

    def _scan_compressed(self, magic: bytes, max_cache_bytes: int) -> list[tuple[str, int, int]]:
        """Decompress once, keeping image member bytes in one buffer; (name, buffer offset, size).

        The stream is decompressed by gzip/bz2/lzma (not by tarfile, which skips the gzip CRC) and read to
        its end, so a damaged stream is an error even where the tar headers still parse.
        """
        opener: Callable[[Path, Literal["rb"]], io.BufferedIOBase]
        codec: Callable[[], _Decompressor]
        if magic.startswith(_GZIP_MAGIC):
            opener, codec = gzip.open, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif magic.startswith(_BZIP2_MAGIC):
            opener, codec = bz2.open, bz2.BZ2Decompressor
        else:
            opener, codec = lzma.open, lzma.LZMADecompressor
        entries: list[tuple[str, int, int]] = []
        buffer = bytearray()
        last: str | None = None  # the last member whose header was read
        at_end = False
        tf: tarfile.TarFile | None = None
        raw = _Recorded(io.BytesIO())  # replaced once the stream is open
        try:
            with opener(self.path, "rb") as stream:
                raw = _Recorded(stream, lambda: _decompressed_pieces(self.path, codec))
                try:
                    tf = tarfile.open(fileobj=cast(IO[bytes], raw), mode="r|")  # tarfile needs only read()
                except tarfile.ReadError as exc:  # the first header: damaged, or its stream (zlib)
                    raise self._damaged_header(raw.block(0), 0, exc, decompressed=True) or \
                        self._stream_error(exc, None, False, [], buffer, raw.block(0), raw.offset) from None
                for m in tf:
                    last = m.name
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
                at_end = True
                # what tarfile read past the end marker, then the rest to the end of the stream (its check is read)
                try:
                    self._check_tail(raw, tf.offset, raw.since(tf.offset), decompressed=True, last=last)
                except InputError as damaged:  # a damaged header: in a damaged stream, maybe an earlier member's
                    try:
                        while raw.read(1 << 20):  # to the stream's end, where its check value is
                            pass
                    except _TAR_ERRORS as exc:
                        name = self._undecodable(entries, buffer)
                        if name is not None:
                            raise InputError(f"{self.path}::{name}: corrupt compressed stream ({_reason(exc)}); "
                                             "this member's decompressed bytes do not decode as an image, so the "
                                             "damage begins in it (a tar header after it is damaged too)") from None
                    raise damaged from None
        except _TAR_ERRORS as exc:
            header = raw.since(tf.offset) if tf is not None else raw.block(0)
            raise self._stream_error(exc, last, at_end, entries, buffer, header, raw.offset) from None
        self._cache = np.frombuffer(buffer, dtype=np.uint8)  # a view: no second copy
        return entries

    def _stream_error(self, exc: BaseException, last: str | None, at_end: bool, entries: list[tuple[str, int, int]],
                      buffer: bytearray, header: bytes = b"", decompressed: int = 0) -> InputError:
        """A compressed tar's stream failed outside a member's data: name the member the damage is in.

        ``last``: the last member whose header was read; ``at_end``: every member was read (the stream's check at
        its end failed); ``header``: what decompressed of the header being read when it failed; ``decompressed``:
        how many bytes of the stream decompressed before it failed."""
        reason = _reason(exc)
        if last is None and decompressed == 0:
            return InputError(f"{self.path}: cannot read as a tar archive ({reason}); nothing of its compressed "
                              "stream decompresses, so no member can be named")
        name = self._undecodable(entries, buffer)
        if name is not None:
            return InputError(f"{self.path}::{name}: corrupt compressed stream ({reason}); this member's "
                              "decompressed bytes do not decode as an image, so the damage is in it")
        if not at_end:
            name = _header_name(header) if len(header) >= 512 else None
            if name is not None:
                return InputError(f"{self.path}::{name}: corrupt compressed stream ({reason}) in this member's header")
            member = f"the member after {last}" if last is not None else "its first member"
            return InputError(f"{self.path}::({member}): corrupt compressed stream ({reason}): the header of "
                              f"{member} does not decompress to a readable tar header, so that member's name cannot "
                              "be read; the members from it on are lost")
        return InputError(f"{self.path}: corrupt compressed stream ({reason}) at its end, after its last member "
                          f"{last}: every image member decodes, so the damage is in the stream's own check value, "
                          "its padding or a member that is no image; no image member is known to be damaged")

    @staticmethod
    def _undecodable(entries: list[tuple[str, int, int]], buffer: bytearray) -> str | None:
        """The first image member read so far whose bytes do not decode (only asked once the stream is damaged)."""
        for name, offset, size in entries:
            try:
                decode_image(io.BytesIO(bytes(buffer[offset : offset + size])), name)
            except InputError:
                return name
        return None

    def _damaged_header(self, block: bytes, offset: int, exc: BaseException | None = None,
                        decompressed: bool = False, unnamed: str | None = None) -> InputError | None:
        """The error naming the member whose damaged header ``block`` (at byte ``offset``) is, or None when the
        block does not look like a tar header at all (``unnamed``: how to name the member then instead)."""
        name = _header_name(block) or unnamed
        if name is None:
            return None
        where = f"byte {offset}" + (" of the decompressed stream" if decompressed else "")
        why = f" ({_reason(exc)})" if exc is not None else ""
        lost = ("the archive cannot be read" if offset == 0 else
                "tarfile reads it as the end of the archive, so this member and the ones after it would be lost")
        return InputError(f"{self.path}::{name}: damaged tar member header at {where}{why}; {lost}")

    def _check_tail(self, fh, offset: int, pending: bytes = b"", decompressed: bool = False,
                    last: str | None = None) -> None:
        """InputError unless what follows the end-of-archive marker at ``offset`` is zeros (padding) up to the end.

        ``pending``: bytes after ``offset`` already read (by tarfile), then ``fh`` is read to its end. tarfile takes
        a damaged member header for the end of the archive and silently drops what follows: a header there is
        named by the member name it still records.
        """
        seen = bytearray()  # the first 512-byte block that is not zeros, once found
        start = None  # its offset after ``offset``
        position = 0
        block = pending
        while block or (block := fh.read(1 << 20)):
            if start is None:
                nonzero = len(block) - len(block.lstrip(b"\0"))
                if nonzero < len(block):
                    start = (position + nonzero) // 512 * 512
                    seen += block[start - position :]
            elif len(seen) < 512:
                seen += block
            position += len(block)
            block = b""
            if start is not None and len(seen) >= 512:
                break
        if start is None:
            return
        where = offset + start
        if start == 0:  # where the next header is: a damaged one
            damaged = self._damaged_header(bytes(seen[:512]), where, decompressed=decompressed)
            if damaged is None and last is not None:  # not even its name is readable
                damaged = self._damaged_header(bytes(seen[:512]), where, decompressed=decompressed,
                                               unnamed=f"(the member after {last})")
            if damaged is not None:
                raise damaged
        name = _header_name(bytes(seen[:512]))
        member = f"::{name}" if name else ""
        raise InputError(
            f"{self.path}{member}: damaged tar archive: data follows what reads as its end at byte {where}"
            + (" of the decompressed stream" if decompressed else "")
            + (f", after its member {last}" if last and not member else "")
            + " (a corrupt member header, or several tars concatenated); the members after it would be lost"
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


class _Decompressor(Protocol):
    """What zlib.decompressobj, bz2.BZ2Decompressor and lzma.LZMADecompressor have in common."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, /) -> bytes: ...


def _decompressed_pieces(path: Path, codec: Callable[[], _Decompressor], chunk: int = 64) -> Iterator[bytes]:
    """The decompressed stream of ``path``, fed to ``codec()`` ``chunk`` compressed bytes at a time, as far as it
    decompresses (the codec's error at the damage; what came before it has been yielded). Streams that follow one
    another (concatenated gzip, bzip2 or xz files, zero padding between them) are read like gzip.open does."""
    decompressor = codec()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            while data:
                if decompressor.eof:  # another stream follows, or padding
                    data = data.lstrip(b"\0")
                    if not data:
                        break
                    decompressor = codec()
                out = decompressor.decompress(data)
                data = decompressor.unused_data if decompressor.eof else b""
                if out:
                    yield out


class _Recorded:
    """A decompressing stream read through, counting the bytes and keeping the last ``keep`` of them, so that what
    tarfile read past the end of an archive can still be checked and a damaged header at a known offset be named.

    When a read fails (a damaged stream), the stream is decompressed again (``again()``: its pieces from the start,
    a few compressed bytes at a time) past what was read, up to the damage: what still decompresses before it is
    returned and the error is raised by the next read, so it shows where tarfile needs the damaged bytes (in a
    member's data or header) rather than a read-ahead earlier. Only a failing archive pays for this.
    """

    def __init__(self, stream: io.BufferedIOBase, again: Callable[[], Iterator[bytes]] | None = None,
                 keep: int = 1 << 16) -> None:
        self.stream, self.again, self.keep = stream, again, keep
        self.offset = 0  # bytes read so far
        self._kept: collections.deque[bytes] = collections.deque()  # the last reads, [offset - _kept_size, offset)
        self._kept_size = 0
        self._error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        if self._error is not None:
            raise self._error
        try:
            data = self.stream.read(size)
        except _TAR_ERRORS as exc:
            data = self._before_damage(size)
            self._error = exc
            if not data:
                raise
        self.offset += len(data)
        self._kept.append(data)
        self._kept_size += len(data)
        while self._kept_size - len(self._kept[0]) >= self.keep:  # whole reads dropped: no copying
            self._kept_size -= len(self._kept.popleft())
        return data

    def _before_damage(self, size: int) -> bytes:
        """What decompresses from ``offset`` on before the damage (at most ``size`` bytes; all of it for -1)."""
        if self.again is None:
            return b""
        kept = bytearray()
        position = 0
        try:
            for piece in self.again():
                if position + len(piece) > self.offset:
                    kept += piece[max(0, self.offset - position) :]
                    if 0 <= size <= len(kept):
                        break
                position += len(piece)
        except _TAR_ERRORS:
            pass
        return bytes(kept if size < 0 else kept[:size])

    def since(self, offset: int) -> bytes:
        """The bytes read from ``offset`` on (those still kept: at least the last ``keep``)."""
        first = self.offset - self._kept_size
        return b"".join(self._kept)[max(0, offset - first) :]

    def block(self, offset: int, size: int = 512) -> bytes:
        """``size`` bytes from ``offset``, where still kept (else fewer, or none)."""
        return self.since(offset)[:size]


def _header_name(block: bytes) -> str | None:
    """The member name a 512-byte tar header block records (as recorded: the damage may be in the name too), or
    None when the block does not look like a tar header (neither the ``ustar`` magic of every POSIX and GNU tar
    nor an octal checksum field) or records no readable name."""
    if len(block) < 512:
        return None
    ustar = block[257:262] == b"ustar"
    try:
        int(block[148:156].replace(b"\0", b" ").strip(), 8)
    except ValueError:
        if not ustar:
            return None
    name = block[:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0] if ustar else b""
    text = ((prefix + b"/" if prefix else b"") + name).decode("utf-8", "replace")
    return text if text.strip() and text.isprintable() else None
