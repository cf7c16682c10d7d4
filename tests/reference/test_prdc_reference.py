"""Cross-check against the ``prdc`` package (clovaai/generative-evaluation-prdc, Naeem et al. 2020).

``prdc.compute_prdc(real_features, fake_features, nearest_k)`` uses one k for all four numbers,
strict ``<`` ball membership and the (k+1)-th smallest row entry of the distance matrix (the point
itself being the first). genbench's ``prdc(..., precision_recall_k=k, density_coverage_k=k)`` follows
the same definitions. The one difference: prdc's distances come from sklearn in the input dtype
(float32 in practice), genbench's are float64, so on float32 features a pair that ties to within
float32 rounding may fall on the other side of a ball boundary. On float64 features the results are
identical; on float32 features they may differ by at most a sample or two (none seen here).
"""
from __future__ import annotations

import numpy as np
import pytest

prdc_package = pytest.importorskip("prdc")

from genbench.metrics.prdc import prdc

pytestmark = pytest.mark.reference

D = 48


def _features(rng: np.random.Generator, n: int, modes: int, scale: float, shift: float = 0.0) -> np.ndarray:
    means = np.random.default_rng(99).standard_normal((8, D)) * 3.0
    return means[rng.integers(modes, size=n)] + scale * rng.standard_normal((n, D)) + shift


CASES = {
    "iid": {"modes": 8, "scale": 1.0},
    "shifted-wide": {"modes": 8, "scale": 1.3, "shift": 0.2},
    "collapsed": {"modes": 8, "scale": 0.5},
    "dropped-modes": {"modes": 3, "scale": 1.0},
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("k", [3, 5])
def test_equals_prdc_package_float64(case, k):
    rng = np.random.default_rng(k)
    real = _features(rng, 900, 8, 1.0)
    fake = _features(rng, 700, **CASES[case])
    want = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = prdc(real, fake, precision_recall_k=k, density_coverage_k=k)
    assert got.precision == want["precision"]
    assert got.recall == want["recall"]
    assert got.coverage == want["coverage"]
    assert got.density == pytest.approx(want["density"], rel=1e-12)  # summation order only


@pytest.mark.parametrize("k", [3, 5])
def test_equals_prdc_package_float32(k):
    rng = np.random.default_rng(10 + k)
    real = _features(rng, 1000, 8, 1.0).astype(np.float32)
    fake = _features(rng, 800, 8, 1.1).astype(np.float32)
    want = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = prdc(real, fake, precision_recall_k=k, density_coverage_k=k)
    n, m = len(real), len(fake)
    assert abs(got.precision - want["precision"]) <= 2 / m
    assert abs(got.recall - want["recall"]) <= 2 / n
    assert abs(got.coverage - want["coverage"]) <= 2 / n
    assert abs(got.density - want["density"]) <= 2 / (k * m)
