"""Streaming, mergeable first and second moments of feature vectors.

Accumulated in float64 as (n, sum, sum of outer products), so shards merge by
addition (a distributed all-reduce is a plain sum) and memory is O(d^2) however
many images are seen. The covariance uses the unbiased N-1 convention, as the
original FID code and every common port do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass
class FeatureStats:
    """Running moments of d-dimensional features.

    Attributes: ``n`` samples seen, ``total`` float64 [d] (sum of features),
    ``outer`` float64 [d, d] (sum of x x^T).
    """

    n: int
    total: np.ndarray
    outer: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> FeatureStats:
        return cls(0, np.zeros(dim, dtype=np.float64), np.zeros((dim, dim), dtype=np.float64))

    @classmethod
    def from_features(cls, features: np.ndarray) -> FeatureStats:
        """Statistics of float features [N, d] in one pass."""
        stats = cls.empty(np.asarray(features).shape[1])
        stats.update(features)
        return stats

    @classmethod
    def from_mean_cov(cls, mu: np.ndarray, sigma: np.ndarray, n: int) -> FeatureStats:
        """Rebuild the sums from a saved mean [d], covariance [d, d] (N-1 convention) and count."""
        mu = np.asarray(mu, dtype=np.float64)
        sigma = np.asarray(sigma, dtype=np.float64)
        return cls(int(n), mu * n, sigma * (n - 1) + np.outer(mu, mu) * n)

    @property
    def dim(self) -> int:
        return int(self.total.shape[0])

    def update(self, features: np.ndarray) -> None:
        """Add a batch of features [B, d] (any float dtype; accumulated in float64)."""
        from .moments import moment_sums

        n, total, outer = moment_sums(features, self.dim)  # float64 sums, in row blocks
        self.n += n
        self.total += total
        self.outer += outer

    def merge(self, other: FeatureStats) -> FeatureStats:
        """A new FeatureStats equal to one pass over both inputs."""
        if other.dim != self.dim:
            raise InputError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        return FeatureStats(self.n + other.n, self.total + other.total, self.outer + other.outer)

    def mean(self) -> np.ndarray:
        """float64 [d]."""
        self._require(1)
        return self.total / self.n

    def cov(self) -> np.ndarray:
        """Unbiased covariance, float64 [d, d]; needs n >= 2."""
        self._require(2)
        mu = self.mean()
        cov = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (cov + cov.T) / 2

    def _require(self, n_min: int) -> None:
        if self.n < n_min:
            raise InputError(f"statistics need at least {n_min} samples, got {self.n}")
