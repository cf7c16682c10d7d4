"""The Gaussian mixture fit GLO samples from (genbench/baselines/gmm.py), against closed forms and scipy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from genbench.baselines.gmm import fit_gmm, log_densities, sample_mixture


def _random_chols(k: int, d: int, rng: np.random.Generator) -> torch.Tensor:
    a = rng.normal(size=(k, d, d))
    covs = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    return torch.linalg.cholesky(torch.tensor(covs))


def test_log_densities_match_scipy():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(7, 3)))
    means = torch.tensor(rng.normal(size=(2, 3)))
    chols = _random_chols(2, 3, rng)
    got = log_densities(x, means, chols).numpy()
    for k in range(2):
        cov = (chols[k] @ chols[k].T).numpy()
        np.testing.assert_allclose(got[:, k], multivariate_normal(means[k].numpy(), cov).logpdf(x.numpy()), rtol=1e-10)


def test_one_component_is_the_mean_and_maximum_likelihood_covariance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4)) + 3.0
    fit = fit_gmm(torch.tensor(x), k=1, seed=0, ridge=1e-6)
    np.testing.assert_allclose(fit.weights.numpy(), [1.0])
    np.testing.assert_allclose(fit.means[0].numpy(), x.mean(0), rtol=1e-10)
    cov = (fit.chols[0] @ fit.chols[0].T).numpy()
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, bias=True) + 1e-6 * np.eye(4), rtol=1e-9)
    expected = multivariate_normal(x.mean(0), np.cov(x, rowvar=False, bias=True) + 1e-6 * np.eye(4)).logpdf(x).mean()
    assert fit.log_likelihood == pytest.approx(expected, rel=1e-9)


def test_two_separated_clusters_are_recovered():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 2)) * 0.5 + [-6.0, 0.0]
    b = rng.normal(size=(700, 2)) * [1.0, 0.3] + [6.0, 2.0]
    fit = fit_gmm(torch.tensor(np.concatenate([a, b])), k=2, seed=3)
    order = torch.argsort(fit.means[:, 0])
    np.testing.assert_allclose(fit.weights[order].numpy(), [0.3, 0.7], atol=0.01)
    np.testing.assert_allclose(fit.means[order].numpy(), [a.mean(0), b.mean(0)], atol=0.05)
    cov_b = (fit.chols[order[1]] @ fit.chols[order[1]].T).numpy()
    np.testing.assert_allclose(cov_b, np.cov(b, rowvar=False, bias=True), atol=0.02)


def test_em_never_lowers_the_likelihood():
    rng = np.random.default_rng(4)
    x = torch.tensor(np.concatenate([rng.normal(size=(200, 3)) + c for c in ([0, 0, 0], [2, 1, 0], [0, 3, 1])]))
    trace = [fit_gmm(x, k=3, seed=5, max_iter=i, tol=0.0).log_likelihood for i in range(1, 15)]
    assert all(later >= earlier - 1e-9 for earlier, later in zip(trace, trace[1:]))
    assert trace[-1] > trace[0]


def test_fit_is_seeded():
    x = torch.tensor(np.random.default_rng(6).normal(size=(300, 2)))
    one, two = fit_gmm(x, 4, seed=7), fit_gmm(x, 4, seed=7)
    torch.testing.assert_close(one.means, two.means, rtol=0, atol=0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="N >= k"):
        fit_gmm(torch.zeros(3, 2), k=4, seed=0)
    with pytest.raises(ValueError, match="x \\[N, d\\]"):
        fit_gmm(torch.zeros(10), k=1, seed=0)


def test_sampling_picks_components_by_weight_and_moves_by_the_cholesky_factor():
    weights = torch.tensor([0.25, 0.75], dtype=torch.float64)
    means = torch.tensor([[0.0, 0.0], [10.0, -10.0]], dtype=torch.float64)
    chols = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [1.0, 0.5]]], dtype=torch.float64)
    u = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000
    eps = torch.tensor([[1.0, 2.0]], dtype=torch.float64).expand(1000, 2)
    z = sample_mixture(weights, means, chols, eps, u)
    assert torch.equal(z[:250], torch.tensor([[1.0, 2.0]], dtype=torch.float64).expand(250, 2))
    assert torch.equal(z[250:], torch.tensor([[12.0, -8.0]], dtype=torch.float64).expand(750, 2))
    g = torch.Generator().manual_seed(0)
    big = sample_mixture(weights, means, chols, torch.randn(200_000, 2, generator=g, dtype=torch.float64),
                         torch.rand(200_000, generator=g, dtype=torch.float64))
    expected_mean = (weights[:, None] * means).sum(0)
    torch.testing.assert_close(big.mean(0), expected_mean, atol=0.05, rtol=0)
