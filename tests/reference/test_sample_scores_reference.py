"""Realism, rarity, alpha-precision / beta-recall and authenticity against independent brute forces.

No pip-installable reference exists for these (the authors publish repositories only: kynkaat/
improved-precision-and-recall-metric, hichoe95/Rarity-Score, ahmedmalaa/evaluating-generative-models,
layer6ai-labs/dgm-eval is not on PyPI). So each formula is written out here again, from the authors' code,
as a plain full-matrix computation with scipy's ``cdist`` in float64, and genbench's blockwise computation
must agree with it: 1e-9 relative (both deterministic float64; the seeded data has no distance tied to a
radius within rounding, and the copies included are exact, where genbench decides on exact distances).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from genbench.errors import ConfigError
from genbench.metrics.alpha_precision import alpha_precision_beta_recall, authenticity
from genbench.metrics.realism import sample_scores

pytestmark = pytest.mark.reference

RTOL = 1e-9
D = 12


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((5, D)) * 3
    real = means[rng.integers(5, size=300)] + rng.standard_normal((300, D))
    gen = means[rng.integers(4, size=250)] + 1.2 * rng.standard_normal((250, D))
    gen[:10] = real[20:30]  # exact copies: distance 0 to a reference point
    return real, gen


def _brute_realism_rarity(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    rr = cdist(real, real)
    radius = np.sort(rr, axis=1)[:, k]  # index 0 is the point itself
    rg = cdist(real, gen)  # [N, M]
    r2 = radius**2
    r2 = np.where(r2 > np.percentile(r2, 50), 0.0, r2)  # the authors' clamp_to_percentile=50
    realism = np.max(r2[:, None] / (rg**2 + 1e-5), axis=0)
    inside = rg < radius[:, None]
    rarity = np.where(inside, radius[:, None], np.inf).min(axis=0)
    rarity[np.isinf(rarity)] = 0.0
    return realism, rarity


@pytest.mark.parametrize("k", [3, 5])
def test_realism_and_rarity_match_the_formulas(k: int) -> None:
    real, gen = _data(0)
    want_realism, want_rarity = _brute_realism_rarity(real, gen, k)
    got = sample_scores(real, gen, realism_k=k, rarity_k=k)
    np.testing.assert_allclose(got.realism, want_realism, rtol=RTOL)
    np.testing.assert_allclose(got.rarity, want_rarity, rtol=RTOL)
    assert (got.rarity > 0).sum() not in (0, len(gen))  # both inside and outside samples are exercised
    small = sample_scores(real, gen, realism_k=k, rarity_k=k, chunk_size=7)
    np.testing.assert_array_equal(small.rarity, got.rarity)
    np.testing.assert_allclose(small.realism, got.realism, rtol=1e-12)


def test_too_few_reference_samples_name_the_option() -> None:
    real, gen = _data(1)
    with pytest.raises(ConfigError, match=r"--rarity-k.*at least 6"):
        sample_scores(real[:5], gen, rarity_k=5, realism_k=3)


def _brute_alpha_beta(real: np.ndarray, gen: np.ndarray) -> tuple[float, float]:
    alphas = np.linspace(0, 1, 30)
    c = real.mean(0)
    radii = np.quantile(np.linalg.norm(real - c, axis=1), alphas)
    g_c = np.linalg.norm(gen - c, axis=1)
    p_curve = np.array([np.mean(g_c <= r) for r in radii])
    rr = cdist(real, real)
    np.fill_diagonal(rr, np.inf)
    real_nn = rr.min(1)
    rg = cdist(real, gen)
    j = rg.argmin(1)
    d = rg[np.arange(len(real)), j]
    closest = np.linalg.norm(gen[j] - gen.mean(0), axis=1)
    g_radii = np.quantile(closest, alphas)
    c_curve = np.array([np.mean((d <= real_nn) & (closest <= b)) for b in g_radii])
    step = alphas[1] - alphas[0]
    return 1 - 2 * np.abs(p_curve - alphas).sum() * step, 1 - 2 * np.abs(c_curve - alphas).sum() * step


def test_alpha_precision_and_beta_recall_match_the_formulas() -> None:
    real, gen = _data(2)
    want_p, want_r = _brute_alpha_beta(real, gen)
    got = alpha_precision_beta_recall(real, gen)
    assert got.alpha_precision == pytest.approx(want_p, rel=RTOL)
    assert got.beta_recall == pytest.approx(want_r, rel=RTOL)
    again = alpha_precision_beta_recall(real, gen, chunk_size=11)
    assert (again.alpha_precision, again.beta_recall) == (got.alpha_precision, got.beta_recall)


def test_authenticity_matches_the_formula_and_copies_score_zero() -> None:
    train, gen = _data(3)
    tt = cdist(train, train)
    np.fill_diagonal(tt, np.inf)
    tg = cdist(gen, train)
    nearest = tg.argmin(1)
    want = np.mean(tt.min(1)[nearest] < tg.min(1))
    got = authenticity(train, gen)
    assert got.value == pytest.approx(want, rel=RTOL)
    assert not got.authentic[:10].any()  # the ten exact copies
    copy = authenticity(train, train[::-1].copy())
    assert copy.value == 0.0
    np.testing.assert_array_equal(copy.nearest_train_distance, 0.0)
