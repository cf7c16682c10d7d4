"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel.

k(x, y) = (x.y / d + 1)^3. For subsets X, Y of size m:
    MMD^2 = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1)) - 2 sum_{i,j} k(x_i,y_j)/m^2
(the cross term over all m^2 pairs, as the original KID code's default estimator).
KID is the mean over seeded random subsets drawn without replacement; std is over subsets.

A subset as large as both sets is the whole of both, in another order: every subset then gives the same
value (up to the last bits of the sums), so the std over subsets and any interval drawn from them say
nothing (:func:`spread_problem`). Where a verb picks the subset size itself, :func:`spread_subset_size`
avoids that.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError, InputError
from .inception_score import ScoreSpread


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between feature sets x [m, d] and y [m', d] (float64)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    d = x.shape[1]
    gamma = 1.0 / d if gamma is None else gamma
    k_xx = (x @ x.T * gamma + coef0) ** degree
    k_yy = (y @ y.T * gamma + coef0) ** degree
    k_xy = (x @ y.T * gamma + coef0) ** degree
    m, n = x.shape[0], y.shape[0]
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def spread_problem(n_generated: int, n_reference: int, subset_size: int, subsets: int) -> str | None:
    """Why the values over KID's subsets cannot vary (a zero-width spread that is no interval), or None.

    Every subset is the whole of both sets when ``subset_size`` >= both counts; one subset has no spread.
    """
    if subset_size >= n_generated and subset_size >= n_reference:
        return (f"the KID subset size ({subset_size}) covers both sets ({n_generated} generated, {n_reference} "
                "reference): every subset is the same pair of sets, so the subsets do not vary (pass a smaller "
                "--kid-subset-size)")
    if subsets < 2:
        return f"KID is computed on {subsets} subset, which has no spread (pass --kid-subsets 2 or more)"
    return None


def spread_subset_size(n_generated: int, n_reference: int, default: int = 1000) -> int:
    """A subset size for a verb that chooses it: ``min(default, n_generated, n_reference)``, halved where that
    would take the whole of both sets (:func:`spread_problem`).

    Half of the sets: KID's estimate is unbiased at any subset size, so the size only trades the spread of one
    subset's value (smaller subsets, more spread) against how freely subsets differ; at half of m images there
    are C(m, m/2) different subsets (the most of any size) and two of them share half their images on average,
    so the spread over subsets is a real one while each subset stays as large as it can. Where one set is larger
    than the size, its subsets already differ and the size is kept (the numbers of such rows do not change).
    """
    size = min(default, n_generated, n_reference)
    if size >= n_generated and size >= n_reference:
        size = max(2, size // 2)
    return size


def kernel_inception_distance(
    generated: np.ndarray,
    reference: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    on_subset: Callable[[int], None] | None = None,
) -> tuple[ScoreSpread, np.ndarray]:
    """KID mean and std over ``subsets`` seeded subsets; also returns the per-subset values [subsets].

    Raises ConfigError when either set has fewer than ``subset_size`` samples. ``on_subset(1)``
    (optional) is called after each subset.
    """
    generated = np.asarray(generated)
    reference = np.asarray(reference)
    if generated.ndim != 2 or reference.ndim != 2 or generated.shape[1] != reference.shape[1]:
        raise InputError(f"KID needs feature arrays of equal width, got {generated.shape} and {reference.shape}")
    smallest = min(len(generated), len(reference))
    if subset_size < 2 or smallest < subset_size:
        raise ConfigError(
            f"KID subset size (--kid-subset-size={subset_size}) must be between 2 and the smaller sample count "
            f"({len(generated)} generated, {len(reference)} reference)"
        )
    if subsets < 1:
        raise ConfigError(f"--kid-subsets must be at least 1, got {subsets}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        gi = rng.choice(len(generated), subset_size, replace=False)
        ri = rng.choice(len(reference), subset_size, replace=False)
        values[s] = polynomial_mmd2(generated[gi], reference[ri])
        if on_subset is not None:
            on_subset(1)
    return ScoreSpread(float(values.mean()), float(values.std())), values
