"""Float64 moment sums in row blocks (genbench.stats.moments): against numpy's float64 products, for any
block size, input order and dtype; NaN/Inf in any block is refused before anything is added."""
from __future__ import annotations

import numpy as np
import pytest

from genbench.errors import InputError
from genbench.stats import moments
from genbench.stats.feature_stats import FeatureStats


def _expected(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x64 = np.asarray(x, dtype=np.float64)
    return x64.sum(axis=0), np.einsum("ni,nj->ij", x64, x64)  # a general product, not BLAS syrk


@pytest.mark.parametrize("block", [1, 7, 64, 1024])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_match_float64_products_for_any_block(monkeypatch, block, order, dtype):
    monkeypatch.setattr(moments, "BLOCK_ROWS", block)
    x = np.asarray(np.random.default_rng(3).normal(1.0, 2.0, size=(150, 9)), dtype=dtype, order=order)
    n, total, outer = moments.moment_sums(x)
    want_total, want_outer = _expected(x)
    assert n == 150
    np.testing.assert_allclose(total, want_total, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(outer, want_outer, rtol=1e-12, atol=1e-10)
    assert np.array_equal(outer, outer.T)  # exactly symmetric


def test_no_rows_gives_zero_sums():
    n, total, outer = moments.moment_sums(np.zeros((0, 4), np.float32))
    assert n == 0 and not total.any() and not outer.any()


def test_covariance_matches_numpy_cov():
    x = np.random.default_rng(5).normal(size=(300, 12)).astype(np.float32)
    np.testing.assert_allclose(FeatureStats.from_features(x).cov(), np.cov(x.astype(np.float64), rowvar=False),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_in_a_later_block_is_refused_and_nothing_is_added(monkeypatch, bad):
    monkeypatch.setattr(moments, "BLOCK_ROWS", 10)
    stats = FeatureStats.from_features(np.ones((5, 3), np.float32))
    x = np.ones((40, 3), np.float32)
    x[33, 1] = bad
    with pytest.raises(InputError, match="NaN or Inf"):
        stats.update(x)
    assert stats.n == 5 and stats.total.tolist() == [5.0, 5.0, 5.0]


def test_wrong_width_names_the_expected_shape():
    with pytest.raises(InputError, match=r"expected shape \[B, 4\], got \(2, 3\)"):
        FeatureStats.empty(4).update(np.zeros((2, 3)))
    with pytest.raises(InputError, match="expected shape"):
        moments.moment_sums(np.zeros(5))
