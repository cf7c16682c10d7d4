"""FD-infinity and IS-infinity against closed forms: Gaussian features with a known population FD,
one-hot predictions over K equally likely classes (population IS = K)."""
from __future__ import annotations

import numpy as np
import pytest

from genbench.errors import ConfigError
from genbench.metrics.infinity import fd_infinity, fit_inverse_n, is_infinity, sample_sizes


def test_sample_sizes_follow_the_paper():
    sizes = sample_sizes(50_000)
    assert len(sizes) == 15 and sizes[0] == 5000 and sizes[-1] == 50_000
    assert np.allclose(np.diff(sizes), 45_000 / 14, atol=1)
    small = sample_sizes(100)  # dgm-eval's rule: min(5000, max(N // 10, 2))
    assert small[0] == 10 and small[-1] == 100 and len(small) == 15
    with pytest.raises(ConfigError, match="min_n"):
        sample_sizes(100, min_n=100)
    with pytest.raises(ConfigError, match="at least 2"):
        sample_sizes(100, points=1)


def test_ols_fit_recovers_an_exact_line_and_matches_polyfit():
    sizes = np.array([100, 200, 400, 800, 1600])
    values = 3.0 + 250.0 / sizes
    fit = fit_inverse_n(sizes, values)
    assert fit.intercept == pytest.approx(3.0, abs=1e-10) and fit.slope == pytest.approx(250.0, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0)
    noisy = values + np.random.default_rng(0).normal(0, 0.05, len(sizes))
    slope, intercept = np.polyfit(1.0 / sizes, noisy, 1)
    fit = fit_inverse_n(sizes, noisy)
    assert fit.intercept == pytest.approx(intercept, rel=1e-9) and fit.slope == pytest.approx(slope, rel=1e-9)
    entry = fit.to_dict()
    assert entry["value"] == fit.intercept and entry["points"][0] == [100, pytest.approx(noisy[0])]


def test_fd_infinity_removes_the_finite_sample_bias_of_gaussian_features():
    d, n, repeats = 32, 2000, 20
    rng = np.random.default_rng(0)
    var_g = rng.uniform(0.5, 2.0, d)
    var_r = 1.3 * var_g
    # Population FD between N(0, diag(var_g)) and N(0, diag(var_r)): sum (sqrt(a) - sqrt(b))^2.
    truth = float(((np.sqrt(var_g) - np.sqrt(var_r)) ** 2).sum())
    finite, extrapolated = [], []
    for r in range(repeats):
        x = np.random.default_rng(100 + r).normal(size=(n, d)) * np.sqrt(var_g)
        fit = fd_infinity(x, np.zeros(d), np.diag(var_r), seed=r)
        assert fit.sizes[0] == 200 and fit.sizes[-1] == n and fit.slope > 0
        finite.append(fit.values[-1])  # FD on all N samples
        extrapolated.append(fit.intercept)
    finite_err = np.mean(finite) - truth
    inf_err = np.mean(extrapolated) - truth
    se = np.std(extrapolated) / np.sqrt(repeats)
    assert finite_err > 0.15  # FD_N is biased upwards by ~0.2 here (about 18 standard errors)
    assert abs(inf_err) < max(3 * se, 0.03)  # FD_inf is unbiased to within sampling error


def test_is_infinity_of_one_hot_uniform_predictions_approaches_the_class_count():
    classes, n = 50, 2000
    finite, extrapolated = [], []
    for r in range(8):
        labels = np.random.default_rng(r).integers(0, classes, n)
        logits = 60.0 * np.eye(classes)[labels]  # softmax is one-hot to ~1e-26
        fit = is_infinity(logits, seed=r)
        finite.append(fit.values[-1])
        extrapolated.append(fit.intercept)
    # exp(plug-in entropy) of N uniform labels is about K exp(-(K-1)/(2N)) = 49.39 at N = 2000.
    assert np.mean(finite) == pytest.approx(classes * np.exp(-(classes - 1) / (2 * n)), rel=3e-3)
    assert np.mean(extrapolated) == pytest.approx(classes, rel=5e-3)


def test_same_seed_same_fit_and_other_seed_other_subsets():
    x = np.random.default_rng(0).normal(size=(300, 4))
    a = fd_infinity(x, np.zeros(4), np.eye(4), seed=1)
    assert a == fd_infinity(x, np.zeros(4), np.eye(4), seed=1)
    assert a.values[:-1] != fd_infinity(x, np.zeros(4), np.eye(4), seed=2).values[:-1]
