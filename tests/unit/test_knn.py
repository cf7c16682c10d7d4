"""Chunked distances and nearest neighbours against brute force (scipy.spatial.distance.cdist)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from genbench.errors import ConfigError, InputError
from genbench.metrics.knn import (
    BYTES_PER_ENTRY,
    exact_squared_distances,
    iter_ball_blocks,
    iter_distance_blocks,
    kth_neighbour_distances,
    nearest_neighbours,
    pairwise_distances,
    plan_chunk_rows,
)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    # A large common offset makes the |q|^2 + |b|^2 - 2 q.b expansion lose digits unless it centres.
    offset = 1e5
    return rng.standard_normal((300, 24)) + offset, rng.standard_normal((450, 24)) + offset


def test_pairwise_distances_match_cdist(sets):
    x, y = sets
    np.testing.assert_allclose(pairwise_distances(x, y), cdist(x, y), rtol=1e-10, atol=1e-10)
    same = pairwise_distances(x)
    assert np.all(np.diag(same) == 0)
    np.testing.assert_allclose(same, cdist(x, x), rtol=1e-10, atol=1e-10)


def test_distance_blocks_cover_all_rows_for_any_chunk(sets):
    x, y = sets
    expected = cdist(x, y)
    for chunk in (1, 7, 299, 300, 1000):
        got = np.concatenate([b.copy() for _, _, b in iter_distance_blocks(x, y, chunk_size=chunk)])
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    squared = np.concatenate([b.copy() for _, _, b in iter_distance_blocks(x, y, squared=True)])
    np.testing.assert_allclose(squared, expected**2, rtol=1e-9)


def test_nearest_neighbours_match_brute_force(sets):
    x, y = sets
    full = cdist(x, y)
    order = np.argsort(full, axis=1, kind="stable")[:, :4]
    for k in (1, 4):
        dist, idx = nearest_neighbours(x, y, k, chunk_size=13)
        np.testing.assert_array_equal(idx, order[:, :k])
        np.testing.assert_allclose(dist, np.take_along_axis(full, order[:, :k], axis=1), rtol=1e-12)
    # k above the argmin threshold takes the partition path
    dist, idx = nearest_neighbours(x, y, 12)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :12])


def test_exclude_skips_self_and_exact_copies_give_zero(sets):
    x, _ = sets
    dist, idx = nearest_neighbours(x, x, 2, exclude=np.arange(len(x)))
    full = cdist(x, x)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(idx[:, 0], full.argmin(axis=1))
    assert np.all(idx[:, 0] != np.arange(len(x)))
    # without exclusion every point finds itself at distance exactly 0
    dist, idx = nearest_neighbours(x[:50], x, 1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(50))
    assert np.all(dist == 0.0)


def _lattice(rng: np.random.Generator, n: int, d: int, offset: float) -> np.ndarray:
    """Small-integer points plus a common offset: every coordinate difference, and so every squared
    distance, is exact in float64 in any summation order, and distinct pairs tie often."""
    return rng.integers(-2, 3, size=(n, d)).astype(np.float64) + offset


@pytest.mark.parametrize("offset", [0.0, 1e6 + 0.5])
def test_neighbours_are_exact_with_duplicates_and_tied_distances(offset):
    rng = np.random.default_rng(3)
    base = _lattice(rng, 400, 5, offset)
    query = np.concatenate([base[rng.choice(400, 60, replace=False)], _lattice(rng, 40, 5, offset)])
    # Brute force on exact integers: squared distances with ties broken by the lower base index.
    sq = ((query[:, None, :] - base[None, :, :]) ** 2).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(400), sq.shape), sq), axis=1)
    for k in (1, 5, 12):
        want_idx = order[:, :k]
        want_dist = np.sqrt(np.take_along_axis(sq, want_idx, axis=1))
        for chunk in (None, 1, 7):
            dist, idx = nearest_neighbours(query, base, k, chunk_size=chunk)
            np.testing.assert_array_equal(idx, want_idx)
            np.testing.assert_array_equal(dist, want_dist)  # bit for bit: the distances are exact
    dist, _ = nearest_neighbours(query[:60], base, 1)
    assert np.all(dist == 0.0)  # copies: exactly 0 even with |x|^2 ~ 1e13 in the expansion
    radii = kth_neighbour_distances(base, [1, 4])
    full = np.sqrt(np.sort(((base[:, None] - base[None]) ** 2).sum(axis=2), axis=1))
    np.testing.assert_array_equal(radii, full[:, [1, 4]])


def test_exact_squared_distances_depend_only_on_the_pair(sets):
    x, y = sets
    rows, cols = np.arange(300) % 37, np.arange(300)
    whole = exact_squared_distances(x[rows], y[cols])
    pieces = np.concatenate([exact_squared_distances(x[rows[i:i + 7]], y[cols[i:i + 7]]) for i in range(0, 300, 7)])
    np.testing.assert_array_equal(pieces, whole)
    np.testing.assert_allclose(np.sqrt(whole), cdist(x, y)[rows, cols], rtol=1e-12)
    assert np.all(exact_squared_distances(x[:5], x[:5].copy()) == 0.0)


def test_ball_membership_is_exact_on_ties():
    # real_i's ball has radius d(real_i, its k-th neighbour); a fake copy of that neighbour lies exactly on the
    # boundary and is outside (strict <), a copy of real_i itself is inside unless the radius is 0.
    rng = np.random.default_rng(4)
    real = _lattice(rng, 300, 4, 1e6 + 0.25)
    fake = np.concatenate([real[rng.permutation(300)[:200]], _lattice(rng, 50, 4, 1e6 + 0.25)])
    radius = kth_neighbour_distances(real, 3)
    rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(axis=2))
    assert (rf == radius[:, None]).sum() > 100  # many exact ties
    for chunk in (None, 1, 13):
        blocks = list(iter_ball_blocks(real, fake, chunk_size=chunk))
        inside = np.concatenate([b.within(radius[b.start:b.stop, None]) for b in blocks])
        np.testing.assert_array_equal(inside, rf < radius[:, None])
        per_fake = np.concatenate([b.within(np.full((1, len(fake)), 2.0)) for b in blocks])
        np.testing.assert_array_equal(per_fake, rf < 2.0)


def test_kth_neighbour_distances_are_row_order_statistics(sets):
    x, _ = sets
    full = np.sort(cdist(x, x), axis=1)  # column 0 is the point itself
    np.testing.assert_allclose(kth_neighbour_distances(x, 3), full[:, 3], rtol=1e-12)
    np.testing.assert_allclose(kth_neighbour_distances(x, [1, 5], chunk_size=17), full[:, [1, 5]], rtol=1e-12)
    with pytest.raises(ConfigError, match="k=5"):
        kth_neighbour_distances(x[:5], 5)


def test_chunk_planning_and_memory_limit():
    assert plan_chunk_rows(1000, max_memory_bytes=1000 * BYTES_PER_ENTRY * 10) == 10
    assert plan_chunk_rows(1000, max_memory_bytes=10**9, n_rows=3) == 3
    with pytest.raises(ConfigError, match="chunk_size=64.*max_memory_bytes=1000"):
        plan_chunk_rows(100, chunk_size=64, max_memory_bytes=1000)
    with pytest.raises(ConfigError, match="one row"):
        plan_chunk_rows(10**6, max_memory_bytes=1024)
    with pytest.raises(ConfigError, match="max_memory_bytes"):
        pairwise_distances(np.zeros((100, 2)), max_memory_bytes=100 * 100)


def test_bad_inputs_name_the_array():
    with pytest.raises(InputError, match="query"):
        nearest_neighbours(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(InputError, match="D=3"):
        nearest_neighbours(np.zeros((5, 3)), np.zeros((5, 2)))
    bad = np.zeros((5, 2))
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        nearest_neighbours(bad, np.zeros((5, 2)), base_name="train")
    with pytest.raises(ConfigError, match="k=6"):
        nearest_neighbours(np.zeros((5, 2)), np.zeros((5, 2)), 6)
