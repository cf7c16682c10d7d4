"""Per-sample realism (Kynkaenniemi et al. 2019) and rarity (Han et al. 2022) scores of generated samples.

Both use k-NN balls around the *reference* (real) samples: ``r_i`` = distance from reference i to its
k-th nearest other reference sample.

- **Realism** (kynkaat/improved-precision-and-recall-metric, ``ManifoldEstimator.evaluate``): the
  authors' code works with *squared* distances and prunes the balls whose squared radius lies above the
  50th percentile (``clamp_to_percentile=50``, the setting of their realism experiments):

      realism(g) = max over kept i of  r_i^2 / (|g - ref_i|^2 + 1e-5)

  The paper writes the unsquared ratio ``max r_i / |g - ref_i|``; the code's value is its square (up to
  the 1e-5), and genbench reports the code's. Above 1: g lies inside some kept ball.
- **Rarity** (hichoe95/Rarity-Score, ``MANIFOLD.rarity``): the radius of the *smallest* reference ball
  that holds g (strict ``<``), and 0 for a sample outside every ball (the code's value; it means "not on
  the real manifold", not "common"). A large rarity: g sits only in the sparse parts of the real manifold.

Set summaries: the median realism (one copy of a reference image scores ``r^2 / 1e-5``, so a mean would
say more about copies than about the set) and the share above 1; the mean rarity over the samples inside
some ball and that share.

Memory and exactness: one sweep of generated rows against all reference samples in blocks
(:mod:`.knn`); ball membership for rarity is decided on exact distances (:class:`.knn.BallBlock`), and
realism ratios whose denominators the BLAS expansion cannot give to 1e-9 (near-copies) are recomputed
exactly, so both agree with a float64 brute force to about 1e-12 on any CPU and for any chunking.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..util.progress import SILENT, Reporter
from .knn import (
    DEFAULT_MAX_MEMORY_BYTES,
    as_features,
    check_same_width,
    exact_squared_distances,
    iter_ball_blocks,
    kth_neighbour_distances,
)

REALISM_K = 3
RARITY_K = 3
#: Balls whose squared radius is above this percentile are left out of realism (the authors' clamp).
REALISM_PERCENTILE = 50.0
#: The authors' eps added to the squared distance.
REALISM_EPS = 1e-5
#: Denominators within this many expansion error bounds of 0 are recomputed exactly.
_RECOMPUTE_BOUNDS = 1e4


@dataclass(frozen=True, eq=False)
class SampleScores:
    """Per generated sample [M]: realism and rarity (0 outside every ball)."""

    realism: np.ndarray = field(repr=False)
    rarity: np.ndarray = field(repr=False)
    realism_k: int = REALISM_K
    rarity_k: int = RARITY_K

    def realism_summary(self) -> dict:
        return {"value": float(np.median(self.realism)), "summary": "median over generated samples",
                "mean_realism": float(self.realism.mean()), "fraction_above_1": float((self.realism > 1).mean()),
                "k": self.realism_k, "percentile": REALISM_PERCENTILE}

    def rarity_summary(self) -> dict:
        inside = self.rarity > 0
        return {"value": float(self.rarity[inside].mean()) if inside.any() else 0.0,
                "summary": "mean over generated samples inside some reference ball",
                "fraction_in_balls": float(inside.mean()), "k": self.rarity_k}


def _check_k(k: int, flag: str, n_ref: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"{flag} must be a positive integer, got {k!r}")
    if n_ref < k + 1:
        raise ConfigError(f"k={k} ({flag}) needs at least {k + 1} reference samples (the k-th neighbour excludes the "
                          f"point itself); the reference has {n_ref}")


def sample_scores(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    realism_k: int = REALISM_K,
    rarity_k: int = RARITY_K,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: Reporter | None = None,
) -> SampleScores:
    """Realism and rarity of each generated sample [M, D] against reference samples [N, D] (module docstring).

    Raises ConfigError when N < k + 1 for either k, InputError for malformed features.
    """
    progress = progress or SILENT
    ref = as_features(reference, "reference features")
    gen = as_features(generated, "generated features")
    check_same_width(**{"reference features": ref, "generated features": gen})
    _check_k(realism_k, "--realism-k", len(ref))
    _check_k(rarity_k, "--rarity-k", len(ref))
    ks = sorted({realism_k, rarity_k})
    with progress.phase(f"k-NN radii of the reference (k={','.join(map(str, ks))})", len(ref), "rows") as bar:
        radii = kth_neighbour_distances(ref, ks, name="reference features", chunk_size=chunk_size,
                                        max_memory_bytes=max_memory_bytes, on_rows=bar.advance)
    rarity_r = radii[:, ks.index(rarity_k)]
    realism_r2 = radii[:, ks.index(realism_k)] ** 2
    kept = realism_r2 <= np.percentile(realism_r2, REALISM_PERCENTILE)
    kept_r2 = np.where(kept, realism_r2, 0.0)

    m = len(gen)
    realism = np.empty(m)
    rarity = np.empty(m)
    with progress.phase("k-NN balls: generated rows against the reference", m, "rows") as bar:
        for block in iter_ball_blocks(gen, ref, chunk_size=chunk_size, max_memory_bytes=max_memory_bytes):
            s, e = block.start, block.stop
            inside = block.within(rarity_r[None, :])
            rarity[s:e] = np.where(inside, rarity_r[None, :], np.inf).min(axis=1)
            del inside
            sq = block.squared.copy()
            rows, cols = np.nonzero(sq <= _RECOMPUTE_BOUNDS * block.bound[:, None])
            if len(rows):
                sq[rows, cols] = exact_squared_distances(gen[rows + s], ref[cols], max_memory_bytes=max_memory_bytes)
            sq += REALISM_EPS
            realism[s:e] = (kept_r2[None, :] / sq).max(axis=1)
            bar.advance(e - s)
    rarity[np.isinf(rarity)] = 0.0
    return SampleScores(realism, rarity, int(realism_k), int(rarity_k))
