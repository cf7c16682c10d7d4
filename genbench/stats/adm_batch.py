"""ADM reference batches (openai/guided-diffusion ``evaluations/``): their images and their statistics.

A reference batch is an ``.npz`` with ``arr_0`` (uint8 NHWC images, read by :mod:`genbench.sources.adm`: checked,
memory-mapped when stored) and ``mu``/``sigma`` (``pool_3``, 2048-d) and ``mu_s``/``sigma_s`` (the spatial
features of sFID, 2023-d), computed over the whole data set; the images serve precision and recall.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReferenceStatsError
from ..sources.adm import batch_images
from ..sources.arrays import ArraySource, _npz_members, _open_zip, read_npz_array
from ..sources.limits import max_array_bytes
from .feature_stats import FeatureStats


@dataclass
class ReferenceBatch:
    """An ADM reference batch: its images (for precision/recall) and its statistics (``pool3`` and ``spatial``)."""

    images: ArraySource
    pool3: FeatureStats
    spatial: FeatureStats | None


def _stats(zf: zipfile.ZipFile, members: dict[str, str], path: Path, mu_key: str, sigma_key: str, dim: int | None,
           n: int) -> FeatureStats:
    limit = max_array_bytes()
    mu = read_npz_array(zf, members[mu_key], path, limit).astype(np.float64)
    sigma = read_npz_array(zf, members[sigma_key], path, limit).astype(np.float64)
    d = mu.shape[0] if mu.ndim == 1 else -1
    if mu.ndim != 1 or sigma.shape != (d, d) or (dim is not None and d != dim):
        raise ReferenceStatsError(f"{path}: {mu_key} {mu.shape} and {sigma_key} {sigma.shape} are not a mean [d] and "
                                  f"a covariance [d, d]" + (f" with d = {dim}" if dim is not None else ""))
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ReferenceStatsError(f"{path}: {mu_key}/{sigma_key} hold NaN or Inf")
    # ADM's statistics carry no count; FD reads only the mean and covariance, which come back to float64 rounding.
    return FeatureStats.from_mean_cov(mu, sigma, max(n, 2))


def open_reference_batch(path: str | Path) -> ReferenceBatch:
    """The images and the ``mu``/``sigma`` (2048-d) and, where present, ``mu_s``/``sigma_s`` (2023-d) of an ADM
    reference batch; ReferenceStatsError / InputError naming the file."""
    from ..features.inception import FEATURE_DIM, SPATIAL_DIM  # torch: imported only when a batch is read

    path = Path(path)
    images = ArraySource(batch_images(path, "reference batch"), name=str(path), layout="NHWC")
    with _open_zip(path) as zf:
        members = _npz_members(zf)
        pool3 = _stats(zf, members, path, "mu", "sigma", FEATURE_DIM, len(images))
        spatial = None
        if "mu_s" in members and "sigma_s" in members:
            spatial = _stats(zf, members, path, "mu_s", "sigma_s", SPATIAL_DIM, len(images))
    return ReferenceBatch(images, pool3, spatial)
