"""The Frechet distance between two Gaussians, in float64, without a matrix square root.

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

S1 S2 is similar to the symmetric PSD matrix F^T S2 F for any factor S1 = F F^T,
so tr((S1 S2)^{1/2}) is the sum of square roots of the eigenvalues of F^T S2 F.
F is a Cholesky factor when S1 is positive definite (fast), otherwise
V diag(sqrt(max(w, 0))) from an eigendecomposition (exact for singular S1,
which is what n < d gives). Only symmetric eigensolvers are used, so the result
is real by construction. With a Cholesky factor L the congruence L^T S2 L is one LAPACK
dsygst call, which uses the symmetry of S2 (a quarter of the flops of two general products).

:class:`FrechetReference` prepares one side once (its factor, trace and checks) for
many distances against it, as a training loop's fixed reference needs: by
tr((S1 S2)^{1/2}) = tr((S2 S1)^{1/2}) each distance then costs one congruence and
one symmetric eigenvalue solve.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.linalg import lapack

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


def _psd_factor(sigma: np.ndarray) -> tuple[np.ndarray, bool]:
    """(F, lower) with F F^T = sigma (float64 [d, d]): the lower Cholesky factor (lower=True) when sigma is
    positive definite, else V diag(sqrt(w)) from eigh (lower=False)."""
    try:
        factor = np.linalg.cholesky(sigma)
        if np.diag(factor).min() > np.sqrt(np.finfo(np.float64).eps * np.abs(np.diag(sigma)).max()):
            return factor, True
    except np.linalg.LinAlgError:
        pass
    w, v = np.linalg.eigh(sigma)
    return v * np.sqrt(_drop_roundoff(w)), False


def _congruence(factor: np.ndarray, lower: bool, sigma: np.ndarray) -> tuple[np.ndarray, Literal["U", "L"]]:
    """factor^T sigma factor for a symmetric sigma (float64 [d, d]), and the triangle of it that holds the
    result ("U" or "L"; the other triangle is not meaningful).

    With a Cholesky factor L this is LAPACK dsygst (itype 2: U sigma U^T for U = L^T), which uses the symmetry
    of sigma and costs d^3 flops, half of two triangular products. Both operands are passed as their
    Fortran-ordered transposed views (sigma is symmetric and U = L^T), so no transposing copy is made.
    """
    if lower:
        reduced, info = lapack.dsygst(sigma.T, factor.T, itype=2, lower=0)
        if info != 0:  # pragma: no cover - LAPACK reports only illegal arguments here
            raise InputError(f"the Frechet distance's congruence failed (LAPACK dsygst info {info})")
        return reduced, "U"
    return factor.T @ sigma @ factor, "L"


def _trace_sqrt(factor: np.ndarray, lower: bool, sigma: np.ndarray) -> float:
    """tr((F F^T sigma)^{1/2}) = sum of square roots of the eigenvalues of F^T sigma F."""
    inner, triangle = _congruence(factor, lower, sigma)
    eig = np.linalg.eigvalsh(inner, UPLO=triangle)
    return float(np.sqrt(_drop_roundoff(eig)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^{1/2}) for symmetric PSD float64 [d, d] matrices."""
    return _trace_sqrt(*_psd_factor(sigma1), sigma2)


def _checked(mu: np.ndarray, sigma: np.ndarray, d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float64 (mu [d], sigma [d, d]); InputError for other shapes or non-finite values."""
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    d = mu.shape[0] if d is None and mu.ndim == 1 else d
    if mu.shape != (d,) or sigma.shape != (d, d):
        raise InputError(f"statistics shapes disagree: mu {mu.shape}, sigma {sigma.shape}, "
                         f"expected ({d},) and ({d}, {d})")
    for name, arr in (("mu", mu), ("sigma", sigma)):
        if not np.isfinite(arr).all():
            raise InputError(f"statistics contain NaN or Inf in {name}")
    if not np.array_equal(sigma, sigma.T):  # a saved covariance may be symmetric only up to rounding
        sigma = (sigma + sigma.T) / 2  # the factorisations read one triangle: give them the symmetric part
    return mu, sigma


def _distance(diff: np.ndarray, traces: float, trace_sqrt: float) -> float:
    sq = float(diff @ diff)
    distance = sq + traces - 2.0 * trace_sqrt
    if distance < -NEGATIVE_RTOL * (traces + sq):
        raise InputError(
            f"the Frechet distance came out {distance:.6g}, below zero beyond rounding: a covariance is not "
            "positive semi-definite (check the statistics files)"
        )
    return distance


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu: [d], sigma: [d, d]; all converted to float64. Raises InputError on
    mismatched shapes or non-finite values.
    """
    mu1, sigma1 = _checked(mu1, sigma1)
    mu2, sigma2 = _checked(mu2, sigma2, mu1.shape[0])
    traces = float(np.trace(sigma1) + np.trace(sigma2))
    return _distance(mu1 - mu2, traces, trace_sqrt_product(sigma1, sigma2))


def frechet_distance_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """Frechet distance between the Gaussians fitted to two FeatureStats."""
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())


class FrechetReference:
    """The fixed side N(mu, sigma) of many Frechet distances, prepared once (mu [d], sigma [d, d], float64).

    ``distance(mu1, sigma1)`` equals ``frechet_distance(mu1, sigma1, mu, sigma)`` up to float64 rounding
    (about 1e-13 relative): it reuses this side's factor, trace and checks, so a call costs one congruence
    F^T sigma1 F and one symmetric eigenvalue solve, and it never needs the eigendecomposition fallback for
    a singular sigma1 (few generated samples) when this side is positive definite.
    """

    def __init__(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        self.mu, self.sigma = _checked(mu, sigma)
        self.dim = int(self.mu.shape[0])
        self.trace = float(np.trace(self.sigma))
        self.factor, self.lower = _psd_factor(self.sigma)

    @classmethod
    def from_stats(cls, stats: FeatureStats) -> FrechetReference:
        return cls(stats.mean(), stats.cov())

    def distance(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        mu, sigma = _checked(mu, sigma, self.dim)
        return _distance(mu - self.mu, float(np.trace(sigma)) + self.trace, _trace_sqrt(self.factor, self.lower, sigma))
