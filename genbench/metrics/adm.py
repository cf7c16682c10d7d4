"""ADM's evaluation suite as pure functions (openai/guided-diffusion ``evaluations/evaluator.py``).

* **Precision and recall** (``ManifoldEstimator``, adapted there from Kynkaanniemi et al.'s code): the radius of a
  feature vector is its **squared** Euclidean distance to the k-th nearest neighbour of its own set, read as
  element ``k`` of the row of squared distances to the whole set *including itself* (``np.partition(row, k)[k]``
  with the zero self-distance at element 0: the k-th neighbour other than itself); ``nhood_sizes=(3,)``. A vector
  is on a manifold when its squared distance to some member is ``<=`` that member's radius. Precision: the
  fraction of samples on the reference manifold; recall: the fraction of reference vectors on the sample
  manifold; radii of each set are computed over that whole set (ADM's reference side is the batch's ``arr_0``,
  10,000 images, against all samples).
  ADM computes each 10,000 x 10,000 block of squared distances as ``max(|u|^2 - 2 u.v + |v|^2, 0)`` in float16,
  falling back to float32 when the block has a non-finite value; its batch sizes (``row_batch_size`` =
  ``col_batch_size`` = 10000) change nothing but that rounding. Here every block is float64, so the two differ
  only on vectors within float16 rounding of a radius; the float16 rounding is not emulated.
* **Inception Score**: contiguous, unshuffled splits of 5,000 (``range(0, N, 5000)``, the last split shorter when
  N is no multiple), the mean of the per-split scores (:func:`genbench.metrics.inception_score.
  inception_score_split_size`).
* **sFID**: the Frechet distance of the spatial features (inception-v3 layer ``spatial``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError

#: ADM's ``nhood_sizes=(3,)`` and its blocks of rows and columns
ADM_PR_K = 3
ADM_BLOCK = 10000
#: Rows per float64 block here (memory: rows x N x 8 bytes)
_ROWS = 512


@dataclass(frozen=True)
class AdmPrecisionRecall:
    precision: float
    recall: float
    k: int


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise InputError(f"{name}: expected features [N, D] with N >= 1, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name}: features contain NaN or Inf values")
    return a


def _squared_block(u: np.ndarray, v: np.ndarray, v_norms: np.ndarray) -> np.ndarray:
    """``max(|u|^2 - 2 u.v + |v|^2, 0)`` [len(u), len(v)], ADM's expansion (in float64)."""
    d = (u * u).sum(axis=1)[:, None] - 2.0 * (u @ v.T) + v_norms[None, :]
    return np.maximum(d, 0.0)


def manifold_radii(features: np.ndarray, k: int = ADM_PR_K) -> np.ndarray:
    """Squared k-NN radii [N] of ``features`` [N, D] as ADM defines them (module docstring); needs N > k."""
    f = _as_2d(features, "features")
    n = f.shape[0]
    if n <= k:
        raise ConfigError(f"precision/recall with k={k} (--pr-k) need more than {k} vectors per set, got {n}")
    norms = (f * f).sum(axis=1)
    radii = np.empty(n, dtype=np.float64)
    for start in range(0, n, _ROWS):
        block = _squared_block(f[start:start + _ROWS], f, norms)
        radii[start:start + _ROWS] = np.partition(block, k, axis=1)[:, k]
    return radii


def _on_manifold(queries: np.ndarray, members: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """bool [len(queries)]: each query within (<=) some member's squared radius."""
    norms = (members * members).sum(axis=1)
    inside = np.zeros(len(queries), dtype=bool)
    for start in range(0, len(queries), _ROWS):
        block = _squared_block(queries[start:start + _ROWS], members, norms)
        inside[start:start + _ROWS] = (block <= radii[None, :]).any(axis=1)
    return inside


def adm_precision_recall(reference: np.ndarray, samples: np.ndarray, k: int = ADM_PR_K) -> AdmPrecisionRecall:
    """ADM's precision and recall of ``samples`` [M, D] against ``reference`` [N, D] (module docstring)."""
    ref = _as_2d(reference, "reference features")
    gen = _as_2d(samples, "generated features")
    if ref.shape[1] != gen.shape[1]:
        raise InputError(f"reference features have width {ref.shape[1]}, generated {gen.shape[1]}")
    ref_radii, gen_radii = manifold_radii(ref, k), manifold_radii(gen, k)
    precision = float(_on_manifold(gen, ref, ref_radii).mean())
    recall = float(_on_manifold(ref, gen, gen_radii).mean())
    return AdmPrecisionRecall(precision, recall, k)
