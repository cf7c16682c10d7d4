"""ArraySource: images held in an array, a tensor, a ``.npy`` file or a ``.npz`` file.

Layouts and element types follow :mod:`genbench.sources.convert` (NCHW, NHWC or NHW grey; uint8, uint16,
or float in [0, 1]). Conversion happens per batch in :meth:`ArraySource.read_batch` (one slice, one
conversion), so a float or uint16 array is never copied whole.

Files:

* ``.npy``: loaded with ``mmap_mode='r'`` and ``allow_pickle=False``; only the slices read are paged in.
  Each process maps the file itself (the map is never pickled). Its header is checked first: the array it
  declares must fit in the file (else InputError: truncated).
* ``.npz``: the array named ``images`` (loaded into memory: a zip member cannot be mapped), and
  optionally ``labels`` (integers, one per image). ``allow_pickle=False``. Before an array is allocated, the
  size its ``.npy`` header declares (shape x item size) is checked against ``max_array_bytes`` (default
  :data:`~genbench.sources.limits.DEFAULT_MAX_ARRAY_BYTES`, 4 GiB; ``$GENBENCH_MAX_ARRAY_BYTES`` raises it)
  and against the member's size; reading stops at the declared size, so a small file cannot inflate into
  a huge array.

Faults: a ``.npy`` saved under a ``.npz`` name (or the reverse), an object (pickled) array, a corrupt or
truncated member (bad deflate stream, CRC mismatch) all raise InputError naming the file (and member).
"""

from __future__ import annotations

import hashlib
import lzma
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import array_to_rgb_uint8_batch, check_dtype, infer_layout, to_numpy
from .hashing import file_fingerprint
from .limits import array_too_large
from .limits import max_array_bytes as resolve_array_limit

IMAGES_KEY = "images"
LABELS_KEY = "labels"
FEATURES_KEY = "features"
_LOAD_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    NotImplementedError,
    RuntimeError,
)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip


REPEAT_CHECK_BYTES = 2**30  # arrays up to 1 GiB are checked for repeated images (one hash per image)


class ArraySource(ImageSource):
    """Images from an array or tensor ``images`` (N images), with optional integer ``labels`` [N].

    ``layout`` ('NCHW', 'NHWC' or 'NHW') settles a shape whose layout is ambiguous. ``key(i)`` is
    ``str(i)``. Raises InputError for a wrong shape or dtype, no images, or labels of the wrong length;
    float values outside [0, 1] raise InputError when the batch holding them is read.
    """

    kind = "array"

    def __init__(
        self,
        images: Any,
        labels: Any = None,
        *,
        name: str = "<array>",
        layout: str | None = None,
    ) -> None:
        self.location = name
        self._path: Path | None = None
        self._mapped = False
        self._images: np.ndarray | None = to_numpy(images, name)
        self._setup(self._images, labels, layout)

    def _setup(self, images: np.ndarray, labels: Any, layout: str | None) -> None:
        name = self.location
        check_dtype(images.dtype, name)
        self.layout = infer_layout(images.shape, name, layout)
        self.shape = tuple(int(s) for s in images.shape)
        self.dtype = images.dtype
        if self.shape[0] == 0:
            raise InputError(f"{name}: holds no images (shape {self.shape})")
        self._labels = None if labels is None else _check_labels(labels, self.shape[0], name)
        self._repeats: int | None = None

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, layout: str | None = None, max_array_bytes: int | None = None
    ) -> ArraySource:
        """Open a ``.npy`` (memory-mapped) or ``.npz`` (array ``images``, optional ``labels``) file.

        Raises InputError for an unreadable file, a pickled/object array, a ``.npz`` without ``images``
        (the message lists the keys found), a ``.npy`` named ``.npz`` or the reverse, or a ``.npz`` array
        whose header declares more than ``max_array_bytes`` (None: ``$GENBENCH_MAX_ARRAY_BYTES``, else 4 GiB).
        """
        path = Path(path)
        self = cls.__new__(cls)
        self.location = str(path)
        self._path = path
        suffix = path.suffix.lower()
        self._mapped = suffix == ".npy"
        labels = None
        if suffix == ".npy":
            images = _load_npy(path)
        elif suffix == ".npz":
            images, labels = _load_npz(path, resolve_array_limit(max_array_bytes))
        else:
            raise InputError(f"{path}: expected a .npy or .npz file of images")
        self._images = images
        self._setup(images, labels, layout)
        return self

    # -- pickling: a memory map is re-opened in each process, never copied into the pickle
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self._mapped:
            state["_images"] = None
        return state

    def _array(self) -> np.ndarray:
        if self._images is None:  # only a mapped .npy drops its array when pickled
            self._images = _load_npy(Path(self.location))
            if self._images.shape != self.shape or self._images.dtype != self.dtype:
                raise InputError(f"{self._path}: file changed while in use (shape or dtype differs)")
        return self._images

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(f"image index {index} out of range for {len(self)} images")
        index %= len(self)
        return self.read_batch(index, index + 1)[0]

    def read_batch(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as uint8 [B, 3, H, W] (one slice, one conversion)."""
        return array_to_rgb_uint8_batch(self._array()[start:stop], f"{self.location}[{start}:{stop}]", self.layout)

    def key(self, index: int) -> str:
        return str(index)

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    def label(self, index: int) -> int | None:
        return None if self._labels is None else int(self._labels[index])

    def labels(self) -> np.ndarray | None:
        return None if self._labels is None else self._labels.copy()

    def repeats(self) -> int:
        """Images whose bytes equal an earlier image's; counted for arrays up to REPEAT_CHECK_BYTES (else 0)."""
        if self._repeats is None:
            array = self._array()
            if array.nbytes > REPEAT_CHECK_BYTES:
                self._repeats = 0
            else:
                seen = {hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest() for image in array}
                self._repeats = len(array) - len(seen)
        return self._repeats

    def fingerprint(self) -> str:
        """For a file: sha256 of its :func:`~genbench.sources.hashing.file_fingerprint` (its content; for a
        file over 256 MiB size, mtime_ns, inode and its first and last MiB), shape, dtype and layout.
        In memory: '' (not cached: hashing the pixels on every call would cost about what extracting does)."""
        if self._path is None:
            return ""
        file = file_fingerprint(self._path)
        text = f"genbench-array-v2\n{self._path.suffix}\t{file}\t{self.shape}\t{self.dtype}\t{self.layout}"
        return hashlib.sha256(text.encode()).hexdigest()


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray:
    """Labels (array, tensor or sequence) as int64 [n]; InputError for another shape or a non-integer type."""
    labels = to_numpy(labels, f"{name} labels") if hasattr(labels, "detach") else np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(f"{name}: expected labels of shape [{n}] (one per image), got {tuple(labels.shape)}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise InputError(f"{name}: expected integer labels, got {labels.dtype}")
    return np.asarray(labels, dtype=np.int64)


def _magic(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _check_is_npz(path: Path) -> None:
    """InputError when ``path`` is a .npy file (a single array) rather than a .npz archive."""
    if _magic(path).startswith(_NPY_MAGIC):
        raise InputError(
            f"{path}: this is a .npy file (one array), not a .npz archive of named arrays; rename it to .npy"
        )


def read_npy_header(fh, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, declared data bytes) from the ``.npy`` header at the start of ``fh``.

    Refuses object dtypes (they are pickles) with InputError naming ``name``; reads only the header.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only in allowing utf-8 field names
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except _LOAD_ERRORS as exc:
        raise InputError(f"{name}: cannot read as a .npy array: bad header ({exc or type(exc).__name__})") from None
    if dtype.hasobject:
        raise InputError(
            f"{name}: cannot read an array of Python objects (dtype {dtype}): loading it means unpickling, "
            "which genbench refuses; save a numeric array (uint8, uint16 or float) instead"
        )
    return tuple(shape), bool(fortran), dtype, math.prod(shape) * dtype.itemsize


def _load_npy(path: Path) -> np.ndarray:
    if _magic(path).startswith(_ZIP_MAGICS):
        raise InputError(f"{path}: this is a .npz (zip) archive of arrays, not a .npy array; rename it to .npz")
    try:
        with open(path, "rb") as fh:
            _, _, _, declared = read_npy_header(fh, str(path))
            available = os.fstat(fh.fileno()).st_size - fh.tell()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if declared > available:
        raise InputError(f"{path}: truncated .npy file: its header declares {declared} bytes of data, "
                         f"the file holds {available}")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except _LOAD_ERRORS as exc:
        raise InputError(f"{path}: cannot read as a .npy array without pickle ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path}: expected a .npy array, got {type(arr).__name__}")
    return arr


def _open_zip(path: Path) -> zipfile.ZipFile:
    _check_is_npz(path)
    try:
        return zipfile.ZipFile(path, "r")
    except _LOAD_ERRORS as exc:
        raise InputError(f"{path}: cannot read as a .npz file ({exc or type(exc).__name__})") from None


def _npz_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Array name -> member name, as numpy names them (``x.npy`` is array ``x``)."""
    return {(m[:-4] if m.endswith(".npy") else m): m for m in zf.namelist()}


def npz_keys(path: str | os.PathLike) -> list[str]:
    """Names of the arrays in a ``.npz`` file (reads the zip directory only). InputError if unreadable."""
    with _open_zip(Path(path)) as zf:
        return list(_npz_members(zf))


def read_npz_array(zf: zipfile.ZipFile, member: str, path: Path, limit: int) -> np.ndarray:
    """Array ``member`` of the open ``.npz`` ``zf``, its declared size checked against ``limit`` (bytes) and
    against the member's size before anything is allocated; InputError naming ``path::member`` otherwise."""
    name = f"{path}::{member}"
    try:
        info = zf.getinfo(member)
        with zf.open(info) as fh:
            _, _, _, declared = read_npy_header(fh, name)
            header_bytes = fh.tell()
        if declared > limit:
            raise array_too_large(name, declared, limit)
        if declared > info.file_size - header_bytes:
            raise InputError(f"{name}: truncated array: its header declares {declared} bytes of data, "
                             f"the member holds {max(info.file_size - header_bytes, 0)}")
        with zf.open(info) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)  # reads the declared size, in blocks
    except _LOAD_ERRORS as exc:
        raise InputError(f"{name}: cannot read array, corrupt or truncated ({exc or type(exc).__name__})") from None


def load_npz(path: str | os.PathLike, max_array_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file, each read bounded (:func:`read_npz_array`) and without pickles.

    The one way genbench reads an untrusted ``.npz`` (statistics, feature and image files); InputError
    naming the file for a misnamed ``.npy``, a corrupt member, an object array or an array over the limit.
    """
    path = Path(path)
    limit = resolve_array_limit(max_array_bytes)
    with _open_zip(path) as zf:
        return {key: read_npz_array(zf, member, path, limit) for key, member in _npz_members(zf).items()}


def _load_npz(path: Path, limit: int) -> tuple[np.ndarray, np.ndarray | None]:
    with _open_zip(path) as zf:
        members = _npz_members(zf)
        if IMAGES_KEY not in members:
            keys = list(members)
            hint = (
                f"; it has {FEATURES_KEY!r}, so it is a precomputed feature file, not images"
                if FEATURES_KEY in keys
                else f" (or {FEATURES_KEY!r} for a precomputed feature file)"
            )
            raise InputError(
                f"{path}: expected an array named {IMAGES_KEY!r}{hint}; keys found: {', '.join(keys) or 'none'}"
            )
        images = read_npz_array(zf, members[IMAGES_KEY], path, limit)
        labels = read_npz_array(zf, members[LABELS_KEY], path, limit) if LABELS_KEY in members else None
    return images, labels
