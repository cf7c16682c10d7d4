"""Precision / recall / density / coverage: brute force, closed-form expectations and known behaviours."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from genbench.errors import ConfigError, InputError
from genbench.metrics.prdc import density_coverage, prdc, precision_recall

D, MODES = 32, 10


def mixture(n: int, rng: np.random.Generator, *, scale: float = 1.0, modes: int = MODES) -> np.ndarray:
    means = np.random.default_rng(123).standard_normal((MODES, D)) * 4.0  # fixed component means
    return means[rng.integers(modes, size=n)] + scale * rng.standard_normal((n, D))


@pytest.fixture(scope="module")
def real():
    return mixture(1500, np.random.default_rng(1))


def brute_force(real: np.ndarray, fake: np.ndarray, ks: list[int]) -> dict[int, dict]:
    """The four definitions written out on full distance matrices, for each k."""
    rr, ff, rf = np.sort(cdist(real, real), axis=1), np.sort(cdist(fake, fake), axis=1), cdist(real, fake)
    out = {}
    for k in ks:
        r_rad, f_rad = rr[:, k], ff[:, k]  # column 0 is the point itself
        in_real_ball = rf < r_rad[:, None]  # [N, M]: fake j inside real i's ball
        out[k] = {
            "precision": in_real_ball.any(axis=0).mean(),
            "recall": (rf < f_rad[None, :]).any(axis=1).mean(),
            "density": in_real_ball.sum() / (k * fake.shape[0]),
            "coverage": in_real_ball.any(axis=1).mean(),
        }
    return out


def test_matches_brute_force_definitions(real):
    real = real[:800]
    fake = mixture(500, np.random.default_rng(2), scale=1.1)
    want = brute_force(real, fake, [1, 3, 5])
    for k in (1, 3, 5):
        got = prdc(real, fake, precision_recall_k=k, density_coverage_k=k)
        for name, value in want[k].items():
            assert getattr(got, name) == pytest.approx(value, rel=1e-12), (name, k)
    pr = precision_recall(real, fake, k=3)
    dc = density_coverage(real, fake, k=5)
    assert (pr.precision, pr.recall) == pytest.approx((want[3]["precision"], want[3]["recall"]), rel=1e-12)
    assert (dc.density, dc.coverage) == pytest.approx((want[5]["density"], want[5]["coverage"]), rel=1e-12)
    both = prdc(real, fake)  # defaults: k=3 for P/R, k=5 for D/C, one sweep
    assert (both.precision, both.recall, both.density, both.coverage) == pytest.approx(
        (pr.precision, pr.recall, dc.density, dc.coverage), rel=1e-12)
    assert (both.precision_recall_k, both.density_coverage_k) == (3, 5)


def test_iid_matches_closed_form_expectations(real):
    # For i.i.d. real/fake: E[density] = 1 and E[coverage] = 1 - prod_{t=1..k} (N - t) / (N + M - t)
    # (coverage fails for real_i only if its k nearest points in the pooled sample are all real).
    fake = mixture(1500, np.random.default_rng(3))
    k, n, m = 5, len(real), len(fake)
    dc = density_coverage(real, fake, k=k)
    expected_cov = 1 - np.prod([(n - t) / (n + m - t) for t in range(1, k + 1)])
    assert dc.coverage == pytest.approx(expected_cov, abs=0.02)
    assert dc.density == pytest.approx(1.0, abs=0.1)


def test_dropped_modes_lower_recall_and_coverage(real):
    full = prdc(real, mixture(1500, np.random.default_rng(4)))
    half = prdc(real, mixture(1500, np.random.default_rng(4), modes=5))
    assert half.recall < full.recall - 0.25
    assert half.coverage < full.coverage - 0.3
    assert half.precision == pytest.approx(full.precision, abs=0.1)  # fidelity unchanged


def test_collapse_raises_precision_and_lowers_recall(real):
    full = prdc(real, mixture(1500, np.random.default_rng(5)))
    collapsed = prdc(real, mixture(1500, np.random.default_rng(5), scale=0.5))
    assert collapsed.precision > full.precision + 0.15
    assert collapsed.precision > 0.95
    assert collapsed.recall < 0.1 < full.recall
    assert collapsed.density > 5.0  # density is unbounded above under collapse


def test_copies_of_the_reference_score_perfectly(real):
    got = prdc(real, real[::-1].copy())
    assert (got.precision, got.recall, got.coverage) == (1.0, 1.0, 1.0)


def test_copies_of_the_reference_have_density_exactly_one(real):
    # With fake = a permutation of real and no tied distances between distinct points, real_i's ball holds
    # itself and its k - 1 nearest neighbours (the k-th lies on the boundary, and membership is strict):
    # k of the M = N fake samples per ball, so density = N k / (k M) = 1 exactly, on every machine.
    perm = np.random.default_rng(9).permutation(len(real))
    for chunk in (None, 1, 64):
        got = prdc(real, real[perm], chunk_size=chunk)
        assert (got.precision, got.recall, got.density, got.coverage) == (1.0, 1.0, 1.0, 1.0)


def _lattice(rng: np.random.Generator, n: int, offset: float = 1e6 + 0.5) -> np.ndarray:
    """Small-integer points in 4 dims plus an offset: exact duplicates, many exactly tied distances, and
    every coordinate difference and squared distance exact in float64 in any summation order."""
    return rng.integers(-2, 3, size=(n, 4)).astype(np.float64) + offset


def test_exact_duplicates_and_ties_match_float64_brute_force_exactly():
    """The "train copies" situation: samples that are exact copies of reference points. Distances are exact
    (0 for copies, bit-identical radii and distances for copies of a ball's k-th neighbour), so all four
    numbers equal the brute force with scipy's float64 cdist exactly, for any order and chunking."""
    rng = np.random.default_rng(10)
    real = _lattice(rng, 400)
    fake = np.concatenate([real[rng.choice(400, 250, replace=False)], _lattice(rng, 150)])
    assert len(np.unique(real, axis=0)) < len(real)  # duplicated reference points: some radii are 0
    want = brute_force(real, fake, [1, 3, 5])
    rf = cdist(real, fake)
    assert (rf == np.sort(cdist(real, real), axis=1)[:, [5]]).sum() > 100  # samples exactly on a ball boundary
    p_real, p_fake = rng.permutation(len(real)), rng.permutation(len(fake))
    for k in (1, 3, 5):
        for r, f, chunk in ((real, fake, None), (real[p_real], fake[p_fake], 7), (real[::-1], fake, 1)):
            got = prdc(r, f, precision_recall_k=k, density_coverage_k=k, chunk_size=chunk)
            for name, value in want[k].items():
                assert getattr(got, name) == value, (name, k, chunk)
    # density/coverage with k=5 and precision/recall with k=3 in one sweep, through a small memory budget
    got = prdc(real, fake, max_memory_bytes=40_000)
    assert (got.precision, got.recall, got.density, got.coverage) == (
        want[3]["precision"], want[3]["recall"], want[5]["density"], want[5]["coverage"])


def test_chunking_and_memory_budget_do_not_change_results(real):
    real = real[:600]
    fake = mixture(400, np.random.default_rng(6))
    base = prdc(real, fake)
    assert prdc(real, fake, chunk_size=7) == base
    assert prdc(real, fake, max_memory_bytes=2_000_000) == base
    assert prdc(real.astype(np.float32), fake.astype(np.float32)) == prdc(
        real.astype(np.float32).astype(np.float64), fake.astype(np.float32).astype(np.float64))


def test_too_few_samples_name_k_and_sizes(real):
    with pytest.raises(ConfigError, match=r"k=3.*at least 4.*3 real_features and 10 fake_features"):
        precision_recall(real[:3], real[:10], k=3)
    with pytest.raises(ConfigError, match=r"k=3.*10 real_features and 2 fake_features"):
        precision_recall(real[:10], real[:2], k=3)
    with pytest.raises(ConfigError, match=r"k=5.*at least 6.*5 real_features"):
        density_coverage(real[:5], real[:100], k=5)
    density_coverage(real[:6], real[:1], k=5)  # density/coverage need no fake neighbours
    with pytest.raises(ConfigError, match="positive integer"):
        prdc(real, real, precision_recall_k=0)


def test_malformed_features_raise_input_error(real):
    with pytest.raises(InputError, match="fake_features"):
        prdc(real, real[:, :5])
    with pytest.raises(InputError, match="real_features"):
        prdc(real[0], real)


def test_result_dicts():
    pr = precision_recall(mixture(50, np.random.default_rng(7)), mixture(50, np.random.default_rng(8)))
    d = pr.to_dict()
    assert set(d) == {"precision", "recall", "k", "n_real", "n_fake", "f_score"}
    assert d["f_score"] == pytest.approx(2 * pr.precision * pr.recall / (pr.precision + pr.recall))
