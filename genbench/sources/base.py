"""The ImageSource interface: indexed, deterministic access to uint8 RGB images.

Every source has a fixed order. ``read(i)`` returns one image as a uint8 array of
shape [3, H, W]; ``read_batch(start, stop)`` returns uint8 [B, 3, H, W] (sources
backed by arrays override it to slice without copying per image). Index access
makes parallel decoding and sharding across ranks straightforward.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class SourceInfo:
    """What a source records in provenance: kind, location and count."""

    kind: str
    location: str
    n: int

    def to_dict(self) -> dict:
        return {"kind": self.kind, "location": self.location, "n": self.n}


class ImageSource(ABC):
    """Abstract indexed image source.

    Subclasses implement ``__len__``, ``read`` and ``key``; they may override
    ``read_batch`` (fast path), ``label`` and ``fingerprint``.
    """

    kind: str = "images"
    location: str = ""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8 [3, H, W]. Raises InputError on a bad file."""

    @abstractmethod
    def key(self, index: int) -> str:
        """A stable name for image ``index`` (relative path, member name or index)."""

    def label(self, index: int) -> int | None:
        """Class label of image ``index`` where the source has labels, else None."""
        return None

    @property
    def has_labels(self) -> bool:
        return False

    def read_batch(self, start: int, stop: int) -> np.ndarray | list[np.ndarray]:
        """Images ``start:stop`` as uint8 [B, 3, H, W], or a list of [3, H, W] when sizes differ."""
        images = [self.read(i) for i in range(start, stop)]
        return stack_if_same_size(images)

    def labels(self) -> np.ndarray | None:
        """All labels as int64 [N], or None."""
        if not self.has_labels:
            return None
        return np.asarray([self.label(i) for i in range(len(self))], dtype=np.int64)

    def fingerprint(self) -> str:
        """A cheap content fingerprint for caching; empty string means "do not cache"."""
        return ""

    def repeats(self) -> int:
        """How many images repeat an earlier one, as far as the source can tell without reading them all.

        0 means none known. Subsets count repeated indices, generators repeated inputs (a translation
        model asked for more images than it has sources), in-memory arrays compare content.
        """
        return 0

    def info(self) -> SourceInfo:
        return SourceInfo(self.kind, self.location, len(self))


def stack_if_same_size(images: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Stack [3,H,W] arrays into [B,3,H,W] when all sizes agree, else return the list."""
    if not images:
        return np.zeros((0, 3, 1, 1), dtype=np.uint8)
    first = images[0].shape
    if all(im.shape == first for im in images):
        return np.stack(images)
    return images


def check_uint8_batch(images: np.ndarray, what: str) -> None:
    """Raise InputError unless ``images`` is uint8 [B, 3, H, W]."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise InputError(
            f"{what}: expected uint8 images of shape [B, 3, H, W], got {images.dtype} {tuple(images.shape)}"
        )
