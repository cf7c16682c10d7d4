"""alpha-precision, beta-recall and authenticity (Alaa et al., ICML 2022), embedding-free.

The paper computes these in the feature space of a one-class network (Deep SVDD) trained on the real
data, centred at that network's centre. The *embedding-free* variant, the one dgm-eval computes for
authenticity (``metrics/authpct.py``, "AuthPct" on the extractor's features) and synthcity calls
``naive``, uses the features themselves with the centre at the mean of the real features. genbench computes
that variant: it needs no extra network to train (whose result would depend on its seed and training
run), so the numbers are a deterministic function of the features, like every other metric here, and
comparable across runs. What it loses: the one-class embedding is meant to make the real data a ball
around the centre; in raw features the quantile balls are only an approximation of the densest region.

Following ``compute_alpha_precision`` of ahmedmalaa/evaluating-generative-models (alphas = 30 steps on
[0, 1], k = 1 for coverage), with c = mean of the real features and c_g = mean of the generated ones:

- R_alpha = alpha-quantile of |real_i - c|;  P_alpha = share of generated g with |g - c| <= R_alpha.
- For each real r_i: its nearest generated sample g*(i) at distance d_i, and its nearest other real sample
  at distance nn_i; B_beta = beta-quantile over i of |g*(i) - c_g|;
  C_beta = share of real i with d_i <= nn_i and |g*(i) - c_g| <= B_beta.
- alpha_precision = 1 - 2 sum_alpha |P_alpha - alpha| dalpha, beta_recall = the same of C_beta (the
  paper's integrated Delta scores; 1 is ideal).
- authenticity: for generated g with nearest *training* sample t at distance d_g, authentic when
  nn(t) < d_g (nn(t): t's distance to its nearest other training sample); the share of authentic samples
  (AuthPct / 100). A copy of the training set has authenticity 0.

The reference code computes in float32 (torch ``.float()``); genbench in float64 with exact distances
(:mod:`.knn`), so the two differ by float32 rounding where a comparison is close.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .knn import (
    DEFAULT_MAX_MEMORY_BYTES,
    as_features,
    check_same_width,
    exact_squared_distances,
    kth_neighbour_distances,
    nearest_neighbours,
)

N_ALPHAS = 30


def _norms_to(x: np.ndarray, center: np.ndarray, max_memory_bytes: int) -> np.ndarray:
    """|x_i - center| [N], exact (numpy summation, no BLAS), so equal rows give equal bits."""
    return np.sqrt(exact_squared_distances(x, np.broadcast_to(center, x.shape), max_memory_bytes=max_memory_bytes))


@dataclass(frozen=True, eq=False)
class AlphaPrecisionResult:
    alpha_precision: float
    beta_recall: float
    alphas: np.ndarray = field(repr=False)
    precision_curve: np.ndarray = field(repr=False)
    recall_curve: np.ndarray = field(repr=False)


def alpha_precision_beta_recall(real: np.ndarray, generated: np.ndarray, *, chunk_size: int | None = None,
                                max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> AlphaPrecisionResult:
    """Integrated alpha-precision and beta-recall of generated [M, D] against real [N, D] (N >= 2)."""
    r = as_features(real, "reference features")
    g = as_features(generated, "generated features")
    check_same_width(**{"reference features": r, "generated features": g})
    if len(r) < 2:
        raise ConfigError(f"alpha-precision/beta-recall need at least 2 reference samples; got {len(r)}")
    opts: dict[str, Any] = {"chunk_size": chunk_size, "max_memory_bytes": max_memory_bytes}
    alphas = np.linspace(0.0, 1.0, N_ALPHAS)
    center = r.mean(axis=0)
    radii = np.quantile(_norms_to(r, center, max_memory_bytes), alphas)
    gen_to_center = _norms_to(g, center, max_memory_bytes)
    precision = (gen_to_center[None, :] <= radii[:, None]).mean(axis=1)

    real_nn = kth_neighbour_distances(r, 1, name="reference features", **opts)
    d_rg, i_rg = nearest_neighbours(r, g, 1, query_name="reference features", base_name="generated features", **opts)
    closest_to_gen_center = _norms_to(g[i_rg[:, 0]], g.mean(axis=0), max_memory_bytes)
    gen_radii = np.quantile(closest_to_gen_center, alphas)
    near = d_rg[:, 0] <= real_nn
    recall = (near[None, :] & (closest_to_gen_center[None, :] <= gen_radii[:, None])).mean(axis=1)

    step = alphas[1] - alphas[0]
    return AlphaPrecisionResult(float(1 - 2 * np.abs(precision - alphas).sum() * step),
                                float(1 - 2 * np.abs(recall - alphas).sum() * step), alphas, precision, recall)


@dataclass(frozen=True, eq=False)
class Authenticity:
    """``value``: share of authentic generated samples; per sample [M]: the flag and the nearest training sample."""

    value: float
    authentic: np.ndarray = field(repr=False)
    nearest_train_distance: np.ndarray = field(repr=False)
    nearest_train_index: np.ndarray = field(repr=False)


def authenticity(train: np.ndarray, generated: np.ndarray, *, chunk_size: int | None = None,
                 max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> Authenticity:
    """Authenticity of generated [M, D] against training features [T, D] (T >= 2); see the module docstring."""
    t = as_features(train, "training features")
    g = as_features(generated, "generated features")
    check_same_width(**{"training features": t, "generated features": g})
    if len(t) < 2:
        raise ConfigError(f"authenticity needs at least 2 training samples; got {len(t)}")
    opts: dict[str, Any] = {"chunk_size": chunk_size, "max_memory_bytes": max_memory_bytes}
    d, i = nearest_neighbours(g, t, 1, query_name="generated features", base_name="training features", **opts)
    needed = np.unique(i[:, 0])
    own, _ = nearest_neighbours(t[needed], t, 1, exclude=needed, query_name="training features",
                                base_name="training features", **opts)
    train_nn = np.full(len(t), np.nan)
    train_nn[needed] = own[:, 0]
    flag = train_nn[i[:, 0]] < d[:, 0]
    return Authenticity(float(flag.mean()), flag, d[:, 0], i[:, 0])
