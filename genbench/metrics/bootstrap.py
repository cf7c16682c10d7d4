"""Seeded bootstrap 95% intervals for Frechet distance and KID."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..stats.feature_stats import FeatureStats
from .fid import frechet_distance


def bootstrap_frechet_values(
    generated: np.ndarray, reference: FeatureStats, replicates: int, seed: int,
    on_replicate: Callable[[int], None] | None = None,
) -> tuple[float, np.ndarray]:
    """(FD of the generated features [N, d], FD of each of ``replicates`` resamples of them with replacement), the
    reference statistics fixed; ``numpy.random.default_rng(seed)`` draws the multinomial resampling counts (each
    replicate reweights the samples, which equals resampling without materialising copies)."""
    x = np.asarray(generated, np.float64)
    n = len(x)
    rng = np.random.default_rng(seed)
    mu_r, sigma_r = reference.mean(), reference.cov()
    values = np.empty(replicates)
    for b in range(replicates):
        counts = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
        mu = counts @ x / n
        centered = x - mu
        sigma = (centered * counts[:, None]).T @ centered / (n - 1)
        values[b] = frechet_distance(mu, sigma, mu_r, sigma_r)
        if on_replicate is not None:
            on_replicate(1)
    point = frechet_distance(x.mean(0), np.cov(x, rowvar=False), mu_r, sigma_r)
    return float(point), values


def bootstrap_frechet_interval(
    generated: np.ndarray, reference: FeatureStats, replicates: int, seed: int,
    on_replicate: Callable[[int], None] | None = None,
) -> tuple[float, float]:
    """95% interval of FD when the generated features [N, d] are resampled with replacement.

    The reference statistics stay fixed (they are usually much larger and shared by
    every model compared). A resample holds duplicates, which inflates its covariance
    error and so its FD: the bootstrap distribution sits above the point estimate. The
    interval therefore takes the spread of the bootstrap percentiles around their median,
    centred on the FD of the actual samples (:func:`bootstrap_frechet_values` draws them).
    ``on_replicate(1)`` (optional) is called after each replicate.
    """
    point, values = bootstrap_frechet_values(generated, reference, replicates, seed, on_replicate)
    lo, median, hi = np.percentile(values, [2.5, 50.0, 97.5])
    return float(point + lo - median), float(point + hi - median)


def bootstrap_mean_interval(values: np.ndarray, replicates: int, seed: int) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``values`` [S] (e.g. KID's per-subset estimates)."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(replicates, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)
