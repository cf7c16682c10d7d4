"""FD-infinity and IS-infinity (Chong & Forsyth, CVPR 2020): extrapolate a biased metric to N -> infinity.

Both FD and IS computed on N samples are biased, with a bias close to linear in 1/N:
E[M_N] ~ M_inf + b / N. The procedure (as in the authors' ``score_infinity.py`` and
dgm-eval's ``compute_FD_infinity``):

1. take ``points`` sample sizes ``N_j = linspace(min_n, N, points)`` (default 15 points,
   ``min_n = min(5000, max(N // 10, 2))``, dgm-eval's rule);
2. for each N_j draw N_j of the N samples without replacement (seeded; an independent draw
   per point) and compute the metric on them: FD against fixed reference statistics,
   IS with a single split;
3. fit M_N = a + b (1/N) by ordinary least squares; report the intercept a (the metric at
   1/N = 0), the slope b and the fit's coefficient of determination R^2.

Pure functions of arrays; no files or devices. The authors draw latents with scrambled
Sobol sequences to reduce variance; with a fixed set of samples that step does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError
from ..stats.feature_stats import FeatureStats
from .fid import frechet_distance
from .inception_score import inception_score

DEFAULT_POINTS = 15


def default_min_n(n: int) -> int:
    """Smallest sample size of the fit: ``min(5000, max(n // 10, 2))``."""
    return min(5000, max(n // 10, 2))


def sample_sizes(n: int, min_n: int | None = None, points: int = DEFAULT_POINTS) -> np.ndarray:
    """``points`` distinct sample sizes, int64 [P], evenly spaced from ``min_n`` to ``n`` (both included).

    Raises ConfigError when fewer than two distinct sizes fit between ``min_n`` and ``n``.
    """
    min_n = default_min_n(n) if min_n is None else int(min_n)
    if points < 2:
        raise ConfigError(f"the 1/N extrapolation needs at least 2 sample sizes, got points={points}")
    if not 2 <= min_n < n:
        raise ConfigError(f"the 1/N extrapolation needs 2 <= min_n < N; got min_n={min_n}, N={n} samples")
    sizes = np.unique(np.linspace(min_n, n, points).round().astype(np.int64))
    if len(sizes) < 2:
        raise ConfigError(f"too few samples ({n}) for a 1/N extrapolation from min_n={min_n}")
    return sizes


@dataclass(frozen=True)
class InverseNFit:
    """An OLS fit value = intercept + slope / N over the measured (N, value) points."""

    intercept: float
    slope: float
    r2: float
    sizes: tuple[int, ...]
    values: tuple[float, ...]

    def to_dict(self) -> dict:
        """The metric entry: ``value`` is the extrapolated intercept; ``points`` are [N, value] pairs."""
        return {
            "value": self.intercept,
            "slope": self.slope,
            "r2": self.r2,
            "points": [[int(n), float(v)] for n, v in zip(self.sizes, self.values)],
        }


def fit_inverse_n(sizes: np.ndarray, values: np.ndarray) -> InverseNFit:
    """Least-squares fit of ``values`` [P] on ``1 / sizes`` [P] with an intercept."""
    sizes = np.asarray(sizes, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if sizes.shape != values.shape or sizes.ndim != 1 or len(sizes) < 2:
        raise InputError(f"1/N fit: expected two equal-length 1-d arrays of >= 2 points, got {sizes.shape} and {values.shape}")
    design = np.stack([np.ones_like(sizes), 1.0 / sizes], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, values, rcond=None)
    residual = values - design @ np.array([intercept, slope])
    total = float(((values - values.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return InverseNFit(float(intercept), float(slope), r2, tuple(int(s) for s in sizes), tuple(float(v) for v in values))


def _subsets(n: int, sizes: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    for size in sizes:
        yield rng.choice(n, size=int(size), replace=False)


def fd_infinity(
    features: np.ndarray,
    ref_mu: np.ndarray,
    ref_sigma: np.ndarray,
    *,
    min_n: int | None = None,
    points: int = DEFAULT_POINTS,
    seed: int = 0,
) -> InverseNFit:
    """FD_inf of generated features [N, d] against a reference Gaussian (mu [d], sigma [d, d])."""
    x = np.asarray(features)
    if x.ndim != 2:
        raise InputError(f"FD-infinity: expected features of shape [N, d], got {x.shape}")
    sizes = sample_sizes(len(x), min_n, points)
    values = []
    for idx in _subsets(len(x), sizes, seed):
        stats = FeatureStats.from_features(x[idx])
        values.append(frechet_distance(stats.mean(), stats.cov(), ref_mu, ref_sigma))
    return fit_inverse_n(sizes, np.array(values))


def is_infinity(
    logits: np.ndarray, *, min_n: int | None = None, points: int = DEFAULT_POINTS, seed: int = 0
) -> InverseNFit:
    """IS_inf of classifier logits [N, K]; each IS_N uses one split, as in the paper."""
    x = np.asarray(logits)
    if x.ndim != 2:
        raise InputError(f"IS-infinity: expected logits of shape [N, K], got {x.shape}")
    sizes = sample_sizes(len(x), min_n, points)
    values = [inception_score(x[idx], splits=1, seed=None).mean for idx in _subsets(len(x), sizes, seed)]
    return fit_inverse_n(sizes, np.array(values))
