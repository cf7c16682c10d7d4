"""Frechet distance against closed forms and independent computations."""
import numpy as np
import pytest
import scipy.linalg

from genbench.errors import InputError
from genbench.metrics.fid import frechet_distance, trace_sqrt_product


def _random_spd(rng, d, scale=1.0):
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    return scale * (a @ a.T + 0.1 * np.eye(d))


def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(0)
    sigma = _random_spd(rng, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-10, abs=1e-10)


def test_identical_inputs_give_zero():
    rng = np.random.default_rng(1)
    sigma = _random_spd(rng, 32)
    mu = rng.standard_normal(32)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-10


def test_diagonal_covariances_closed_form():
    # For diagonal covariances tr((S1 S2)^1/2) = sum sqrt(a_i b_i), so FD = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 3, 20), rng.uniform(0.1, 3, 20)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_matches_scipy_sqrtm_on_well_conditioned_statistics():
    rng = np.random.default_rng(3)
    d = 64
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d, 2.0)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-12)


def nuclear_norm_fd(x: np.ndarray, y: np.ndarray) -> float:
    """FD of the features x [n, d] and y [m, d] by the nuclear-norm identity, exact whatever the ranks.

    With centred X, Y, S1 = X^T X/(n-1) and S2 = Y^T Y/(m-1); the nonzero eigenvalues of S1 S2 are the squared
    singular values of X Y^T / sqrt((n-1)(m-1)), so tr((S1 S2)^1/2) = ||X Y^T||_* / sqrt((n-1)(m-1)).
    """
    n, m = len(x), len(y)
    xc, yc = x - x.mean(0), y - y.mean(0)
    nuclear = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    traces = (xc**2).sum() / (n - 1) + (yc**2).sum() / (m - 1)
    return float(np.sum((x.mean(0) - y.mean(0)) ** 2) + traces - 2 * nuclear)


def test_rank_deficient_covariances_match_nuclear_norm_identity():
    # With fewer samples than dimensions, S1 and S2 are singular: the identity of nuclear_norm_fd is exact there.
    rng = np.random.default_rng(4)
    d, n, m = 256, 40, 60
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / 8
    y = rng.standard_normal((m, d)) * 1.3 + 0.2
    xc, yc = x - x.mean(0), y - y.mean(0)
    s1, s2 = xc.T @ xc / (n - 1), yc.T @ yc / (m - 1)
    nuclear = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    assert trace_sqrt_product(s1, s2) == pytest.approx(nuclear, rel=1e-9)
    fd = frechet_distance(x.mean(0), s1, y.mean(0), s2)
    assert np.isfinite(fd) and fd == pytest.approx(nuclear_norm_fd(x, y), rel=1e-9)


def test_shape_mismatch_and_nan_are_refused():
    with pytest.raises(InputError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    bad = np.eye(3)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(np.zeros(3), bad, np.zeros(3), np.eye(3))


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_covariance_symmetric_only_up_to_rounding_is_read_as_its_symmetric_part(order):
    # A saved covariance can differ from its transpose in the last bits; the distance is that of (S + S^T) / 2,
    # whichever triangle or memory order the factorisation reads.
    rng = np.random.default_rng(4)
    d = 48
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d, 1.5)
    skew = rng.standard_normal((d, d)) * 1e-4
    a1, a2 = np.asarray(s1 + skew - skew.T, order=order), np.asarray(s2 + skew.T - skew, order=order)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, a1, mu2, a2) == pytest.approx(expected, rel=1e-9)
