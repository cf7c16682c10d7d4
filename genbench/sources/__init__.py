"""Image sources: every source yields uint8 RGB images [3, H, W] in a fixed order.

Kinds: FolderSource (image files, recursive), ZipSource / TarSource (archive members), ArraySource
(arrays, tensors, .npy, .npz) and data sets (``genbench.sources.datasets``). ``open_source`` picks one
from a spec; ``iter_batches`` reads any of them in batches, in order, with optional worker processes.
Pixel-format rules live in :mod:`genbench.sources.convert`; size limits on what is decompressed or loaded
(archive members, ``.npz`` arrays, IDX files) in :mod:`genbench.sources.limits`; what a source's cache
fingerprint covers in :mod:`genbench.sources.hashing`.
"""
from typing import Any

from . import stacked as _stacked  # noqa: F401  (registers stacked-fashion-mnist:*: the data sets are complete on import)
from .archive import TarSource, ZipSource
from .arrays import ArraySource
from .base import ImageSource, SourceInfo
from .convert import array_to_rgb_uint8_batch, pil_to_rgb_uint8
from .folder import FolderSource
from .resolve import SOURCE_KINDS, as_source, is_feature_file, open_source

_LOADER_NAMES = ("Batch", "count_batches", "iter_batches")


def __getattr__(name: str) -> Any:
    # The batch loader is built on torch's DataLoader: torch is imported only when it is asked for.
    if name in _LOADER_NAMES:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SOURCE_KINDS",
    "ArraySource",
    "Batch",
    "FolderSource",
    "ImageSource",
    "SourceInfo",
    "TarSource",
    "ZipSource",
    "array_to_rgb_uint8_batch",
    "as_source",
    "count_batches",
    "is_feature_file",
    "iter_batches",
    "open_source",
    "pil_to_rgb_uint8",
]
