"""Parallel batch loading from any ImageSource, in a fixed order.

:func:`iter_batches` cuts ``[start, stop)`` into contiguous ranges of ``batch_size`` images (the last may
be shorter) and reads each with ``source.read_batch`` through a ``torch.utils.data.DataLoader`` whose
sampler yields those ranges. Batches always arrive in index order, so neither ``batch_size`` nor
``workers`` changes which images are read or in what order. ``workers=0`` reads in this process;
``workers=k`` uses k worker processes (not persistent), each opening the source's files itself.

A :class:`~genbench.errors.GenbenchError` (e.g. InputError for a corrupt file) raised while reading in a
worker reaches the caller as the same exception type with the same message, not as a wrapped worker
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError, GenbenchError
from .base import ImageSource

DEFAULT_BATCH_SIZE = 64


@dataclass
class Batch:
    """Images ``start : start + len(batch)`` of a source.

    ``images``: torch uint8 [B, 3, H, W], or a list of B uint8 [3, H, W] tensors when sizes differ
    within the batch. ``labels``: int64 [B] or None when the source has no labels.
    """

    images: torch.Tensor | list[torch.Tensor]
    labels: torch.Tensor | None
    start: int

    def __len__(self) -> int:
        return len(self.images)

    @property
    def stop(self) -> int:
        return self.start + len(self)


@dataclass
class _Failure:
    """A GenbenchError raised while reading, carried back from a worker to be raised as is."""

    error: GenbenchError


class _RangeDataset(Dataset):
    """Maps a (start, stop) range to (images, labels, start) tensors; errors become _Failure."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __getitem__(self, span: tuple[int, int]) -> tuple | _Failure:
        start, stop = span
        try:
            images = self.source.read_batch(start, stop)
            labels = None
            if self.source.has_labels:
                labels = torch.as_tensor([self.source.label(i) for i in range(start, stop)], dtype=torch.int64)
        except GenbenchError as exc:
            return _Failure(exc)
        if isinstance(images, np.ndarray):
            tensor_images: torch.Tensor | list[torch.Tensor] = torch.from_numpy(np.ascontiguousarray(images))
        else:
            tensor_images = [torch.from_numpy(np.ascontiguousarray(im)) for im in images]
        return tensor_images, labels, start


def _as_is(item: object) -> object:
    return item


def _check_range(n: int, batch_size: int, start: int, stop: int | None) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size (--batch-size) must be a positive integer, got {batch_size!r}")
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ConfigError(f"image range start={start}, stop={stop} is outside 0..{n}")
    return stop


def batch_ranges(n: int, batch_size: int, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
    """Contiguous (start, stop) ranges of at most ``batch_size`` covering ``[start, stop)`` of ``n``."""
    stop = _check_range(n, batch_size, start, stop)
    return [(s, min(s + batch_size, stop)) for s in range(start, stop, batch_size)]


def count_batches(
    source: ImageSource | int, batch_size: int = DEFAULT_BATCH_SIZE, start: int = 0, stop: int | None = None
) -> int:
    """Number of batches :func:`iter_batches` yields for these arguments (``source`` may be a length)."""
    n = source if isinstance(source, int) else len(source)
    stop = _check_range(n, batch_size, start, stop)
    return -(-(stop - start) // batch_size)


def iter_batches(
    source: ImageSource,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 0,
    start: int = 0,
    stop: int | None = None,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Yield :class:`Batch` objects covering images ``start:stop`` of ``source`` in index order.

    Raises ConfigError for a bad ``batch_size``/``workers``/range, and the source's own InputError (same
    type and message in the caller, whatever ``workers`` is) for a file it cannot read.
    ``pin_memory`` pins batches in page-locked memory when CUDA is available (ignored otherwise).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers (--workers) must be an integer >= 0, got {workers!r}")
    ranges: Sequence[tuple[int, int]] = batch_ranges(len(source), batch_size, start, stop)
    if not ranges:
        return
    loader = DataLoader(
        _RangeDataset(source),
        batch_size=None,
        sampler=ranges,
        num_workers=min(workers, len(ranges)),
        collate_fn=_as_is,
        pin_memory=bool(pin_memory) and torch.cuda.is_available(),
        persistent_workers=False,
    )
    for item in loader:
        if isinstance(item, _Failure):
            raise item.error
        images, labels, first = item
        yield Batch(images=images, labels=labels, start=int(first))
