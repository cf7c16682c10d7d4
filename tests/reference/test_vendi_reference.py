"""Vendi score against the ``vendi-score`` package (Friedman & Dieng) on the same features, and closed forms.

The package computes in float64 with scipy's ``eigvalsh``: on the n x n kernel (``score_K``) or on the d x d
``X^T X / n`` (``score_dual``). genbench uses whichever matrix is smaller, so one of the two routes is an
independent computation; both are deterministic float64, hence the 1e-9 relative tolerance.
``score_X`` is not used for q != 1: it passes q = 1 to ``score_K`` whatever q it gets.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

vendi = pytest.importorskip("vendi_score.vendi")

from genbench.errors import ConfigError, InputError  # noqa: E402
from genbench.metrics.vendi import vendi_score  # noqa: E402

pytestmark = pytest.mark.reference

RTOL = 1e-9


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _mixture(seed: int, n: int, d: int, modes: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((modes, d)) * 2.0
    return (centers[rng.integers(modes, size=n)] + 0.7 * rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("q", [1.0, 2.0, math.inf])
def test_more_samples_than_dims_matches_the_package(q: float) -> None:
    x = _mixture(0, 400, 24)
    x64 = _unit(x.astype(np.float64))
    ref_primal = vendi.score_K(x64 @ x64.T, q="inf" if math.isinf(q) else q)
    ref_dual = vendi.score_dual(x.astype(np.float64), q="inf" if math.isinf(q) else q)
    got = vendi_score(x, q)
    assert got == pytest.approx(ref_primal, rel=RTOL)
    assert got == pytest.approx(ref_dual, rel=RTOL)
    if q == 1.0:
        assert got == pytest.approx(vendi.score_X(x.astype(np.float64)), rel=RTOL)


@pytest.mark.parametrize("q", [0.5, 1.0, 3.0])
def test_fewer_samples_than_dims_matches_the_package(q: float) -> None:
    # n < d: the n x n kernel is full rank, so no rounding-level eigenvalue enters either side (q < 1 included).
    x = _mixture(1, 40, 96)
    x64 = _unit(x.astype(np.float64))
    assert vendi_score(x, q) == pytest.approx(vendi.score_K(x64 @ x64.T, q=q), rel=RTOL)


@pytest.mark.parametrize("q", [0.5, 1.0, 2.0, "inf"])
def test_closed_forms(q) -> None:
    rng = np.random.default_rng(3)
    one = rng.standard_normal(16)
    assert vendi_score(np.tile(one, (50, 1)), q) == pytest.approx(1.0, rel=1e-12)
    basis = np.linalg.qr(rng.standard_normal((16, 16)))[0]  # 16 orthonormal rows
    assert vendi_score(basis * 3.0, q) == pytest.approx(16.0, rel=1e-12)
    assert vendi_score(np.vstack([basis[:8], basis[:8]]), q) == pytest.approx(8.0, rel=1e-12)  # each point twice


def test_order_of_rows_does_not_matter_and_bad_input_is_refused() -> None:
    x = _mixture(2, 300, 8)
    perm = np.random.default_rng(4).permutation(len(x))
    assert vendi_score(x[perm]) == pytest.approx(vendi_score(x), rel=1e-12)
    with pytest.raises(ConfigError, match="--vendi-q"):
        vendi_score(x, 0)
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        vendi_score(bad)
    zero = x.copy()
    zero[3] = 0
    with pytest.raises(InputError, match="zero"):
        vendi_score(zero)
