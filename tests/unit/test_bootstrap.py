"""genbench.metrics.bootstrap against bootstraps written plainly here (and scipy's), and its coverage where the
answer is known.

The plain versions draw the same seeded resamples as genbench (documented: ``default_rng(seed)``, one
``integers`` draw of [B, S] indices for the mean; one ``multinomial(N, 1/N)`` count vector per FD replicate) but
materialise each resample and compute every statistic from scratch (numpy moments, scipy's matrix square root).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, stats

from genbench.metrics.bootstrap import bootstrap_frechet_interval, bootstrap_mean_interval
from genbench.stats.feature_stats import FeatureStats


def plain_fd(x: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> float:
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    root = linalg.sqrtm(sigma @ sigma_r).real
    return float(((mu - mu_r) ** 2).sum() + np.trace(sigma + sigma_r - 2 * root))


def plain_frechet_interval(x: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray, replicates: int,
                           seed: int) -> tuple[float, float]:
    """Percentile interval of the resampled FDs, shifted so that their median sits on the FD of ``x`` itself
    (the rule bootstrap_frechet_interval documents)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    values = []
    for _ in range(replicates):
        counts = rng.multinomial(n, np.full(n, 1.0 / n))
        resample = x[np.repeat(np.arange(n), counts)]  # the copies, materialised
        values.append(plain_fd(resample, mu_r, sigma_r))
    point = plain_fd(x, mu_r, sigma_r)
    lo, median, hi = np.percentile(values, [2.5, 50, 97.5])
    return point + lo - median, point + hi - median


def test_mean_interval_equals_a_plain_percentile_bootstrap_on_the_same_resamples():
    values = np.random.default_rng(0).gamma(2.0, size=40)
    idx = np.random.default_rng(7).integers(0, 40, size=(500, 40))  # 500 resamples of the 40 values
    means = [sum(values[i] for i in row) / 40 for row in idx]
    plain = np.percentile(means, [2.5, 97.5])
    assert bootstrap_mean_interval(values, 500, seed=7) == pytest.approx(tuple(plain), rel=1e-12)


def test_mean_interval_agrees_with_scipy_percentile_bootstrap():
    values = np.random.default_rng(1).normal(3.0, 2.0, size=60)
    ours = bootstrap_mean_interval(values, 20000, seed=0)
    theirs = stats.bootstrap((values,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95,
                             random_state=np.random.default_rng(5)).confidence_interval
    width = theirs.high - theirs.low
    # Different resamples: the endpoints agree to Monte Carlo error (about 1% of the width at 20000 resamples).
    assert ours[0] == pytest.approx(theirs.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.03 * width)


@pytest.mark.parametrize("n, d", [(60, 3), (25, 5)])
def test_frechet_interval_equals_a_plain_bootstrap_with_materialised_resamples(n, d):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 0.5
    reference = FeatureStats.from_features(rng.normal(size=(400, d)))
    ours = bootstrap_frechet_interval(x, reference, 200, seed=3)
    plain = plain_frechet_interval(x, reference.mean(), reference.cov(), 200, seed=3)
    assert ours == pytest.approx(plain, rel=1e-7)
    assert ours[0] < plain_fd(x, reference.mean(), reference.cov()) < ours[1]


def test_mean_interval_covers_a_gaussian_mean_95_percent_of_the_time():
    """500 seeded data sets of 100 draws from N(2, 1): the true mean 2 lies in the interval of 95% of them.

    The percentile bootstrap of a mean is slightly narrow at n = 100 (its coverage is about 94%); the binomial
    standard error of 500 trials is 1.0 point, so the stated tolerance is 95% +- 3 points."""
    rng = np.random.default_rng(2024)
    hits = 0
    for trial in range(500):
        lo, hi = bootstrap_mean_interval(rng.normal(2.0, 1.0, size=100), 1000, seed=trial)
        hits += lo <= 2.0 <= hi
    assert hits / 500 == pytest.approx(0.95, abs=0.03)


def test_frechet_interval_covers_the_true_distance_95_percent_of_the_time():
    """Generated features N((1, 0), I_2) against the exact statistics of N(0, I_2): FD = 1 exactly.

    200 seeded data sets of n = 400 with 200 replicates each; the estimator's bias (about d/n = 0.005) is small
    next to its spread (about 2/sqrt(n) = 0.1). Stated tolerance: 95% +- 5 points (3.2 binomial standard errors
    of 200 trials; 200 replicates make the percentiles themselves noisy too)."""
    reference = FeatureStats.from_mean_cov(np.zeros(2), np.eye(2), n=10**9)
    rng = np.random.default_rng(11)
    hits = 0
    for trial in range(200):
        x = rng.normal(size=(400, 2)) + np.array([1.0, 0.0])
        lo, hi = bootstrap_frechet_interval(x, reference, 200, seed=trial)
        hits += lo <= 1.0 <= hi
    assert hits / 200 == pytest.approx(0.95, abs=0.05)
