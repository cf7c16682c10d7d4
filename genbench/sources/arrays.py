"""ArraySource: images held in an array, a tensor, a ``.npy`` file or a ``.npz`` file.

Layouts and element types follow :mod:`genbench.sources.convert` (NCHW, NHWC or NHW grey; uint8, uint16,
or float in [0, 1]). Conversion happens per batch in :meth:`ArraySource.read_batch` (one slice, one
conversion), so a float or uint16 array is never copied whole.

Files:

* ``.npy``: loaded with ``mmap_mode='r'`` and ``allow_pickle=False``; only the slices read are paged in.
  Each process maps the file itself (the map is never pickled).
* ``.npz``: the array named ``images`` (loaded into memory: a zip member cannot be mapped), and
  optionally ``labels`` (integers, one per image). ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .base import ImageSource
from .convert import array_to_rgb_uint8_batch, check_dtype, infer_layout, to_numpy

IMAGES_KEY = "images"
LABELS_KEY = "labels"
FEATURES_KEY = "features"
_LOAD_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


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

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, layout: str | None = None) -> ArraySource:
        """Open a ``.npy`` (memory-mapped) or ``.npz`` (array ``images``, optional ``labels``) file.

        Raises InputError for an unreadable file, a pickled/object array, or a ``.npz`` without ``images``
        (the message lists the keys found).
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
            images, labels = _load_npz(path)
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

    def fingerprint(self) -> str:
        """For a file: sha256 of its size, mtime_ns, shape, dtype and layout. In memory: '' (not cached)."""
        if self._path is None:
            return ""
        st = self._path.stat()
        text = f"genbench-array-v1\n{self._path.suffix}\t{st.st_size}\t{st.st_mtime_ns}\t{self.shape}\t{self.dtype}\t{self.layout}"
        return hashlib.sha256(text.encode()).hexdigest()


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray:
    """Labels (array, tensor or sequence) as int64 [n]; InputError for another shape or a non-integer type."""
    labels = to_numpy(labels, f"{name} labels") if hasattr(labels, "detach") else np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(f"{name}: expected labels of shape [{n}] (one per image), got {tuple(labels.shape)}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise InputError(f"{name}: expected integer labels, got {labels.dtype}")
    return np.asarray(labels, dtype=np.int64)


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except _LOAD_ERRORS as exc:
        raise InputError(f"{path}: cannot read as a .npy array without pickle ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path}: expected a .npy array, got {type(arr).__name__}")
    return arr


def npz_keys(path: str | os.PathLike) -> list[str]:
    """Names of the arrays in a ``.npz`` file (reads the zip directory only). InputError if unreadable."""
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: expected a .npz archive of arrays, found a single array")
        with z:
            return list(z.files)
    except _LOAD_ERRORS as exc:
        raise InputError(f"{path}: cannot read as a .npz file ({exc})") from None


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: expected a .npz archive of arrays, found a single array")
        with z:
            keys = list(z.files)
            if IMAGES_KEY not in keys:
                hint = (
                    f"; it has {FEATURES_KEY!r}, so it is a precomputed feature file, not images"
                    if FEATURES_KEY in keys
                    else f" (or {FEATURES_KEY!r} for a precomputed feature file)"
                )
                raise InputError(
                    f"{path}: expected an array named {IMAGES_KEY!r}{hint}; keys found: {', '.join(keys) or 'none'}"
                )
            images = z[IMAGES_KEY]
            labels = z[LABELS_KEY] if LABELS_KEY in keys else None
    except _LOAD_ERRORS as exc:
        raise InputError(f"{path}: cannot read as a .npz file without pickle ({exc})") from None
    return images, labels
