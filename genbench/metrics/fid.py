"""The Frechet distance between two Gaussians, in float64, without a matrix square root.

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

S1 S2 is similar to the symmetric PSD matrix F^T S2 F for any factor S1 = F F^T,
so tr((S1 S2)^{1/2}) is the sum of square roots of the eigenvalues of F^T S2 F.
F is a Cholesky factor when S1 is positive definite (fast), otherwise
V diag(sqrt(max(w, 0))) from an eigendecomposition (exact for singular S1,
which is what n < d gives). Only symmetric eigensolvers are used, so the result
is real by construction.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..stats.feature_stats import FeatureStats


#: A distance below ``-NEGATIVE_RTOL * (tr sigma1 + tr sigma2 + |mu1 - mu2|^2)`` is not rounding but an error.
NEGATIVE_RTOL = 1e-6


def _drop_roundoff(eigenvalues: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues that are round-off of a singular PSD matrix.

    Their square roots would otherwise add sqrt(eps)-sized noise per dimension.
    """
    tol = np.abs(eigenvalues).max(initial=0.0) * eigenvalues.shape[0] * np.finfo(np.float64).eps
    return np.where(eigenvalues > tol, eigenvalues, 0.0)


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """F with F F^T = sigma (float64 [d, d]); Cholesky when positive definite, else from eigh."""
    try:
        factor = np.linalg.cholesky(sigma)
        if np.diag(factor).min() > np.sqrt(np.finfo(np.float64).eps * np.abs(np.diag(sigma)).max()):
            return factor
    except np.linalg.LinAlgError:
        pass
    w, v = np.linalg.eigh(sigma)
    return v * np.sqrt(_drop_roundoff(w))


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^{1/2}) for symmetric PSD float64 [d, d] matrices."""
    factor = _psd_factor(sigma1)
    inner = factor.T @ sigma2 @ factor
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(_drop_roundoff(eig)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu: [d], sigma: [d, d]; all converted to float64. Raises InputError on
    mismatched shapes or non-finite values.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise InputError(
            f"statistics shapes disagree: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    for name, arr in (("mu", mu1), ("mu", mu2), ("sigma", sigma1), ("sigma", sigma2)):
        if not np.isfinite(arr).all():
            raise InputError(f"statistics contain NaN or Inf in {name}")
    diff = mu1 - mu2
    traces = float(np.trace(sigma1) + np.trace(sigma2))
    distance = float(diff @ diff + traces - 2.0 * trace_sqrt_product(sigma1, sigma2))
    if distance < -NEGATIVE_RTOL * (traces + float(diff @ diff)):
        raise InputError(
            f"the Frechet distance came out {distance:.6g}, below zero beyond rounding: a covariance is not "
            "positive semi-definite (check the statistics files)"
        )
    return distance


def frechet_distance_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """Frechet distance between the Gaussians fitted to two FeatureStats."""
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())
