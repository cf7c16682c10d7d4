"""The torch Frechet distance (the streaming evaluator's path when its sums are on a GPU) against the numpy one
and against scipy's matrix square root, on the CPU here; on CUDA where a GPU is present."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from genbench.errors import InputError
from genbench.metrics.fid import frechet_distance
from genbench.metrics.fid_torch import TorchFrechetReference, moments
from genbench.stats.feature_stats import FeatureStats
from tests.unit.test_fid import nuclear_norm_fd

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _scipy_fd(mu1, s1, mu2, s2) -> float:
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_ref, n_gen, d", [(400, 300, 32), (20, 300, 32), (400, 10, 32)])
def test_torch_fd_equals_numpy_and_scipy(device, n_ref, n_gen, d):
    rng = np.random.default_rng(n_ref + n_gen)
    ref_features, gen_features = rng.normal(size=(n_ref, d)), rng.normal(size=(n_gen, d)) * 1.3 + 0.2
    ref, gen = FeatureStats.from_features(ref_features), FeatureStats.from_features(gen_features)
    expected = frechet_distance(gen.mean(), gen.cov(), ref.mean(), ref.cov())
    prepared = TorchFrechetReference(torch.from_numpy(ref.mean()).to(device), torch.from_numpy(ref.cov()).to(device))
    mu, sigma = moments(gen.n, torch.from_numpy(gen.total).to(device), torch.from_numpy(gen.outer).to(device))
    got = prepared.distance(mu, sigma)
    assert got == pytest.approx(expected, rel=1e-9)
    if min(n_ref, n_gen) > d:  # both covariances full rank: scipy's sqrtm is accurate there
        assert got == pytest.approx(_scipy_fd(gen.mean(), gen.cov(), ref.mean(), ref.cov()), rel=1e-7)
    else:  # a singular covariance: the nuclear-norm identity is exact whatever the ranks
        assert got == pytest.approx(nuclear_norm_fd(gen_features, ref_features), rel=1e-9)


def test_torch_fd_refuses_broken_statistics():
    with pytest.raises(InputError, match="NaN or Inf"):
        TorchFrechetReference(torch.tensor([0.0, float("nan")]), torch.eye(2))
    with pytest.raises(InputError, match="at least 2"):
        moments(1, torch.zeros(2), torch.zeros(2, 2))
    bad = TorchFrechetReference(torch.zeros(2), torch.eye(2, dtype=torch.float64))
    with pytest.raises(InputError, match="below zero"):
        bad.distance(torch.zeros(2, dtype=torch.float64), -4 * torch.eye(2, dtype=torch.float64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_evaluator_on_cuda_equals_score():
    from genbench.evaluate import score
    from genbench.evaluator import Evaluator
    from tests.conftest import make_images

    ref, gen = make_images(60, seed=0), make_images(50, seed=1, shift=0.2)
    ev = Evaluator(ref, metrics=["fd_tiny"], extractor="test-tiny", device="cuda")
    ev.update(torch.from_numpy(gen).cuda())
    streamed = ev.compute().value("fd_tiny")
    one_shot = score(gen, ref, ["fd_tiny"]).value("fd_tiny")  # on the CPU
    assert streamed == pytest.approx(one_shot, rel=1e-6)
