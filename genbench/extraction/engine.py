"""The extraction loop: uint8 batches -> extractor on the device -> per-chunk float64 statistics and float32 features.

The loop cuts a contiguous range of images into *chunks* (by default 4096 images) and yields one
:class:`Chunk` per chunk: its exact float64 sums (n, sum, sum of outer products) and, when asked, its
float32 features, logits and labels. Whole-input statistics are the sum of the chunk statistics in
order, so a run resumed from saved chunks (see :mod:`genbench.extraction.cache`) is bit-identical to a clean run.

On CUDA the loop keeps the device busy:

- batches come from the loader in pinned host memory as uint8 and are copied with ``non_blocking=True``;
  the extractor resizes and normalises them on the device;
- the network's weights are put in channels-last layout (cuDNN's fast convolution path);
- statistics accumulate on the device in float64, features and logits are copied back to pinned host
  buffers asynchronously, and finiteness is checked on the device; the host waits for the device once
  per chunk, never per batch (an extractor that itself returns CPU tensors still costs one wait per batch).

Precision (``precision=``, CLI ``--precision``): ``float32`` (default; TF32 off for matmuls *and* cuDNN
convolutions, which PyTorch otherwise allows by default), ``tf32`` (CUDA only), or ``bf16`` (autocast to
bfloat16). :func:`precision_deviation` measures what a non-default precision changes on a subset.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..features.base import FeatureExtractor
from ..sources.base import ImageSource
from ..stats.feature_stats import FeatureStats
from .accumulator import FeatureAccumulator
from .request import ExtractionRequest

if TYPE_CHECKING:
    from ..config import ExtractOptions

PRECISIONS = ("float32", "tf32", "bf16")

#: Images per chunk (rounded down to a multiple of the batch size): the unit of resumption and of host waits.
CHUNK_SIZE = 4096

#: Images of the generated input extracted twice by :func:`precision_deviation`.
PRECISION_CHECK_N = 4096


class ProgressCounter(Protocol):
    """Where the extraction loops count images done: ``update(count)`` (a :mod:`genbench.util.progress` phase)."""

    def update(self, n: int, /) -> None: ...


@dataclass
class Chunk:
    """Images ``start:stop`` after extraction.

    ``stats``: exact float64 sums of the chunk's features; ``features`` float32 [B, D], ``logits`` float32
    [B, K] and ``labels`` int64 [B] when kept (None otherwise).
    """

    start: int
    stop: int
    stats: FeatureStats
    features: np.ndarray | None = None
    logits: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return self.stop - self.start


def chunk_ranges(start: int, stop: int, batch_size: int, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Contiguous chunks covering ``[start, stop)``; each a whole number of batches (the last may be shorter)."""
    size = CHUNK_SIZE if chunk_size is None else chunk_size
    step = max(1, size // batch_size) * batch_size
    return [(s, min(s + step, stop)) for s in range(start, stop, step)]


def sum_stats(parts: Iterable[FeatureStats], dim: int) -> FeatureStats:
    """Sum of statistics in the given order, consumed one at a time (each may be dropped once added).

    Every path (clean, resumed, cached) adds chunk sums in this one order, so their results are bit-identical.
    """
    total = FeatureStats.empty(dim)
    for part in parts:
        if part.dim != dim:
            raise InputError(f"cannot add statistics of dimension {part.dim} to dimension {dim}")
        total.n += part.n
        total.total += part.total
        total.outer += part.outer
    return total


# ----------------------------------------------------------------------------- precision and device setup


def check_precision(precision: str, device: torch.device) -> None:
    """ConfigError for an unknown precision, or tf32 off CUDA."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision (--precision) {precision!r}; expected one of: {', '.join(PRECISIONS)}")
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError(f"precision='tf32' (--precision tf32) needs a CUDA device, not device={str(device)!r}")


def _set_fp32_precision(mode: str) -> dict:
    """Set matmul and cuDNN convolution float32 precision ('ieee' or 'tf32'); return what to restore."""
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        old = {"matmul": matmul.fp32_precision, "conv": conv.fp32_precision}
        matmul.fp32_precision = mode
        conv.fp32_precision = mode
        return old
    old = {"allow_matmul": matmul.allow_tf32, "allow_conv": torch.backends.cudnn.allow_tf32}  # older torch
    matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    return old


def _restore_fp32_precision(old: dict) -> None:
    if "matmul" in old:
        torch.backends.cuda.matmul.fp32_precision = old["matmul"]
        torch.backends.cudnn.conv.fp32_precision = old["conv"]  # type: ignore[attr-defined]  # CudnnModule.conv, not in the module stub
    else:
        torch.backends.cuda.matmul.allow_tf32 = old["allow_matmul"]
        torch.backends.cudnn.allow_tf32 = old["allow_conv"]


@contextlib.contextmanager
def precision_mode(precision: str, device: torch.device) -> Iterator[None]:
    """Run the extractor in ``precision``; on CUDA float32 means true IEEE float32 (no TF32)."""
    check_precision(precision, device)
    old = _set_fp32_precision("tf32" if precision == "tf32" else "ieee") if device.type == "cuda" else None
    try:
        if precision == "bf16":
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        if old is not None:
            _restore_fp32_precision(old)


def prepare_extractor(extractor: FeatureExtractor, device: torch.device) -> FeatureExtractor:
    """Channels-last weights on CUDA (cuDNN then runs the convolutions channels-last); a no-op elsewhere."""
    if device.type == "cuda":
        extractor.to(memory_format=torch.channels_last)
    return extractor


# ----------------------------------------------------------------------------- the loop


def _to_device(images: torch.Tensor | list[torch.Tensor], device: torch.device):
    if isinstance(images, list):
        return [im.to(device, non_blocking=True) for im in images]
    return images.to(device, non_blocking=True)


def iter_chunks(
    request: ExtractionRequest,
    ranges: list[tuple[int, int]],
    bar: ProgressCounter | None = None,
) -> Iterator[Chunk]:
    """Extract the contiguous ``ranges`` of ``request.source`` in one loader pass; yield one Chunk per range, in order.

    ``request.options`` gives batch size, workers, device and precision; ``request.keep_features`` and
    ``request.keep_logits`` what each chunk carries besides its statistics; ``request.where`` names the input in
    errors. ``bar`` (optional) gets ``update(count)`` per batch. Raises InputError for images of mixed sizes when
    the extractor needs one size, and for non-finite features or logits (naming the images).
    """
    from ..sources.loader import iter_batches

    if not ranges:
        return
    for (_, stop), (start, _) in itertools.pairwise(ranges):
        if stop != start:
            raise ValueError(f"chunk ranges must be contiguous, got a gap at {stop}..{start}")
    source, extractor, options, where = request.source, request.extractor, request.options, request.where
    keep_features, keep_logits = request.keep_features, request.keep_logits
    device = torch.device(options.device)
    precision = getattr(options, "precision", "float32")
    bounds = iter(ranges)

    def accumulator() -> FeatureAccumulator:  # one per chunk, every row kept in order
        return FeatureAccumulator(extractor.feature_dim, device, keep_features=keep_features, keep_logits=keep_logits,
                                  logits_dim=extractor.logits_dim)

    (start, stop), acc = next(bounds), accumulator()
    batches = iter_batches(source, batch_size=request.batch_size, workers=options.workers,
                           start=ranges[0][0], stop=ranges[-1][1], pin_memory=device.type == "cuda")
    with torch.inference_mode():
        for batch in batches:
            first, images, labels = batch.start, batch.images, batch.labels
            if isinstance(images, list) and not extractor.accepts_mixed_sizes:
                raise InputError(f"{where}: images of different sizes, and extractor {extractor.name} needs one size")
            with precision_mode(precision, device):
                out = extractor(_to_device(images, device))
            features, logits = out["features"], out.get("logits")
            label_array = labels.numpy() if labels is not None else None
            offset = 0
            while offset < len(images):  # a batch may straddle a chunk boundary
                take = min(len(images) - offset, stop - (first + offset))
                part = slice(offset, offset + take)
                acc.add(features[part], None if logits is None or not keep_logits else logits[part],
                        None if label_array is None else label_array[part], first=first + offset, where=where)
                offset += take
                if first + offset == stop:
                    done = acc.finish(where)
                    yield Chunk(start, stop, done.stats, done.features, done.logits, done.labels)
                    following = next(bounds, None)
                    if following is not None:
                        (start, stop), acc = following, accumulator()
            if bar is not None:
                bar.update(len(images))


# ----------------------------------------------------------------------------- precision deviation


def precision_deviation(
    source: ImageSource,
    extractor: FeatureExtractor,
    options: ExtractOptions,
    reference: FeatureStats | None,
    n_max: int | None = None,
) -> dict:
    """Extract the first ``min(N, n_max)`` images of ``source`` in float32 and in ``options.precision``.

    Returns {"precision", "subset_n", "feature_max_abs_dev", "feature_rel_rms_dev" (||F_p - F_32|| / ||F_32||),
    and, with a ``reference`` and at least 2 images, "fd_subset_float32", "fd_subset_<precision>" (Frechet
    distance of each subset to the reference) and "fd_rel_dev"}. Nothing is cached.
    """
    from ..metrics.fid import frechet_distance_from_stats

    m = min(len(source), PRECISION_CHECK_N if n_max is None else n_max)
    out: dict = {"precision": options.precision, "subset_n": m}
    if m == 0:
        return out
    runs = {}
    for precision in ("float32", options.precision):
        opts = dataclasses.replace(options, precision=precision, progress=False)
        request = ExtractionRequest(source, extractor, opts, keep_features=True, keep_logits=False,
                                    label=f"precision check ({precision})")
        (chunk,) = iter_chunks(request, [(0, m)])
        runs[precision] = chunk
    a, b = runs["float32"], runs[options.precision]
    assert a.features is not None and b.features is not None  # the requests keep features
    diff = b.features.astype(np.float64) - a.features.astype(np.float64)
    out["feature_max_abs_dev"] = float(np.abs(diff).max(initial=0.0))
    norm = float(np.linalg.norm(a.features.astype(np.float64)))
    out["feature_rel_rms_dev"] = float(np.linalg.norm(diff) / norm) if norm > 0 else 0.0
    if reference is not None and m >= 2 and reference.n >= 2:
        fd32 = frechet_distance_from_stats(a.stats, reference)
        fdp = frechet_distance_from_stats(b.stats, reference)
        out["fd_subset_float32"] = fd32
        out[f"fd_subset_{options.precision}"] = fdp
        out["fd_rel_dev"] = abs(fdp - fd32) / abs(fd32) if fd32 != 0 else abs(fdp)
    return out


def format_precision_deviation(check: dict) -> str:
    """One line for the terminal."""
    p = check["precision"]
    if "feature_max_abs_dev" not in check:
        return f"precision {p}: no images to compare with float32"
    text = (f"precision {p} vs float32 on {check['subset_n']} images: max |feature dev| "
            f"{check['feature_max_abs_dev']:.3g}, relative RMS {check['feature_rel_rms_dev']:.3g}")
    if "fd_rel_dev" in check:
        text += (f"; FD of the subset {check[f'fd_subset_{p}']:.6g} vs {check['fd_subset_float32']:.6g} "
                 f"(relative deviation {check['fd_rel_dev']:.3g})")
    return text
