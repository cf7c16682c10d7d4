"""Stacked Fashion-MNIST: three Fashion-MNIST images in the three colour channels, 10^3 = 1000 modes.

The Fashion-MNIST analogue of Stacked MNIST (Metz et al. 2017, VEEGAN, PacGAN): each image is
uint8 [28, 28, 3] whose channel c (R, G, B) is Fashion-MNIST image ``index[c]``, the three indices
drawn independently and uniformly (with replacement) from the same split. Its label is the mode
``100 * class(R) + 10 * class(G) + class(B)`` in [0, 1000).

Splits, registered in :data:`genbench.sources.datasets.DATASETS` as ``stacked-fashion-mnist:train``
(60,000 triples from ``fashion-mnist:train``) and ``stacked-fashion-mnist:test`` (10,000 triples from
``fashion-mnist:test``). The triples are fixed: drawn from ``numpy.random.default_rng([STACK_SEED, s])``
with s = 0 for train and 1 for test, so every installation builds the same images; the files are
Fashion-MNIST's own IDX files, found as for ``fashion-mnist``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .datasets import (
    _HOW_FASHION,
    _IDX_FILES,
    DATASETS,
    DEBIAN_FASHION_MNIST,
    DatasetDef,
    _idx_downloader,
    _read_idx_pair,
)

#: Seed of the triples (changing it changes the data set: rename the data set if you must).
STACK_SEED = 20240
#: Images per split: as many as the split of Fashion-MNIST they are drawn from.
STACK_SIZES = {"train": 60000, "test": 10000}
N_CHANNELS = 3
N_CLASSES = 10
N_MODES = N_CLASSES**N_CHANNELS


def stack_indices(n_source: int, n_out: int, stream: int) -> np.ndarray:
    """int64 [n_out, 3]: the source image of each channel, drawn uniformly with replacement."""
    rng = np.random.default_rng([STACK_SEED, stream])
    return rng.integers(0, n_source, size=(n_out, N_CHANNELS), dtype=np.int64)


def stack_images(images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gray uint8 [N, H, W] + labels [N] and an index [M, 3] -> uint8 [M, H, W, 3] and modes [M]."""
    stacked = np.ascontiguousarray(np.stack([images[index[:, c]] for c in range(N_CHANNELS)], axis=-1))
    modes = sum(labels[index[:, c]].astype(np.int64) * N_CLASSES ** (N_CHANNELS - 1 - c) for c in range(N_CHANNELS))
    return stacked, np.asarray(modes, dtype=np.int64)


def mode_digits(modes: np.ndarray) -> np.ndarray:
    """Modes [N] in [0, 1000) -> per-channel classes int64 [N, 3] (R, G, B)."""
    modes = np.asarray(modes, dtype=np.int64)
    return np.stack([(modes // N_CLASSES ** (N_CHANNELS - 1 - c)) % N_CLASSES for c in range(N_CHANNELS)], axis=1)


def _stacked_reader(split: str) -> Callable[[tuple[Path, ...]], tuple[np.ndarray, np.ndarray]]:
    stream = {"train": 0, "test": 1}[split]

    def read(files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = _read_idx_pair(files)
        return stack_images(images, labels, stack_indices(len(images), STACK_SIZES[split], stream))

    return read


for _split in ("train", "test"):
    if f"stacked-fashion-mnist:{_split}" not in DATASETS:
        DATASETS.register(f"stacked-fashion-mnist:{_split}")(
            DatasetDef(
                name="stacked-fashion-mnist",
                split=_split,
                num_classes=N_MODES,
                image_shape=(28, 28, 3),
                subdirs=("", "fashion-mnist", "FashionMNIST/raw"),
                filenames=_IDX_FILES[_split],
                reader=_stacked_reader(_split),
                downloader=_idx_downloader("FashionMNIST", "FashionMNIST/raw", _split),
                system_dirs=(DEBIAN_FASHION_MNIST,),
                how_to_get=_HOW_FASHION,
                gz_optional=True,
            )
        )
