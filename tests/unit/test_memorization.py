"""Memorization probes on a Gaussian mixture with known answers, plus brute-force cross-checks."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu

from genbench.errors import ConfigError
from genbench.metrics.memorization import (
    MemorizationThresholds,
    copying_signals,
    ct_from_cells,
    kmeans,
    mann_whitney_z,
    memorization_statistics,
    memorization_verdict,
    most_suspicious,
)

D, MODES, CELLS = 32, 10, 10
MEANS = np.random.default_rng(123).standard_normal((MODES, D)) * 4.0


def mixture(n: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    return MEANS[rng.integers(MODES, size=n)] + scale * rng.standard_normal((n, D))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {"train": mixture(3000, rng), "test": mixture(1000, rng), "rng": rng}


def stats_for(data, generated, **kw):
    return memorization_statistics(data["train"], data["test"], generated, seed=0, n_cells=CELLS, **kw)


# ---------------------------------------------------------------------------------- known answers
def test_independent_draws_are_not_flagged(data):
    s = stats_for(data, mixture(1000, np.random.default_rng(11)))
    assert abs(s.ct.ct) < 2.5
    assert s.nn_ratio_fraction == 0.0
    assert abs(s.authenticity - s.heldout_authenticity) < 0.06
    assert abs(s.gap_excess) < 0.03
    assert copying_signals(s) == []
    assert memorization_verdict(s) == "no-evidence"


def test_exact_copies_are_flagged(data):
    rng = np.random.default_rng(12)
    source = rng.choice(len(data["train"]), 1000, replace=False)
    s = stats_for(data, data["train"][source])
    assert s.ct.ct < -10
    assert s.nn_ratio_fraction == 1.0 and s.heldout_nn_ratio_fraction == 0.0
    assert s.authenticity == 0.0 and s.heldout_authenticity > 0.5
    assert s.gap_excess < -0.95
    np.testing.assert_array_equal(s.generated_nn_index, source)
    assert np.all(s.generated_nn_distance == 0.0)
    assert copying_signals(s) == ["ct", "nn_ratio", "authenticity", "gap"]
    assert memorization_verdict(s) == "copying"


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_perturbed_copies_are_flagged(data, noise):
    rng = np.random.default_rng(13)
    source = rng.choice(len(data["train"]), 1000, replace=False)
    s = stats_for(data, data["train"][source] + noise * rng.standard_normal((1000, D)))
    assert s.ct.ct < -3
    assert s.gap_excess < -0.3
    assert s.heldout_authenticity - s.authenticity > 0.5
    if noise == 0.1:
        assert s.nn_ratio_fraction > 0.95
    assert memorization_verdict(s) == "copying"


def test_a_tenth_of_copies_is_flagged_by_the_ratio(data):
    rng = np.random.default_rng(14)
    gen = np.concatenate([mixture(900, rng), data["train"][rng.choice(len(data["train"]), 100, replace=False)]])
    s = stats_for(data, gen)
    assert s.nn_ratio_fraction == pytest.approx(0.1, abs=0.005)
    assert "nn_ratio" in copying_signals(s)
    assert memorization_verdict(s) == "copying"


def test_overdispersed_samples_are_underfitting(data):
    s = stats_for(data, mixture(1000, np.random.default_rng(15), scale=1.5))
    assert s.ct.ct > 3
    assert memorization_verdict(s) == "underfitting"


def test_shrinkage_moves_ct_but_not_the_train_specific_signals(data):
    # The documented confound (Stein et al. 2023): samples pulled towards the modes look "close to train"
    # to C_T and authenticity, yet they are just as close to held-out data.
    s = stats_for(data, mixture(1000, np.random.default_rng(16), scale=0.5))
    assert s.ct.ct < -3
    assert {"ct", "authenticity"} <= set(copying_signals(s))
    assert not {"nn_ratio", "gap"} & set(copying_signals(s))
    assert memorization_verdict(s) == "no-evidence"
    assert memorization_verdict(s, MemorizationThresholds(require_train_specific=False)) == "copying"


def test_most_suspicious_returns_the_copies_and_their_sources(data):
    rng = np.random.default_rng(17)
    gen = mixture(1000, rng)
    positions, sources = np.array([5, 123, 400, 777]), np.array([10, 20, 30, 2999])
    gen[positions] = data["train"][sources]
    s = stats_for(data, gen)
    top = most_suspicious(s, count=6)
    assert len(top) == 6
    first = sorted((t.generated_index, t.train_index) for t in top[:4])
    assert first == list(zip(positions.tolist(), sources.tolist(), strict=True))
    assert all(t.distance == 0.0 and t.ratio == 0.0 for t in top[:4])
    assert top[4].ratio <= top[5].ratio and top[4].ratio > 0
    assert most_suspicious(s, count=0) == []


# --------------------------------------------------------------------------- independent computation
def test_mann_whitney_z_matches_scipy_u():
    rng = np.random.default_rng(1)
    q = np.round(rng.standard_normal(40), 1)  # rounding creates ties
    p = np.round(rng.standard_normal(55) + 0.5, 1)
    u = mannwhitneyu(q, p, alternative="less").statistic  # U of the first sample: pairs q > p (+ ties / 2)
    m, n = len(q), len(p)
    want = (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)
    assert mann_whitney_z(q, p) == pytest.approx(want, rel=1e-12)
    assert mann_whitney_z(q, p) < 0  # generated values smaller -> negative


def test_ct_from_cells_matches_the_reference_algorithm():
    rng = np.random.default_rng(2)
    train, test, gen = rng.standard_normal((600, 6)), rng.standard_normal((300, 6)), rng.standard_normal((200, 6)) * 0.8
    train_cells, test_cells = rng.integers(4, size=600), rng.integers(4, size=300)
    gen_cells = np.r_[np.zeros(90, int), np.ones(60, int), np.full(35, 2), np.full(15, 3)]  # cell 3: 15 <= 20
    got = ct_from_cells(train, train_cells, test, test_cells, gen, gen_cells)

    # Meehan et al.: per cell, 1-NN distances to the cell's training points, Z-scored U, weights n_pi / n.
    zs, weights = [], []
    for c in range(4):
        if (gen_cells == c).sum() / len(gen) <= 20 / len(gen):
            continue
        t = train[train_cells == c]
        lq = cdist(gen[gen_cells == c], t).min(axis=1)
        lp = cdist(test[test_cells == c], t).min(axis=1)
        u = mannwhitneyu(lq, lp, alternative="less").statistic
        m, n = len(lq), len(lp)
        zs.append((u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12))
        weights.append(len(lp) / len(test))
    want = np.dot(weights, zs) / np.sum(weights)
    assert got.ct == pytest.approx(want, rel=1e-12)
    assert got.cells_used == 3 and np.isnan(got.cell_z[3])
    np.testing.assert_array_equal(got.cell_generated_counts, [90, 60, 35, 15])


def test_sample_level_statistics_match_brute_force(data):
    rng = np.random.default_rng(3)
    train, test = data["train"][:800], data["test"][:300]
    gen = np.concatenate([mixture(250, rng), train[:50] + 0.05 * rng.standard_normal((50, D))])
    s = memorization_statistics(train, test, gen, seed=0, n_cells=4)

    g_t = cdist(gen, train)
    order = np.argsort(g_t, axis=1)
    d1, d2 = np.take_along_axis(g_t, order[:, :2], axis=1).T
    t_t = cdist(test, train)
    td = np.sort(t_t, axis=1)
    tr = cdist(train, train)
    np.fill_diagonal(tr, np.inf)
    tr_nn = tr.min(axis=1)
    te = cdist(test, test)
    np.fill_diagonal(te, np.inf)

    np.testing.assert_array_equal(s.generated_nn_index, order[:, 0])
    np.testing.assert_allclose(s.generated_nn_distance, d1, rtol=1e-12)
    assert s.nn_ratio_fraction == np.mean(d1 / d2 < 1 / 3)
    assert s.heldout_nn_ratio_fraction == np.mean(td[:, 0] / td[:, 1] < 1 / 3)
    # Alaa et al. / dgm-eval authpct: authentic when the nearest train point's own NN distance < the sample's
    assert s.authenticity == np.mean(tr_nn[order[:, 0]] < d1)
    assert s.heldout_authenticity == np.mean(tr_nn[t_t.argmin(axis=1)] < td[:, 0])
    assert s.generated_to_train_mean == pytest.approx(d1.mean(), rel=1e-12)
    assert s.generated_to_test_mean == pytest.approx(cdist(gen, test).min(axis=1).mean(), rel=1e-12)
    assert s.heldout_to_train_mean == pytest.approx(td[:, 0].mean(), rel=1e-12)
    assert s.heldout_to_test_mean == pytest.approx(te.min(axis=1).mean(), rel=1e-12)
    gap_g = d1.mean() - cdist(gen, test).min(axis=1).mean()
    gap_h = td[:, 0].mean() - te.min(axis=1).mean()
    assert s.gap_excess == pytest.approx((gap_g - gap_h) / td[:, 0].mean(), rel=1e-9)


def test_kmeans_recovers_separated_blobs_and_is_seeded():
    rng = np.random.default_rng(4)
    centres = np.eye(5, 8) * 50
    truth = rng.integers(5, size=1000)
    x = centres[truth] + rng.standard_normal((1000, 8))
    c1, l1 = kmeans(x, 5, seed=7)
    c2, l2 = kmeans(x, 5, seed=7)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(l1, l2)
    # each fitted cell holds exactly one blob
    pairs = {(a, b) for a, b in zip(l1.tolist(), truth.tolist(), strict=True)}
    assert len(pairs) == 5 and len({a for a, _ in pairs}) == 5
    for c in range(5):
        np.testing.assert_allclose(c1[c], x[l1 == c].mean(axis=0), atol=1e-9)


# ----------------------------------------------------------------------------- invariances and errors
def test_same_seed_same_numbers_and_chunking_invariance(data, monkeypatch):
    gen = mixture(600, np.random.default_rng(5))
    a = stats_for(data, gen).to_dict()
    assert stats_for(data, gen).to_dict() == a  # same inputs, same seed, same process: the same bits
    json.dumps(a)  # plain JSON types only
    # Another block size: every decision (k-means labels, neighbours) is taken on exact distances, so counts
    # and cells are identical; floats are compared to a tolerance, not to the last bit.
    chunked = stats_for(data, gen, chunk_size=97).to_dict()
    assert chunked.keys() == a.keys()
    for key, value in a.items():
        if isinstance(value, float):
            assert chunked[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert chunked[key] == value, key
    # The seed drives the k-means cells of C_T (and nothing else). Whether two seeds reach the same local
    # optimum depends on the data, so the test checks that the seed reaches k-means, not that C_T moves.
    import genbench.metrics.memorization as memo

    seeds = []
    real_kmeans = memo.kmeans

    def spy(*args, **kwargs):
        seeds.append(kwargs["seed"])
        return real_kmeans(*args, **kwargs)

    monkeypatch.setattr(memo, "kmeans", spy)
    other = memorization_statistics(data["train"], data["test"], gen, seed=1, n_cells=CELLS).to_dict()
    assert seeds == [1] and other["seed"] == 1 and np.isfinite(other["ct"])
    for key in ("nn_ratio_fraction", "heldout_nn_ratio_fraction", "authenticity", "heldout_authenticity"):
        assert other[key] == a[key], key  # fractions of exact-distance comparisons that do not involve the seed
    for key in ("generated_to_train_mean", "generated_to_test_mean", "heldout_to_train_mean", "heldout_to_test_mean"):
        assert other[key] == pytest.approx(a[key], rel=1e-12), key


def test_exact_copies_and_permutations_give_exact_zero_distances_and_identical_numbers(data):
    # Copies of training rows (some duplicated) in a random order: every distance to the source row is exactly
    # 0 whatever BLAS does with the expansion, and permuting the generated set permutes the per-sample arrays.
    rng = np.random.default_rng(21)
    train = np.concatenate([data["train"][:1500], data["train"][:40]])  # rows 1500..1539 duplicate rows 0..39
    source = rng.choice(1500, 400, replace=False)
    gen = np.concatenate([train[source], mixture(200, rng)])
    s = memorization_statistics(train, data["test"], gen, seed=0, n_cells=CELLS)
    assert np.all(s.generated_nn_distance[:400] == 0.0)
    dup = source < 40  # copies of a duplicated training row: d1 = d2 = 0 (ratio 0/0 -> 0), lower index first
    np.testing.assert_array_equal(s.generated_nn_index[:400], source)
    assert np.all(s.generated_nn2_distance[:400][dup] == 0.0) and np.all(s.generated_nn2_distance[:400][~dup] > 0)
    assert np.all(s.generated_ratio[:400] == 0.0)
    perm = rng.permutation(len(gen))
    p = memorization_statistics(train, data["test"], gen[perm], seed=0, n_cells=CELLS, chunk_size=61)
    np.testing.assert_array_equal(p.generated_nn_index, s.generated_nn_index[perm])
    np.testing.assert_array_equal(p.generated_nn_distance, s.generated_nn_distance[perm])
    np.testing.assert_array_equal(p.generated_nn2_distance, s.generated_nn2_distance[perm])
    assert (p.nn_ratio_fraction, p.authenticity, p.ct.cells_used) == (s.nn_ratio_fraction, s.authenticity,
                                                                      s.ct.cells_used)
    assert p.ct.ct == pytest.approx(s.ct.ct, rel=1e-12)
    np.testing.assert_array_equal(p.ct.cell_generated_counts, s.ct.cell_generated_counts)


def test_kmeans_labels_do_not_depend_on_the_block_size():
    # Another block size gives BLAS other shapes (other rounding), but the nearest centre is decided on exact
    # distances (ties to the lower index), so labels, and the centres computed from them, are the same bits.
    rng = np.random.default_rng(22)
    x = np.concatenate([rng.standard_normal((300, 6)) + 20, rng.standard_normal((300, 6)) - 20, np.zeros((5, 6))])
    runs = [kmeans(x, 4, seed=3, chunk_size=chunk) for chunk in (None, 1, 13, 256)]
    for centers, labels in runs[1:]:
        np.testing.assert_array_equal(labels, runs[0][1])
        np.testing.assert_array_equal(centers, runs[0][0])


def test_too_few_samples_raise_config_error(data):
    with pytest.raises(ConfigError, match="min_cell_generated=20"):
        stats_for(data, mixture(20, np.random.default_rng(6)))
    with pytest.raises(ConfigError, match="n_clusters=50"):
        memorization_statistics(data["train"][:40], data["test"], data["test"], seed=0, n_cells=50)
    with pytest.raises(ConfigError, match="no test samples"):
        ct_from_cells(np.zeros((30, 2)), np.r_[np.zeros(15, int), np.ones(15, int)], np.zeros((5, 2)),
                      np.zeros(5, int), np.zeros((30, 2)), np.ones(30, int))
    with pytest.raises(ConfigError, match="2 test"):
        memorization_statistics(data["train"], data["test"][:1], data["test"], seed=0, n_cells=CELLS)
