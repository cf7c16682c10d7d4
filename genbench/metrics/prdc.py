"""Improved precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Roles: ``real_features`` [N, D] are the reference samples (use a held-out split to say
anything about memorization: copies of the reference set score perfectly on all four),
``fake_features`` [M, D] are the generated samples. ``NND_k(x)`` is the distance from x to
its k-th nearest neighbour in its own set, excluding itself; ``B(x, r)`` is the open ball.

- precision = fraction of fake samples inside the real manifold
  ``U_i B(real_i, NND_k(real_i))`` (fidelity; higher = generated samples look real).
- recall = fraction of real samples inside the fake manifold
  ``U_j B(fake_j, NND_k(fake_j))`` (diversity; higher = more of the real data is reproduced).
- density = ``1/(k M) sum_j sum_i 1[fake_j in B(real_i, NND_k(real_i))]``: how many real balls
  contain each fake sample, normalised so that fake ~ real gives about 1; unbounded above
  (mode collapse onto dense regions gives values >> 1).
- coverage = fraction of real samples whose ball ``B(real_i, NND_k(real_i))`` contains at
  least one fake sample (diversity measured with real balls only; fake ~ real gives about
  ``1 - 2^-k`` for M = N).

Definitions match the ``prdc`` package (clovaai/generative-evaluation-prdc, ``compute_prdc``)
exactly: strict ``<`` for ball membership and the k-th neighbour excluding the point itself.
Difference from the StyleGAN2-ADA / Kynkaanniemi code: it uses ``<=``; the two differ only on
exact ties (e.g. duplicated points giving a radius of 0).

Ties are exact here: every radius and every membership test that the BLAS expansion cannot
decide is computed as ``sqrt(sum((a - b)^2))`` in float64 (:func:`.knn.exact_squared_distances`),
so a fake sample that is a copy of real_l, tested against real_i's ball whose radius is
``d(real_i, real_l)``, gets bit-identical distance and radius and is *outside* (strict ``<``),
and copies have distance exactly 0, on every machine and for any chunking. The prdc package
uses sklearn's expansion (in the input dtype, float32 in practice), so on such ties, and on
float32 comparisons that tie within float32 rounding, its answer depends on rounding; away
from ties the two agree exactly. Example: fake = a permutation of real (no two distinct pairs at
the same distance) gives density exactly 1, each ball holding its centre and its k - 1 nearest
neighbours; counting the boundary copies by rounding gave 1.0 to 1.1 depending on CPU and chunking.

Defaults: k = 3 for precision/recall (``pr50k3``), k = 5 for density/coverage.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..util.progress import SILENT, Reporter
from .knn import (
    DEFAULT_MAX_MEMORY_BYTES,
    as_features,
    check_same_width,
    iter_ball_blocks,
    kth_neighbour_distances,
)

PRECISION_RECALL_K = 3
DENSITY_COVERAGE_K = 5


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision and recall, both in [0, 1]."""

    precision: float
    recall: float
    k: int
    n_real: int
    n_fake: int

    @property
    def f_score(self) -> float:
        """Harmonic mean 2PR/(P+R) (0 when both are 0), as torch-fidelity reports."""
        total = self.precision + self.recall
        return 0.0 if total == 0 else 2 * self.precision * self.recall / total

    def to_dict(self) -> dict:
        return {**asdict(self), "f_score": self.f_score}


@dataclass(frozen=True)
class DensityCoverage:
    """Density (>= 0, about 1 when fake ~ real) and coverage in [0, 1]."""

    density: float
    coverage: float
    k: int
    n_real: int
    n_fake: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PRDC:
    """All four numbers from one pass; ``precision_recall_k`` and ``density_coverage_k`` may differ."""

    precision: float
    recall: float
    density: float
    coverage: float
    precision_recall_k: int
    density_coverage_k: int
    n_real: int
    n_fake: int

    def to_dict(self) -> dict:
        return asdict(self)


def _check_k(k: int, what: str, n_real: int, n_fake: int | None) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"{what} k must be a positive integer, got {k!r}")
    short = n_real < k + 1 or (n_fake is not None and n_fake < k + 1)
    if short:
        needs = "real and fake samples" if n_fake is not None else "real samples"
        raise ConfigError(
            f"{what} with k={k} needs at least {k + 1} {needs} (the k-th neighbour of a point excludes "
            f"itself); got {n_real} real_features" + (f" and {n_fake} fake_features" if n_fake is not None else "")
        )


def _prdc(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    pr_k: int | None,
    dc_k: int | None,
    chunk_size: int | None,
    max_memory_bytes: int,
    progress: Reporter | None = None,
) -> dict:
    progress = progress or SILENT
    real = as_features(real_features, "real_features")
    fake = as_features(fake_features, "fake_features")
    check_same_width(real_features=real, fake_features=fake)
    n_real, n_fake = len(real), len(fake)
    if pr_k is not None:
        _check_k(pr_k, "precision/recall", n_real, n_fake)
    if dc_k is not None:
        _check_k(dc_k, "density/coverage", n_real, None)
    opts: dict[str, Any] = {"chunk_size": chunk_size, "max_memory_bytes": max_memory_bytes}

    real_ks = sorted({k for k in (pr_k, dc_k) if k is not None})
    shown_ks = ",".join(map(str, real_ks))
    with progress.phase(f"k-NN radii of the reference (k={shown_ks})", n_real, "rows") as bar:
        radii = kth_neighbour_distances(real, real_ks, name="real_features", on_rows=bar.advance, **opts)
    real_radius = {k: radii[:, i] for i, k in enumerate(real_ks)}
    fake_radius = None
    if pr_k is not None:
        with progress.phase(f"k-NN radii of the generated samples (k={pr_k})", n_fake, "rows") as bar:
            fake_radius = kth_neighbour_distances(fake, pr_k, name="fake_features", on_rows=bar.advance, **opts)

    # One sweep over blocks of real rows against all fake samples.
    fake_in_real = {k: np.zeros(n_fake, dtype=np.int64) for k in real_ks}  # real balls containing fake_j
    covered = np.zeros(n_real, dtype=bool)  # real_i's ball (dc_k) contains a fake sample
    recalled = np.zeros(n_real, dtype=bool)  # real_i inside some fake ball (pr_k)
    with progress.phase("k-NN balls: reference rows against the generated samples", n_real, "rows") as bar:
        for block in iter_ball_blocks(real, fake, **opts):
            start, stop = block.start, block.stop
            for k in real_ks:
                inside = block.within(real_radius[k][start:stop, None])
                fake_in_real[k] += inside.sum(axis=0)
                if k == dc_k:
                    covered[start:stop] = inside.any(axis=1)
            if fake_radius is not None:
                recalled[start:stop] = block.within(fake_radius[None, :]).any(axis=1)
            bar.advance(stop - start)

    out: dict = {"n_real": n_real, "n_fake": n_fake}
    if pr_k is not None:
        out["precision"] = float((fake_in_real[pr_k] > 0).mean())
        out["recall"] = float(recalled.mean())
    if dc_k is not None:
        out["density"] = float(fake_in_real[dc_k].sum() / (dc_k * n_fake))
        out["coverage"] = float(covered.mean())
    return out


def precision_recall(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    *,
    k: int = PRECISION_RECALL_K,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: Reporter | None = None,
) -> PrecisionRecall:
    """Improved precision (fake inside real manifold) and recall (real inside fake manifold).

    real_features [N, D], fake_features [M, D]. Raises ConfigError when N or M < k + 1,
    InputError for malformed features.
    """
    out = _prdc(real_features, fake_features, k, None, chunk_size, max_memory_bytes, progress)
    return PrecisionRecall(out["precision"], out["recall"], int(k), out["n_real"], out["n_fake"])


def density_coverage(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    *,
    k: int = DENSITY_COVERAGE_K,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: Reporter | None = None,
) -> DensityCoverage:
    """Density and coverage (only real-sample k-NN balls are used).

    real_features [N, D], fake_features [M, D]. Raises ConfigError when N < k + 1.
    """
    out = _prdc(real_features, fake_features, None, k, chunk_size, max_memory_bytes, progress)
    return DensityCoverage(out["density"], out["coverage"], int(k), out["n_real"], out["n_fake"])


def prdc(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    *,
    precision_recall_k: int = PRECISION_RECALL_K,
    density_coverage_k: int = DENSITY_COVERAGE_K,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: Reporter | None = None,
) -> PRDC:
    """Precision, recall, density and coverage sharing one sweep of real-vs-fake distances.

    With ``precision_recall_k == density_coverage_k == k`` this equals the prdc package's
    ``compute_prdc(real_features, fake_features, nearest_k=k)`` wherever no distance ties a radius
    to within rounding; on exact ties (copies of reference points) only this result is exact.
    ``progress`` (a :class:`genbench.util.progress.Reporter`, default silent) shows the three k-NN sweeps.
    """
    out = _prdc(real_features, fake_features, precision_recall_k, density_coverage_k, chunk_size, max_memory_bytes,
                progress)
    return PRDC(
        out["precision"], out["recall"], out["density"], out["coverage"],
        int(precision_recall_k), int(density_coverage_k), out["n_real"], out["n_fake"],
    )
