"""Training data for the baselines: uint8 arrays held as tensors, sampled in seeded shuffled epochs.

Gray data sets (``fashion-mnist``) give images [N, 28, 28]; colour ones (``stacked-fashion-mnist``)
[N, 28, 28, C]. Batches are always channels-first, uint8 [B, C, 28, 28] (C = 1 for gray).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from genbench.errors import ConfigError, InputError


@dataclass(frozen=True)
class Arrays:
    """A set of images and their labels.

    images: uint8 [N, 28, 28] (gray) or [N, 28, 28, C] (colour); labels: int64 [N]; indices: int64 [N], each image's index in
    the data set it came from (so GLO codes and CycleGAN sources can name their images).
    """

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        """1 for gray [N, H, W] images, else the trailing C of [N, H, W, C]."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[3])

    def subset(self, rows: np.ndarray | slice) -> Arrays:
        return Arrays(self.images[rows], self.labels[rows], self.indices[rows])


@functools.lru_cache(maxsize=4)
def load_arrays(spec: str) -> Arrays:
    """Load ``spec`` (e.g. "fashion-mnist:train") through genbench's data set loader (cached per process).

    The arrays are read-only. Raises InputError (from the loader) for an unknown data set or split.
    """
    from genbench.sources.datasets import load_dataset_arrays

    images, labels = load_dataset_arrays(spec)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:3] != (28, 28) or images.ndim not in (3, 4):
        raise InputError(
            f"data set {spec!r} (data.dataset / data.eval_dataset): the baselines need uint8 28x28 images, "
            f"[N, 28, 28] (gray) or [N, 28, 28, C] (colour), got {images.dtype} {images.shape}"
        )
    labels = np.asarray(labels, dtype=np.int64)
    arrays = Arrays(images, labels, np.arange(len(images), dtype=np.int64))
    for array in (arrays.images, arrays.labels, arrays.indices):
        array.flags.writeable = False
    return arrays


def dataset_channels(spec: str, option: str = "data.dataset") -> int:
    """Channels of the images of data set ``spec`` from its registered definition (no file is read).

    1 for gray (H, W) images, C for (H, W, C). ConfigError naming ``option`` for an unknown data set.
    """
    from genbench.sources.datasets import dataset_info

    try:
        shape = tuple(dataset_info(spec).image_shape)
    except ConfigError as exc:
        raise ConfigError(f"{option} = {spec!r}: {exc}") from None
    return 1 if len(shape) == 2 else int(shape[2])


@dataclass(frozen=True)
class Batch:
    """One training batch on the training device.

    images: uint8 [B, C, H, W] (C = 1 for gray data); labels: int64 [B]; indices: int64 [B] (rows of the stream's Arrays).
    """

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    def float_images(self, low: float = -1.0) -> torch.Tensor:
        """Images as float32 in [low, 1]: low=-1 gives [-1, 1] (GANs), low=0 gives [0, 1]."""
        x = self.images.float() / 255.0
        return x * (1.0 - low) + low


class BatchSampler:
    """Endless shuffled epochs over one stream's arrays, seeded, with the data kept on ``device``."""

    def __init__(self, arrays: Arrays, batch_size: int, seed: int, device: torch.device) -> None:
        if len(arrays) == 0:
            raise InputError("a training stream has no images (check the data set and class options)")
        images = torch.tensor(arrays.images)
        # Channels first: [N, H, W] -> [N, 1, H, W]; [N, H, W, C] -> [N, C, H, W].
        images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
        self.images = images.to(device)
        self.labels = torch.tensor(arrays.labels).to(device)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.device = device
        self._order = torch.empty(0, dtype=torch.int64)
        self._pos = 0

    def next(self, count: int | None = None) -> Batch:
        """The next ``count`` (default batch_size) images; epochs are fresh permutations."""
        count = self.batch_size if count is None else count
        parts = []
        while count > 0:
            if self._pos >= len(self._order):
                self._order = torch.randperm(len(self.images), generator=self.generator)
                self._pos = 0
            take = self._order[self._pos : self._pos + count]
            self._pos += len(take)
            count -= len(take)
            parts.append(take)
        rows = torch.cat(parts).to(self.device)
        return Batch(self.images[rows], self.labels[rows], rows)

