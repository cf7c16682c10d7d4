"""Turn a user's spec (path, data set name, array) into an ImageSource.

Accepted specs, tried in this order:

1. an existing folder -> :class:`~genbench.sources.folder.FolderSource`;
2. an existing file, by suffix (case-insensitive, longest match) in :data:`SOURCE_KINDS`:
   ``.zip`` -> ZipSource; ``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tbz2``, ``.tar.xz``, ``.txz`` ->
   TarSource; ``.npy`` and ``.npz`` (array ``images``) -> ArraySource;
3. ``NAME:SPLIT`` where NAME is a registered data set (``fashion-mnist:train``, ``cifar10:test``, ...) ->
   :func:`genbench.sources.datasets.open_dataset`.

Anything else raises InputError naming the spec and listing the accepted kinds. Adding a file kind is one
``SOURCE_KINDS.register(suffix)`` entry whose value opens a path.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..registry import Registry
from .archive import TAR_SUFFIXES, ZIP_SUFFIXES, TarSource, ZipSource
from .arrays import FEATURES_KEY, ArraySource, npz_keys
from .base import ImageSource
from .convert import IMAGE_EXTENSIONS
from .folder import FolderSource

#: file suffix (lower case, with the dot) -> callable(path) -> ImageSource
SOURCE_KINDS: Registry[Callable[[Path], ImageSource]] = Registry("source kind")

for _suffix in ZIP_SUFFIXES:
    SOURCE_KINDS.register(_suffix)(ZipSource)
for _suffix in TAR_SUFFIXES:
    SOURCE_KINDS.register(_suffix)(TarSource)
SOURCE_KINDS.register(".npy")(ArraySource.from_file)
SOURCE_KINDS.register(".npz")(ArraySource.from_file)

_DATASET_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<split>[A-Za-z0-9_.-]+)$")


def file_kind(path: str | os.PathLike) -> str | None:
    """The registered suffix that ``path`` ends with (longest match, case-insensitive), or None."""
    name = Path(path).name.lower()
    matches = [s for s in SOURCE_KINDS.names() if name.endswith(s)]
    return max(matches, key=len) if matches else None


def _dataset_names() -> list[str]:
    from .datasets import DATASETS  # imported lazily: optional, and heavier than the rest

    return sorted({spec.split(":", 1)[0] for spec in DATASETS.names()})


def accepted_kinds() -> str:
    """One line listing what :func:`open_source` accepts (for error messages and --help)."""
    try:
        datasets = ", ".join(_dataset_names())
    except ImportError:  # pragma: no cover - datasets module missing in a partial install
        datasets = "none available"
    return (
        f"a folder of images ({', '.join(IMAGE_EXTENSIONS)}), a file ending in "
        f"{', '.join(SOURCE_KINDS.names())} (.npz with an 'images' array), "
        f"or a data set NAME:SPLIT with NAME one of: {datasets}"
    )


def open_source(spec: str | os.PathLike, *, data_dir: str | os.PathLike | None = None) -> ImageSource:
    """Open ``spec`` (folder, archive, .npy/.npz file, or data set ``NAME:SPLIT``) as an ImageSource.

    ``data_dir`` (CLI ``--data-dir``) is where data sets are looked for first. Raises InputError for a
    missing path or an unsupported file kind (listing the accepted kinds), and whatever the chosen source
    raises for unreadable content; ConfigError for a known data set with an unknown split.
    """
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        kind = file_kind(path)
        if kind is None:
            raise InputError(f"{spec}: unsupported file kind; expected {accepted_kinds()}")
        return SOURCE_KINDS.get(kind)(path)
    text = os.fspath(spec)
    match = _DATASET_SPEC.match(text)
    if match and match.group("name") in _dataset_names():
        from .datasets import open_dataset

        return open_dataset(text, data_dir=data_dir)
    raise InputError(f"{spec}: no such file or folder, and not a data set; expected {accepted_kinds()}")


def is_feature_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a ``.npz`` file holding a ``features`` array (reads its key list only)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        return FEATURES_KEY in npz_keys(path)
    except InputError:
        return False


def _is_tensor(obj: Any) -> bool:
    """True for a torch tensor; a tensor can exist only once torch is imported, so this never imports it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def as_source(obj: Any, *, data_dir: str | os.PathLike | None = None, generator: Any = None) -> ImageSource:
    """Python API: an ImageSource as is; a ``py:MODULE:FUNCTION`` spec or a function as a
    :class:`~genbench.sources.generator.CallableSource` drawn as ``generator`` (GeneratorOptions) says; a path/str
    through :func:`open_source`; an array or tensor of images (see :mod:`genbench.sources.convert` for layouts) as
    an ArraySource. InputError otherwise."""
    if isinstance(obj, ImageSource):
        return obj
    if (isinstance(obj, str) and obj.startswith("py:")) or (callable(obj) and not _is_tensor(obj)):
        from .generator import CallableSource, GeneratorOptions

        return CallableSource(obj, generator if generator is not None else GeneratorOptions())
    if isinstance(obj, (str, os.PathLike)):
        return open_source(obj, data_dir=data_dir)
    if isinstance(obj, np.ndarray) or _is_tensor(obj):
        return ArraySource(obj)
    raise InputError(
        f"expected an ImageSource, a path, a numpy array or a torch tensor of images, got {type(obj).__name__}"
    )
