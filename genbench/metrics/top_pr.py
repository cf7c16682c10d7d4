"""Topological precision and recall, TopP&R (Kim et al., NeurIPS 2023), as the ``top-pr`` package computes it.

``top_pr.compute_top_pr(real_features=..., fake_features=...)`` with its defaults (alpha = 0.1, cosine
kernel, random projection on), for features of more than 3 dimensions:

1. Features are taken as float32. With D > 32 they are projected to 32 dimensions by a fixed random
   matrix W [32, D]: torch's generator seeded 99, ``xavier_normal_`` (N(0, 2 / (D + 32))), applied as a
   float32 ``torch.nn.functional.linear``. d = min(D, 32) after that.
2. Bandwidth per set (the "balloon" estimate): k = 5 d; for each point i < n - k, the distance to its k-th
   nearest point among the points *after* it (j > i); h = the ``int(0.5 (n - k)) - 1``-th smallest of those.
3. Kernel density with the compact cosine kernel at every point of the same set:
   ``p(x) = (1/n) (pi / 4h)^d sum_{j: |x - x_j| <= h} cos(pi |x - x_j| / 2h)``.
4. Confidence band: 10 bootstrap resamples (with replacement, numpy's legacy ``RandomState``; first the 10
   of the real set, then the 10 of the generated set, from one stream), theta_b = sqrt(n) max |p - p_b|,
   c = the 90% quantile (1 - alpha) of theta over sqrt(n). A point is *significant* when p(x) > c.
5. precision = share of significant generated points whose density under the real KDE (h_real) exceeds
   c_real; recall = share of significant real points whose density under the generated KDE (h_gen) exceeds
   c_gen. F1 = their harmonic mean (0 when either is <= 1e-4).

Seeds: the package seeds numpy's global state with 42 when it projects (its ``Fix_seed``) and leaves it
as it is otherwise; genbench draws the bootstrap from ``RandomState(seed)`` (``--seed``). With seed 42, or
with numpy's global state seeded alike, the draws are the same.

Differences, by design: distances are computed in float64 in row blocks (the package builds n x n
matrices; its KDE distances come back from sklearn rounded to float32), a resample's KDE is computed as
the KDE with each point weighted by how often it was drawn (the same sum in another order), so the
densities agree to about 1e-7 relative and the counts, hence precision and recall, are equal unless a
density ties its threshold within that. Features of 3 or fewer dimensions (the package's grid and
persistent-homology route) are refused.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .knn import BYTES_PER_ENTRY, DEFAULT_MAX_MEMORY_BYTES, as_features, check_same_width

PROJECTION_DIM = 32
PROJECTION_SEED = 99
BOOTSTRAPS = 10
ALPHA = 0.1
#: Temporaries per block entry beyond the distances (kernel values, masks).
_ENTRY_BYTES = 4 * BYTES_PER_ENTRY


def projected_dim(d: int) -> int:
    return min(int(d), PROJECTION_DIM)


def min_samples(d: int) -> int:
    """The fewest samples per set the balloon bandwidth of features of width d needs: 5 d' + 2."""
    return 5 * projected_dim(d) + 2


def project(x: np.ndarray) -> np.ndarray:
    """The package's fixed random projection of float32 features [n, D > 32] to [n, 32] (float32)."""
    import torch

    d = x.shape[1]
    generator = torch.Generator().manual_seed(PROJECTION_SEED)
    weight = torch.empty(PROJECTION_DIM, d)
    weight.normal_(0.0, math.sqrt(2.0 / (d + PROJECTION_DIM)), generator=generator)
    with torch.no_grad():
        return torch.nn.functional.linear(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), weight).numpy()


def _sq_block(q: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    out = q @ b.T
    out *= -2.0
    out += np.einsum("ij,ij->i", q, q)[:, None]
    out += b_sq[None, :]
    np.maximum(out, 0.0, out=out)
    return out


def _rows(n_cols: int, max_memory_bytes: int) -> int:
    return max(1, max_memory_bytes // (_ENTRY_BYTES * max(n_cols, 1)))


def balloon_bandwidth(x: np.ndarray, k: int, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> float:
    """Median over i < n - k of the distance from x_i to its k-th nearest point among x_{i+1..n-1} (float64 x)."""
    n = len(x)
    if n < k + 2:
        raise ConfigError(f"the TopP&R bandwidth with k={k} needs at least {k + 2} samples; got {n}")
    x = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", x, x)
    last = n - k  # rows 0 .. last-1
    values = np.empty(last)
    rows = _rows(n, max_memory_bytes)
    for s in range(0, last, rows):
        e = min(s + rows, last)
        block = _sq_block(x[s:e], x[s + 1:], sq[s + 1:])  # column c is point s + 1 + c
        cols = np.arange(block.shape[1])
        block[cols[None, :] < (np.arange(s, e) - s)[:, None]] = np.inf  # keep only j > i
        values[s:e] = np.sqrt(np.partition(block, k - 1, axis=1)[:, k - 1])
    values.sort()
    return float(values[int(len(values) * 0.5) - 1])


def cosine_kde(data: np.ndarray, positions: np.ndarray, h: float, weights: np.ndarray | None = None, *,
               max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> np.ndarray:
    """Cosine-kernel density of ``data`` [n, d] at ``positions`` [p, d], bandwidth h: [p] or, with ``weights``
    [n, w] (per-point multiplicities), [p, 1 + w] (the unweighted density first)."""
    n, d = data.shape
    center = data.mean(axis=0)
    b = data - center
    q_all = positions - center
    b_sq = np.einsum("ij,ij->i", b, b)
    w = np.ones((n, 1)) if weights is None else np.hstack([np.ones((n, 1)), weights])
    out = np.empty((len(positions), w.shape[1]))
    rows = _rows(n, max_memory_bytes)
    h2 = h * h
    for s in range(0, len(positions), rows):
        sq = _sq_block(q_all[s:s + rows], b, b_sq)
        kernel = np.where(sq <= h2, np.cos((np.pi / 2.0) * (np.sqrt(sq) / h)), 0.0)
        out[s:s + rows] = kernel @ w
    out *= (1.0 / n) * (np.pi / (4.0 * h)) ** d
    return out[:, 0] if weights is None else out


def confidence_band(x: np.ndarray, h: float, rng: np.random.RandomState, *, alpha: float = ALPHA,
                    repeats: int = BOOTSTRAPS, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
                    ) -> tuple[float, np.ndarray]:
    """(c, p): the bootstrap confidence band c of the KDE and the KDE p [n] at the points themselves."""
    n = len(x)
    counts = np.empty((n, repeats))
    for r in range(repeats):
        counts[:, r] = np.bincount(rng.choice(np.arange(n), size=n, replace=True), minlength=n)
    dens = cosine_kde(x, x, h, counts, max_memory_bytes=max_memory_bytes)
    p_hat = dens[:, 0]
    theta = np.sqrt(n) * np.abs(p_hat[:, None] - dens[:, 1:]).max(axis=0)
    return float(np.quantile(theta, 1.0 - alpha) / np.sqrt(n)), p_hat


@dataclass(frozen=True)
class TopPR:
    precision: float
    recall: float
    f1: float
    bandwidth_real: float
    bandwidth_generated: float
    band_real: float
    band_generated: float
    significant_real: int
    significant_generated: int
    projected: bool
    dim: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def top_pr(real: np.ndarray, generated: np.ndarray, *, seed: int = 0, alpha: float = ALPHA,
           random_projection: bool = True, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
           on_step: Callable[[int], None] | None = None) -> TopPR:
    """TopP&R of generated [M, D] against real [N, D] (module docstring); ``on_step(1)`` after each of 4 sweeps.

    Raises ConfigError for D <= 3, for fewer than :func:`min_samples` samples in either set, or alpha outside
    (0, 1); InputError for malformed features.
    """
    r = as_features(real, "reference features")
    g = as_features(generated, "generated features")
    check_same_width(**{"reference features": r, "generated features": g})
    if not 0 < alpha < 1:
        raise ConfigError(f"the TopP&R significance level (--top-pr-alpha) must be in (0, 1), got {alpha}")
    width = r.shape[1]
    if width <= 3:
        raise ConfigError(f"TopP&R on features of {width} <= 3 dimensions takes the package's grid route, which "
                          "genbench does not implement; use an extractor with wider features")
    d_eff = projected_dim(width) if random_projection else width
    need = 5 * d_eff + 2
    for name, arr in (("reference", r), ("generated", g)):
        if len(arr) < need:
            raise ConfigError(f"TopP&R on {width}-dimensional features needs at least {need} {name} samples (its "
                              f"bandwidth uses the 5 d-th neighbour, d = {d_eff}); the {name} input has {len(arr)}")
    r32, g32 = r.astype(np.float32), g.astype(np.float32)
    projected = random_projection and width > PROJECTION_DIM
    if projected:
        r32, g32 = project(r32), project(g32)
    r64, g64 = r32.astype(np.float64), g32.astype(np.float64)
    d = r64.shape[1]
    k = 5 * d
    opts: dict[str, Any] = {"max_memory_bytes": max_memory_bytes}
    h_r = balloon_bandwidth(r64, k, **opts)
    h_g = balloon_bandwidth(g64, k, **opts)
    rng = np.random.RandomState(seed)
    c_r, p_rr = confidence_band(r64, h_r, rng, alpha=alpha, **opts)
    if on_step:
        on_step(1)
    c_g, p_gg = confidence_band(g64, h_g, rng, alpha=alpha, **opts)
    if on_step:
        on_step(1)
    p_rg = cosine_kde(g64, r64, h_g, **opts)  # generated KDE at the real points
    if on_step:
        on_step(1)
    p_gr = cosine_kde(r64, g64, h_r, **opts)  # real KDE at the generated points
    if on_step:
        on_step(1)
    sig_r, sig_g = p_rr > c_r, p_gg > c_g
    n_r, n_g = int(sig_r.sum()), int(sig_g.sum())
    precision = float((sig_g & (p_gr > c_r)).sum() / n_g) if n_g else 0.0
    recall = float((sig_r & (p_rg > c_g)).sum() / n_r) if n_r else 0.0
    f1 = 2.0 / (1.0 / precision + 1.0 / recall) if precision > 1e-4 and recall > 1e-4 else 0.0
    return TopPR(precision, recall, f1, h_r, h_g, c_r, c_g, n_r, n_g, projected, d)
