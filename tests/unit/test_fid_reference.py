"""FrechetReference (one side prepared once) against frechet_distance and independent closed forms."""
import numpy as np
import pytest
import scipy.linalg

from genbench.errors import InputError
from genbench.metrics.fid import FrechetReference, frechet_distance


def _spd(rng, d, scale=1.0):
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    return scale * (a @ a.T + 0.1 * np.eye(d))


def test_equals_frechet_distance_and_sqrtm():
    rng = np.random.default_rng(0)
    d = 48
    s_ref, s_gen = _spd(rng, d), _spd(rng, d, 1.7)
    mu_ref, mu_gen = rng.standard_normal(d), rng.standard_normal(d)
    prepared = FrechetReference(mu_ref, s_ref)
    assert prepared.lower  # positive definite: the Cholesky (triangular) path
    sqrtm = np.trace(scipy.linalg.sqrtm(s_gen @ s_ref).real)
    closed = np.sum((mu_gen - mu_ref) ** 2) + np.trace(s_gen) + np.trace(s_ref) - 2 * sqrtm
    got = prepared.distance(mu_gen, s_gen)
    assert got == pytest.approx(closed, rel=1e-11)
    assert got == pytest.approx(frechet_distance(mu_gen, s_gen, mu_ref, s_ref), rel=1e-12)
    assert prepared.distance(mu_ref, s_ref) == pytest.approx(0.0, abs=1e-9 * np.trace(s_ref))


@pytest.mark.parametrize("singular_side", ["generated", "reference"])
def test_singular_sides_match_the_nuclear_norm(singular_side):
    """Few samples (n < d): tr((S1 S2)^1/2) = ||X Y^T||_* / sqrt((n-1)(m-1)) for centred samples X, Y."""
    rng = np.random.default_rng(1)
    d, n, m = 96, 20, 300
    few = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / 6
    many = rng.standard_normal((m, d)) * 1.2 + 0.3
    x, y = (few, many) if singular_side == "generated" else (many, few)
    xc, yc = x - x.mean(0), y - y.mean(0)
    s_gen, s_ref = xc.T @ xc / (len(x) - 1), yc.T @ yc / (len(y) - 1)
    nuclear = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((len(x) - 1) * (len(y) - 1))
    closed = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(s_gen) + np.trace(s_ref) - 2 * nuclear
    prepared = FrechetReference(y.mean(0), s_ref)
    assert prepared.lower == (singular_side == "generated")  # a singular reference takes the eigh factor
    assert prepared.distance(x.mean(0), s_gen) == pytest.approx(closed, rel=1e-9)


def test_bad_statistics():
    rng = np.random.default_rng(2)
    prepared = FrechetReference(np.zeros(8), _spd(rng, 8))
    with pytest.raises(InputError, match="shapes"):
        prepared.distance(np.zeros(7), _spd(rng, 7))
    bad = _spd(rng, 8)
    bad[0, 1] = np.nan
    with pytest.raises(InputError, match="NaN or Inf in sigma"):
        prepared.distance(np.zeros(8), bad)
    with pytest.raises(InputError, match="NaN or Inf in mu"):
        FrechetReference(np.full(8, np.inf), _spd(rng, 8))
