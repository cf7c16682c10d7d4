"""The Vendi score (Friedman & Dieng, TMLR 2023): the effective number of distinct samples in a set.

For features X [n, d] with rows scaled to unit L2 norm (cosine similarity, as the ``vendi-score``
package's ``score_X`` and dgm-eval's ``compute_vendi_score`` do by default), K = X X^T is the
similarity kernel with unit diagonal. With lambda_i the eigenvalues of K / n (they sum to 1),

    VS_q = exp(H_q(lambda)),   H_1 = -sum lambda log lambda,   H_q = log(sum lambda^q) / (1 - q),
    H_inf = -log max lambda.

q = 1 is the paper's score; other q (the "q-order" Vendi scores of Pasarkar & Dieng 2024) weigh rare
(q < 1) or common (q > 1) modes more. n identical points give 1, n orthogonal points give n, for every q.

Memory: the nonzero eigenvalues of X X^T / n (n x n) are those of X^T X / n (d x d), so for n > d the
d x d matrix is accumulated in row blocks and an n x n matrix never exists (the package's ``score_dual``
route); for n <= d the n x n kernel is used (it is the smaller one).

Difference from the package: eigenvalues at the level of rounding (|lambda| <= n eps max lambda, the zero
eigenvalues of a rank-deficient kernel) are dropped; the package keeps the positive ones. For q >= 1 that
changes nothing beyond 1e-15; for q < 1 those rounding values, raised to the power q, would add a
CPU-dependent amount. The package's ``score_X`` passes q = 1 whatever q it is given; ``score_K`` and
``score_dual`` honour q.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, InputError
from .knn import as_features

#: Rows of X per block when X^T X is accumulated.
_BLOCK_ROWS = 8192


def parse_order(q: float | str) -> float:
    """The order q as a float (``"inf"`` -> math.inf); ConfigError (naming --vendi-q) unless q > 0."""
    try:
        value = float(q)
    except (TypeError, ValueError):
        raise ConfigError(f"the Vendi order q (--vendi-q) must be a positive number or 'inf', got {q!r}") from None
    if not value > 0 or math.isnan(value):
        raise ConfigError(f"the Vendi order q (--vendi-q) must be a positive number or 'inf', got {q!r}")
    return value


def unit_rows(features: np.ndarray, name: str = "features") -> np.ndarray:
    """Rows of [n, d] divided by their L2 norms (float64); InputError for a zero row (its cosine is undefined)."""
    x = as_features(features, name)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise InputError(f"{name}: {len(zero)} rows are all zero (first: row {int(zero[0])}); the cosine "
                         "similarity of the Vendi score is undefined for them")
    return x / norms[:, None]


def kernel_eigenvalues(features: np.ndarray, *, normalize: bool = True, name: str = "features") -> np.ndarray:
    """The eigenvalues of K / n, K = X X^T (X row-normalised when ``normalize``), rounding-level ones set to 0.

    features [n, d] -> float64 [min(n, d)] (the remaining n - d eigenvalues of an n > d kernel are 0).
    """
    x = unit_rows(features, name) if normalize else as_features(features, name)
    n, d = x.shape
    if n <= d:
        gram = x @ x.T
    else:
        gram = np.zeros((d, d))
        for start in range(0, n, _BLOCK_ROWS):
            block = x[start:start + _BLOCK_ROWS]
            gram += block.T @ block
    gram = (gram + gram.T) / (2.0 * n)
    w = np.linalg.eigvalsh(gram)
    tol = max(float(np.abs(w).max(initial=0.0)), 0.0) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def entropy(eigenvalues: np.ndarray, q: float) -> float:
    """Renyi entropy of order q (natural log) of a probability vector's positive entries."""
    p = np.asarray(eigenvalues, dtype=np.float64)
    p = p[p > 0]
    if q == 1:
        return float(-(p * np.log(p)).sum())
    if math.isinf(q):
        return float(-np.log(p.max()))
    return float(np.log((p**q).sum()) / (1.0 - q))


def vendi_score(features: np.ndarray, q: float | str = 1.0, *, normalize: bool = True,
                name: str = "features") -> float:
    """VS_q of features [n, d] (cosine kernel when ``normalize``): a number in [1, n].

    Raises InputError for malformed features (NaN, zero rows with ``normalize``) and ConfigError for q <= 0.
    """
    order = parse_order(q)
    return math.exp(entropy(kernel_eigenvalues(features, normalize=normalize, name=name), order))
