"""TopP&R against the ``top-pr`` package (Kim et al. 2023) on the same features and seeds.

The package draws its bootstrap from numpy's global state: it seeds it with 42 itself when it projects
(D > 32), and the test seeds it before the call otherwise; genbench gets the same seed. Its distances for
the densities come back from sklearn rounded to float32, so densities agree to about 1e-7 relative (not
1e-9); bandwidths and bands to the same; precision and recall are ratios of counts and must be equal: the
seeded data keeps every density far (relative to 1e-7) from its threshold, so no CPU's rounding can flip a count.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

top_pr_package = pytest.importorskip("top_pr.top_pr")

from genbench.errors import ConfigError  # noqa: E402
from genbench.metrics.top_pr import top_pr  # noqa: E402

pytestmark = pytest.mark.reference


def _sets(seed: int, d: int, n_real: int = 400, n_fake: int = 360, shift: float = 0.2
          ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((4, d)) * 3
    real = centers[rng.integers(4, size=n_real)] + rng.standard_normal((n_real, d))
    fake = centers[rng.integers(3, size=n_fake)] + 1.3 * rng.standard_normal((n_fake, d)) + shift
    return real.astype(np.float32), fake.astype(np.float32)


def _package(real: np.ndarray, fake: np.ndarray, seed: int) -> dict:
    np.random.seed(seed)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return top_pr_package.compute_top_pr(real_features=real, fake_features=fake)


# 48 > 32: the package projects to 32 dimensions and seeds 42; its k = 160 needs more samples to say anything.
@pytest.mark.parametrize("d, seed, n, shift", [(8, 0, 400, 0.2), (8, 5, 400, 0.2), (48, 42, 1200, 1.0)])
def test_matches_the_package(d: int, seed: int, n: int, shift: float) -> None:
    real, fake = _sets(d, d, n, n, shift)
    want = _package(real, fake, seed)
    got = top_pr(real, fake, seed=seed)
    assert got.projected == (d > 32)
    assert got.precision == want["fidelity"]
    assert got.recall == want["diversity"]
    assert got.f1 == pytest.approx(want["Top_F1"], rel=1e-12)
    assert 0 < got.precision < 1 and 0 < got.recall < 1  # the data exercises both sides of each threshold


def test_seeds_and_block_size() -> None:
    real, fake = _sets(1, 8)
    a = top_pr(real, fake, seed=3)
    b = top_pr(real, fake, seed=3, max_memory_bytes=64 * 400 * 9)
    assert (a.precision, a.recall, a.significant_real) == (b.precision, b.recall, b.significant_real)
    assert a.bandwidth_real == pytest.approx(b.bandwidth_real, rel=1e-12)


def test_too_few_samples_name_the_minimum() -> None:
    real, fake = _sets(2, 8, n_real=41, n_fake=100)
    with pytest.raises(ConfigError, match="at least 42 reference samples"):
        top_pr(real, fake)
    with pytest.raises(ConfigError, match="3 dimensions"):
        top_pr(real[:, :3], fake[:, :3])
