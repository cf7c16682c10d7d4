"""Cross-check against the ``prdc`` package (clovaai/generative-evaluation-prdc, Naeem et al. 2020).

``prdc.compute_prdc(real_features, fake_features, nearest_k)`` uses one k for all four numbers,
strict ``<`` ball membership and the (k+1)-th smallest row entry of the distance matrix (the point
itself being the first). genbench's ``prdc(..., precision_recall_k=k, density_coverage_k=k)`` follows
the same definitions. Both compute distances with rounding: prdc through sklearn's
``|x|^2 + |y|^2 - 2 x.y`` expansion (BLAS, so CPU-dependent) in the input dtype, genbench in float64
with every undecided comparison recomputed exactly. So the two can only disagree on a comparison
``d(real_i, fake_j) < radius`` that ties to within rounding. The tests count those near-ties with a
float64 brute force (scipy's cdist) and allow exactly that many samples of difference, so they pass
on any CPU; the seeded data here has none, even within float32 rounding, so the results must agree.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

prdc_package = pytest.importorskip("prdc")

from genbench.metrics.prdc import prdc  # noqa: E402  (after the skip)

pytestmark = pytest.mark.reference

D = 48


def _features(rng: np.random.Generator, n: int, modes: int, scale: float, shift: float = 0.0) -> np.ndarray:
    means = np.random.default_rng(99).standard_normal((8, D)) * 3.0
    return means[rng.integers(modes, size=n)] + scale * rng.standard_normal((n, D)) + shift


def _undecided(real: np.ndarray, fake: np.ndarray, k: int, rel_sq: float, rel: float = 0.0) -> dict[str, int]:
    """Per metric, how many counted units (samples, or ball-sample pairs for density) involve a ball
    comparison ``d < r`` that rounding could decide either way: ``|d^2 - r^2| <= 2 rel_sq scale^2 + 2 rel d^2``.

    ``rel_sq * scale^2`` (scale: the largest feature norm) bounds the error of an expansion
    ``|x|^2 + |y|^2 - 2 x.y`` (a small multiple of eps * scale^2), ``rel * d`` that of rounding a distance
    to float32. A radius is an order statistic, so it moves no more than the distances do. Outside the
    band both implementations decide every comparison alike; only units with a comparison inside it
    may be counted differently.
    """
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    scale = max(np.linalg.norm(real64, axis=1).max(), np.linalg.norm(fake64, axis=1).max())
    real_radius = np.sort(cdist(real64, real64), axis=1)[:, k]
    fake_radius = np.sort(cdist(fake64, fake64), axis=1)[:, k]
    rf = cdist(real64, fake64)
    band = 2 * rel_sq * scale**2 + 2 * rel * rf**2
    near_real = np.abs(rf**2 - real_radius[:, None] ** 2) <= band  # fake j on real i's ball boundary
    near_fake = np.abs(rf**2 - fake_radius[None, :] ** 2) <= band  # real i on fake j's ball boundary
    return {
        "precision": int(near_real.any(axis=0).sum()),  # fake samples
        "recall": int(near_fake.any(axis=1).sum()),  # real samples
        "density": int(near_real.sum()),  # (real ball, fake sample) pairs
        "coverage": int(near_real.any(axis=1).sum()),  # real samples
    }


def _assert_agree(got, want: dict, undecided: dict[str, int], n: int, m: int, k: int) -> None:
    units = {"precision": m, "recall": n, "density": k * m, "coverage": n}
    for name, unit in units.items():
        allowed = undecided[name] / unit + 1e-12  # 1e-12: summation order of density's mean
        assert abs(getattr(got, name) - float(want[name])) <= allowed, (name, undecided[name])


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
    undecided = _undecided(real, fake, k, rel_sq=1e-9)
    assert undecided == {"precision": 0, "recall": 0, "density": 0, "coverage": 0}  # nothing ties: equal results
    want = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = prdc(real, fake, precision_recall_k=k, density_coverage_k=k)
    _assert_agree(got, want, undecided, len(real), len(fake), k)
    assert (got.precision, got.recall, got.coverage) == (want["precision"], want["recall"], want["coverage"])


@pytest.mark.parametrize("k", [3, 5])
def test_equals_prdc_package_float32(k):
    rng = np.random.default_rng(10 + k)
    real = _features(rng, 1000, 8, 1.0).astype(np.float32)
    fake = _features(rng, 800, 8, 1.1).astype(np.float32)
    want = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = prdc(real, fake, precision_recall_k=k, density_coverage_k=k)
    # sklearn computes float32 inputs' distances in float64 blocks and rounds them to float32 (relative error
    # <= 2^-24 each for d and r, then sqrt): a band of rel = 1e-6 covers every comparison it can decide otherwise.
    undecided = _undecided(real, fake, k, rel_sq=1e-12, rel=1e-6)
    _assert_agree(got, want, undecided, len(real), len(fake), k)


def test_agrees_on_exact_copies_of_the_reference():
    # A copy's distance is exactly 0 in genbench and a rounding-sized value in sklearn (its expansion, clamped at
    # 0), far below every radius either way: precision, recall and coverage are 1 in both. Density counts copies
    # lying exactly on ball boundaries (a copy of real_i's k-th neighbour): genbench decides them exactly (outside,
    # density exactly 1), sklearn by rounding, so its density may exceed 1 by up to one ball per real point.
    real = _features(np.random.default_rng(20), 600, 8, 1.0)
    fake = real[np.random.default_rng(21).permutation(600)]
    want = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    got = prdc(real, fake, precision_recall_k=5, density_coverage_k=5)
    assert (got.precision, got.recall, got.coverage) == (1.0, 1.0, 1.0) == (
        want["precision"], want["recall"], want["coverage"])
    assert got.density == 1.0
    assert abs(want["density"] - 1.0) <= 1 / 5  # each fake copy may or may not count in its boundary balls
