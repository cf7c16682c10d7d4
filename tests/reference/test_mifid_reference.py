"""MiFID against torchmetrics' ``MemorizationInformedFrechetInceptionDistance`` on the same features.

The features go in through an identity "feature extractor" (torchmetrics accepts any ``nn.Module`` whose
forward returns [N, d]); torchmetrics then works in float64: ``torch.cov``, an ``eigvals`` FID and the
cosine distance. genbench's FD route differs (symmetric eigensolver, see genbench.metrics.fid), and both are
deterministic float64 on well-conditioned covariances (n = 600 >> d = 16), hence 1e-9 relative.

torchmetrics averages the minimum cosine distance over its *real* set (``memorization_of="reference"``);
the competition code, genbench's default, over the generated set. The second is checked against a plain
brute force written here from the competition's formula.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mifid_module = pytest.importorskip("torchmetrics.image.mifid")

from genbench.metrics.fid import frechet_distance  # noqa: E402
from genbench.metrics.mifid import memorization_distance, mifid_from  # noqa: E402

pytestmark = pytest.mark.reference

RTOL = 1e-9
D = 16


def _torchmetrics_mifid(real: np.ndarray, fake: np.ndarray, eps: float = 0.1) -> float:
    metric = mifid_module.MemorizationInformedFrechetInceptionDistance(feature=torch.nn.Identity(),
                                                                       cosine_distance_eps=eps)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    return float(metric.compute())


def _ours(real: np.ndarray, fake: np.ndarray, eps: float = 0.1, memorization_of: str = "reference") -> float:
    fd = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    return mifid_from(fd, memorization_distance(fake, real, memorization_of=memorization_of), eps)


def _sets(seed: int, copies: float = 0.0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((600, D)) + 0.5
    fake = 1.1 * rng.standard_normal((500, D)) + 0.6
    n_copy = int(copies * len(fake))
    fake[:n_copy] = real[rng.choice(len(real), n_copy, replace=False)] + noise * rng.standard_normal((n_copy, D))
    return real, fake


@pytest.mark.parametrize("copies, noise, eps", [(0.0, 0.0, 0.1), (1.0, 0.001, 0.1), (0.5, 0.01, 0.5)])
def test_matches_torchmetrics(copies: float, noise: float, eps: float) -> None:
    real, fake = _sets(0, copies, noise)
    want = _torchmetrics_mifid(real, fake, eps)
    assert _ours(real, fake, eps) == pytest.approx(want, rel=RTOL)


def test_the_penalty_engages_for_copies() -> None:
    real, fake = _sets(1, copies=1.0, noise=0.001)
    fd = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert _ours(real, fake, memorization_of="generated") > 1000 * fd  # d_mem ~ 1e-6: the FD is divided by it
    real, fake = _sets(2)
    fd = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert _ours(real, fake, memorization_of="generated") == pytest.approx(fd, rel=1e-12)  # no memorization: MiFID = FD


def test_generated_direction_matches_a_brute_force() -> None:
    real, fake = _sets(3, copies=0.3, noise=0.05)
    fake[7] = 0.0  # an all-zero row is dropped, as in the competition code
    a = fake[fake.sum(1) != 0]
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = real / np.linalg.norm(real, axis=1, keepdims=True)
    want = float(np.mean(np.min(1.0 - np.abs(a @ b.T), axis=1)))
    got = memorization_distance(fake, real, memorization_of="generated", max_memory_bytes=16 * 600 * 7)
    assert got == pytest.approx(want, rel=RTOL)
    assert memorization_distance(fake, real) == pytest.approx(got, rel=1e-13)  # block size does not matter
