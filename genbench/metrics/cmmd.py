"""CMMD (Jayasumana et al., CVPR 2024): MMD with a Gaussian RBF kernel on L2-normalised CLIP embeddings.

As the paper's reference code (google-research ``cmmd/distance.py`` and ``embedding.py``) computes it:

1. each embedding row is divided by its L2 norm (the reference's CLIP model returns normalised embeddings);
2. k(a, b) = exp(-||a - b||^2 / (2 sigma^2)) with sigma = 10, ``||a - b||^2 = |a|^2 + |b|^2 - 2 a.b``;
3. the minimum-variance (biased, V-statistic) estimator of MMD^2, Gretton et al. 2012 Eq. 5: the means of
   k over *all* pairs, diagonals included: ``mean(K_xx) + mean(K_yy) - 2 mean(K_xy)``; the two sets may have
   different sizes;
4. times 1000 (the reference's ``_SCALE``). The value is this scaled MMD^2 (no square root).

Differences from the reference, by design: genbench computes in float64 (the reference in JAX's default
float32, whose rounding moves small CMMD values in their third or fourth digit), in row blocks so that 50k
embeddings need no 50k x 50k matrix, and uses every image (the reference drops the images past the last
whole batch of ``--batch_size``).

Where the public PyTorch ports differ (see docs/feature-spaces.md): sayakpaul/cmmd-pytorch resizes with
``torch`` bicubic without antialiasing in the Hugging Face CLIP processor path instead of the reference's PIL
bicubic centre crop; torch-fidelity's ``kid_kernel='rbf'`` is an unbiased KID over random subsets, not CMMD.
"""
from __future__ import annotations

import numpy as np

SIGMA = 10.0
SCALE = 1000.0
_BLOCK = 2048


def l2_normalise(x: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """Rows of float [N, D] divided by their L2 norms (float64); ValueError for a zero or non-finite row."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{what}: expected a non-empty [N, D] array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError(f"{what}: every embedding needs a finite, non-zero norm")
    return x / norms


def _mean_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """mean over all (i, j) of exp(-gamma ||a_i - b_j||^2), block by block (float64)."""
    a_sq = np.einsum("ij,ij->i", a, a)
    b_sq = np.einsum("ij,ij->i", b, b)
    total = 0.0
    for start in range(0, len(a), _BLOCK):
        stop = min(start + _BLOCK, len(a))
        d2 = a_sq[start:stop, None] + b_sq[None, :] - 2.0 * (a[start:stop] @ b.T)
        total += float(np.exp(-gamma * d2).sum())
    return total / (len(a) * len(b))


def cmmd(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA, scale: float = SCALE,
         normalise: bool = True) -> float:
    """CMMD between embeddings ``x`` [N, D] and ``y`` [M, D] (step list in the module docstring)."""
    if normalise:
        x, y = l2_normalise(x, "first set"), l2_normalise(y, "second set")
    else:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embeddings of different widths: {x.shape[1]} and {y.shape[1]}")
    gamma = 1.0 / (2.0 * sigma**2)
    return scale * (_mean_kernel(x, x, gamma) + _mean_kernel(y, y, gamma) - 2.0 * _mean_kernel(x, y, gamma))
