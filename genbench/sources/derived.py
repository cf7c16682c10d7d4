"""Sources made from another source image by image, in its order: a transformed copy, one channel of each image.

:class:`DerivedSource` holds what such a source keeps of its base: the length, the keys, the labels and (where
the derivation keeps near-copies) the repeats; its cache fingerprint is the base's plus what the derivation
adds. A subclass says how one image is derived (:meth:`DerivedSource.derive`) and what its fingerprint adds.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from .base import ImageSource


class DerivedSource(ImageSource):
    """Image ``i`` is ``derive(base.read(i), i)``; everything else is the base's."""

    #: True when a repeated base image stays a near-copy after the derivation (so the base's repeats count).
    keeps_repeats: ClassVar[bool] = False

    def __init__(self, base: ImageSource, what: str) -> None:
        self.base = base
        self.location = f"{base.location or base.kind}[{what}]"

    @abstractmethod
    def derive(self, image: np.ndarray, index: int) -> np.ndarray:
        """Image ``index`` (uint8 [3, H, W]) from the base's image at that index."""

    @abstractmethod
    def fingerprint_part(self) -> str:
        """What the derivation adds to the base's cache fingerprint (everything of it that changes the pixels)."""

    def __len__(self) -> int:
        return len(self.base)

    def read(self, index: int) -> np.ndarray:
        return self.derive(self.base.read(index), index)

    def read_batch(self, start: int, stop: int) -> np.ndarray | list[np.ndarray]:
        batch = self.base.read_batch(start, stop)
        images = [self.derive(image, start + i) for i, image in enumerate(batch)]
        if isinstance(batch, list):
            return images
        return np.stack(images) if images else batch[:0]

    def key(self, index: int) -> str:
        return self.base.key(index)

    def label(self, index: int) -> int | None:
        return self.base.label(index)

    @property
    def has_labels(self) -> bool:
        return self.base.has_labels

    def fingerprint(self) -> str:
        inner = self.base.fingerprint()
        return f"{inner}|{self.fingerprint_part()}" if inner else ""

    def repeats(self) -> int:
        return self.base.repeats() if self.keeps_repeats else 0


class ChannelSource(DerivedSource):
    """Channel ``channel`` of every image of a base source, as a gray image repeated to RGB [3, H, W]."""

    kind = "channel"

    def __init__(self, base: ImageSource, channel: int) -> None:
        if channel not in (0, 1, 2):
            raise ConfigError(f"channel must be 0, 1 or 2, got {channel}")
        super().__init__(base, f"channel {'RGB'[channel]}")
        self.channel = channel

    def derive(self, image: np.ndarray, index: int) -> np.ndarray:
        return np.repeat(image[self.channel : self.channel + 1], 3, axis=0)

    def fingerprint_part(self) -> str:
        return f"channel={self.channel}"
