"""Memorization / data-copying statistics on feature arrays.

Roles: ``train_features`` T [l, D] (the generator's training set), ``test_features`` P_n
[n, D] (held-out real data from the same distribution, never seen in training) and
``generated_features`` Q_m [m, D]. Every statistic is reported next to the same statistic
computed for the held-out set scored as if it were a generator, because a perfect
generator is not at zero on any of them.

- C_T (Meehan, Chaudhuri & Dasgupta, AISTATS 2020): k-means cells fitted on T (seeded
  k-means++ then Lloyd). In each cell pi, L(x) is the distance from x to its nearest
  training point *in the same cell* (as the reference code ``data_copying_tests.py``
  fits its NN model on the cell's training points); Z_U(pi) is the Mann-Whitney U of
  {L(q)} (generated) against {L(p)} (test), Z-scored under H0 with the reference code's
  continuity correction: ``(U - (n m / 2 - 0.5)) / sqrt(n m (n + m + 1) / 12)``.
  Cells used: Pi_tau = {pi : m_pi / m > tau}, tau = ``min_cell_generated / m`` with
  ``min_cell_generated = 20`` as in the paper (a cell needs more than 20 generated samples).
  ``C_T = sum_{Pi_tau} (n_pi / n) Z_U(pi) / sum_{Pi_tau} (n_pi / n)``.
  C_T << 0: generated samples are closer to T than held-out data is (copying);
  C_T >> 0: farther (underfitting); |C_T| <~ 1 is consistent with generalization.
  Difference from the reference code: it raises when *any* cell lacks test samples; here
  only cells in Pi_tau must have test samples (the others carry no weight).
- NN distance ratio: ``d1 / d2`` with d1, d2 the distances to the first and second nearest
  training points; a sample is flagged when the ratio is below ``ratio_threshold`` (1/3).
  0/0 (a copy of a duplicated training point) counts as ratio 0.
- Authenticity (Alaa et al., ICML 2022): a generated g with nearest training point r* is
  authentic when ``d(r*, nearest other training point) < d(g, r*)``; reported as a
  fraction in [0, 1] (AuthPct / 100). Calibrated by scoring the test set the same way.
- Train-vs-test gap: ``mean_g d(g, T) - mean_g d(g, P_n)`` for generated samples, and the
  same for held-out samples with leave-one-out distances inside P_n; ``gap_excess`` is
  their difference divided by the held-out mean NN distance to T (dimensionless, negative
  when generated samples sit closer to T than held-out data does).

All nearest-neighbour distances are exact float64 Euclidean distances (see :mod:`.knn`), and the
k-means seeding and cell assignment decide on exact distances too, so neighbours, cells and every
statistic come out the same on any CPU and for any ``chunk_size`` (no BLAS rounding in a decision).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.stats import rankdata

from ..errors import ConfigError
from ..util.progress import SILENT, Reporter
from .knn import (
    DEFAULT_MAX_MEMORY_BYTES,
    as_features,
    check_same_width,
    exact_squared_distances,
    kth_neighbour_distances,
    nearest_neighbours,
    plan_chunk_rows,
)

#: Cells with at most this many generated samples are left out of C_T (tau = 20 / m in the paper).
MIN_CELL_GENERATED = 20
#: Number of k-means cells fitted on the training set (the paper's MNIST setting).
N_CELLS = 50
#: NN distance-ratio threshold below which a sample counts as memorized.
RATIO_THRESHOLD = 1.0 / 3.0

Verdict = Literal["copying", "no-evidence", "underfitting"]


# ----------------------------------------------------------------------------------------- k-means
def kmeans(
    features: np.ndarray,
    n_clusters: int,
    *,
    seed: int,
    max_iter: int = 100,
    tol: float = 1e-4,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    on_iteration: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding; returns ``(centers [K, D], labels [N])``.

    Stops when labels no longer change, when the summed squared centre shift is at most
    ``tol`` times the mean per-dimension variance (sklearn's rule), or after ``max_iter``
    rounds. An emptied cell is re-seeded with the point farthest from its centre.
    ``labels`` is the nearest-centre assignment for the returned centres. Deterministic
    for a given seed and identical on every machine: seeding and assignment use exact
    distances (no BLAS rounding in any decision). Raises ConfigError when N < n_clusters.
    ``on_iteration(1)`` (optional) is called after each Lloyd round.
    """
    x = as_features(features, "train_features")
    n = len(x)
    if n_clusters < 1 or n_clusters > n:
        raise ConfigError(
            f"k-means with n_clusters={n_clusters} (C_T's n_cells) needs between 1 and {n} clusters, "
            f"the number of train_features rows"
        )
    rng = np.random.default_rng(seed)
    offset = x.mean(axis=0)
    x = x - offset  # centred coordinates for the distance expansion; centres are returned uncentred

    def sq_to(center: np.ndarray) -> np.ndarray:  # exact squared distances [N] (no BLAS: same on every CPU)
        return exact_squared_distances(x, np.broadcast_to(center, x.shape), max_memory_bytes=max_memory_bytes)

    centers = np.empty((n_clusters, x.shape[1]))
    centers[0] = x[rng.integers(n)]
    closest = sq_to(centers[0])
    for c in range(1, n_clusters):
        total = closest.sum()
        pick = rng.integers(n) if total <= 0 else rng.choice(n, p=closest / total)
        centers[c] = x[pick]
        np.minimum(closest, sq_to(centers[c]), out=closest)

    shift_tol = tol * float(x.var(axis=0).mean())
    rows = plan_chunk_rows(n_clusters, chunk_size=chunk_size, max_memory_bytes=max_memory_bytes, n_rows=n)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        new_labels, dist = _nearest_center(x, centers, rows, max_memory_bytes)
        if on_iteration is not None:
            on_iteration(1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=n_clusters)
        sums = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_clusters, n)) @ x
        new_centers = centers.copy()
        filled = counts > 0
        new_centers[filled] = sums[filled] / counts[filled, None]
        if not filled.all():
            far = np.argsort(-dist, kind="stable")
            new_centers[~filled] = x[far[: int((~filled).sum())]]
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= shift_tol:
            break
    centers = centers + offset
    return centers, assign_cells(features, centers, name="train_features", chunk_size=chunk_size,
                                 max_memory_bytes=max_memory_bytes)


def _nearest_center(
    x: np.ndarray, centers: np.ndarray, rows: int, max_memory_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre index [N] (ties to the lower index) and its distance [N], in blocks of ``rows``.

    Decided on exact distances (see :func:`.knn.nearest_neighbours`), so labels, and hence the
    k-means cells and C_T, do not depend on BLAS rounding or on the block size.
    """
    dist, idx = nearest_neighbours(x, centers, 1, chunk_size=rows, max_memory_bytes=max_memory_bytes,
                                   query_name="features", base_name="k-means centres")
    return idx[:, 0], dist[:, 0]


def assign_cells(
    features: np.ndarray,
    centers: np.ndarray,
    *,
    name: str = "features",
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
) -> np.ndarray:
    """Index [N] of the nearest centre (ties to the lower index) for each row of features [N, D].

    Coordinates are centred at the centres' mean, so every set is assigned by the same arithmetic.
    """
    x = as_features(features, name)
    c = as_features(centers, "k-means centres")
    check_same_width(**{name: x, "k-means centres": c})
    offset = c.mean(axis=0)
    rows = plan_chunk_rows(len(c), chunk_size=chunk_size, max_memory_bytes=max_memory_bytes, n_rows=len(x))
    return _nearest_center(x - offset, c - offset, rows, max_memory_bytes)[0]


# ---------------------------------------------------------------------------------------------- C_T
def mann_whitney_z(generated_values: np.ndarray, test_values: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of generated [m] against test [n] values, as in Meehan et al.'s code.

    U counts pairs with generated > test (ties count 1/2); Z = (U - (n m / 2 - 0.5)) /
    sqrt(n m (n + m + 1) / 12) (continuity correction as in the reference; no tie correction).
    Negative when generated values tend to be smaller.
    """
    q = np.asarray(generated_values, dtype=np.float64).ravel()
    p = np.asarray(test_values, dtype=np.float64).ravel()
    m, n = len(q), len(p)
    if m == 0 or n == 0:
        raise ConfigError(f"Mann-Whitney U needs samples on both sides; got {m} generated and {n} test values")
    ranks = rankdata(np.concatenate([q, p]))
    u = ranks[:m].sum() - m * (m + 1) / 2.0
    mean = n * m / 2.0 - 0.5
    std = np.sqrt(n * m * (n + m + 1) / 12.0)
    return float((u - mean) / std)


@dataclass(frozen=True, eq=False)
class CTResult:
    """C_T and its per-cell parts; arrays are [n_cells], ``cell_z`` is NaN for cells outside Pi_tau."""

    ct: float
    cells_used: int
    n_cells: int
    min_cell_generated: int
    cell_z: np.ndarray = field(repr=False)
    cell_train_counts: np.ndarray = field(repr=False)
    cell_test_counts: np.ndarray = field(repr=False)
    cell_generated_counts: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"ct": self.ct, "ct_cells_used": self.cells_used, "ct_n_cells": self.n_cells,
                "ct_min_cell_generated": self.min_cell_generated}


def ct_from_cells(
    train_features: np.ndarray,
    train_cells: np.ndarray,
    test_features: np.ndarray,
    test_cells: np.ndarray,
    generated_features: np.ndarray,
    generated_cells: np.ndarray,
    *,
    min_cell_generated: int = MIN_CELL_GENERATED,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
) -> CTResult:
    """C_T given a partition: integer cell labels [l], [n], [m] in 0..K-1 for the three sets.

    Raises ConfigError when no cell holds more than ``min_cell_generated`` generated samples,
    or when a used cell has no training or no test samples (use fewer cells).
    """
    train = as_features(train_features, "train_features")
    test = as_features(test_features, "test_features")
    gen = as_features(generated_features, "generated_features")
    check_same_width(train_features=train, test_features=test, generated_features=gen)
    if not isinstance(min_cell_generated, (int, np.integer)) or min_cell_generated < 0:
        raise ConfigError(f"min_cell_generated must be a non-negative integer, got {min_cell_generated!r}")
    labels = {}
    for name, arr, lab in (("train", train, train_cells), ("test", test, test_cells), ("generated", gen, generated_cells)):
        lab = np.asarray(lab)
        if lab.shape != (len(arr),) or not np.issubdtype(lab.dtype, np.integer) or (len(lab) and lab.min() < 0):
            raise ConfigError(f"{name}_cells must be {len(arr)} non-negative integer cell labels; got shape {lab.shape}, "
                              f"dtype {lab.dtype}")
        labels[name] = lab.astype(np.int64)
    n_cells = int(max(lab.max() for lab in labels.values())) + 1
    counts = {name: np.bincount(lab, minlength=n_cells) for name, lab in labels.items()}
    m, n = len(gen), len(test)
    used = counts["generated"] > min_cell_generated
    if not used.any():
        raise ConfigError(
            f"C_T: no cell holds more than min_cell_generated={min_cell_generated} of the {m} generated samples "
            f"({n_cells} cells); provide more generated samples or use fewer cells (n_cells)"
        )
    for name in ("train", "test"):
        lacking = np.nonzero(used & (counts[name] == 0))[0]
        if len(lacking):
            raise ConfigError(
                f"C_T: cells {lacking.tolist()} hold generated samples but no {name} samples; use fewer cells "
                f"(n_cells={n_cells}) or more {name} data"
            )
    cell_z = np.full(n_cells, np.nan)
    for c in np.nonzero(used)[0]:
        cell_train = train[labels["train"] == c]
        l_gen, _ = nearest_neighbours(gen[labels["generated"] == c], cell_train, 1, max_memory_bytes=max_memory_bytes,
                                      query_name="generated_features", base_name="train_features")
        l_test, _ = nearest_neighbours(test[labels["test"] == c], cell_train, 1, max_memory_bytes=max_memory_bytes,
                                       query_name="test_features", base_name="train_features")
        cell_z[c] = mann_whitney_z(l_gen[:, 0], l_test[:, 0])
    weights = counts["test"][used] / n
    ct = float((weights * cell_z[used]).sum() / weights.sum())  # numpy summation, not a BLAS dot: same bits on any CPU
    return CTResult(ct, int(used.sum()), n_cells, int(min_cell_generated), cell_z,
                    counts["train"], counts["test"], counts["generated"])


def data_copying_ct(
    train_features: np.ndarray,
    test_features: np.ndarray,
    generated_features: np.ndarray,
    *,
    seed: int,
    n_cells: int = N_CELLS,
    min_cell_generated: int = MIN_CELL_GENERATED,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: Reporter | None = None,
) -> CTResult:
    """The C_T three-sample data-copying test with ``n_cells`` seeded k-means cells fitted on the training set.

    train [l, D], test [n, D], generated [m, D]. Negative = copying, positive = underfitting.
    Raises ConfigError as :func:`ct_from_cells` does, or when l < n_cells. ``progress``: a
    :class:`genbench.util.progress.Reporter` for the k-means phase (default silent).
    """
    with (progress or SILENT).phase(f"k-means ({n_cells} cells) on the training set", None, "iterations") as bar:
        centers, train_cells = kmeans(train_features, n_cells, seed=seed, chunk_size=chunk_size,
                                      max_memory_bytes=max_memory_bytes, on_iteration=bar.advance)
    opts: dict[str, Any] = {"chunk_size": chunk_size, "max_memory_bytes": max_memory_bytes}
    test_cells = assign_cells(test_features, centers, name="test_features", **opts)
    gen_cells = assign_cells(generated_features, centers, name="generated_features", **opts)
    result = ct_from_cells(train_features, train_cells, test_features, test_cells, generated_features, gen_cells,
                           min_cell_generated=min_cell_generated, max_memory_bytes=max_memory_bytes)
    if result.n_cells != n_cells:  # trailing cells without any sample: keep the requested count visible
        pad = n_cells - result.n_cells
        result = CTResult(result.ct, result.cells_used, n_cells, result.min_cell_generated,
                          np.pad(result.cell_z, (0, pad), constant_values=np.nan),
                          *(np.pad(a, (0, pad)) for a in (result.cell_train_counts, result.cell_test_counts,
                                                          result.cell_generated_counts)))
    return result


# ------------------------------------------------------------------------------- sample-level probes
def nn_distance_ratio(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``first / second`` per sample [N] (distances to the 1st and 2nd nearest training points); 0/0 -> 0."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    out = np.zeros_like(first)
    np.divide(first, second, out=out, where=second > 0)
    return out


def _authentic(nn_distance: np.ndarray, nn_index: np.ndarray, train_nn_distance: np.ndarray) -> np.ndarray:
    """Alaa et al.: authentic when the nearest training point's own NN distance is below the sample's distance."""
    return train_nn_distance[nn_index] < nn_distance


@dataclass(frozen=True, eq=False)
class MemorizationStats:
    """All memorization statistics for one generated set, with the held-out calibration.

    Scalars are in :meth:`to_dict`; per-generated-sample arrays [m] are kept for galleries.
    Fractions are in [0, 1]; distances are in feature units.
    """

    n_train: int
    n_test: int
    n_generated: int
    seed: int
    ct: CTResult
    ratio_threshold: float
    nn_ratio_fraction: float  # generated samples with d1/d2 < ratio_threshold
    heldout_nn_ratio_fraction: float  # the same for test samples
    authenticity: float
    heldout_authenticity: float
    generated_to_train_mean: float
    generated_to_test_mean: float
    heldout_to_train_mean: float
    heldout_to_test_mean: float  # leave-one-out inside the test set
    generated_nn_index: np.ndarray = field(repr=False)  # [m] nearest training index
    generated_nn_distance: np.ndarray = field(repr=False)  # [m] d1
    generated_nn2_distance: np.ndarray = field(repr=False)  # [m] d2
    generated_authentic: np.ndarray = field(repr=False)  # [m] bool

    @property
    def generated_ratio(self) -> np.ndarray:
        """d1 / d2 per generated sample [m]."""
        return nn_distance_ratio(self.generated_nn_distance, self.generated_nn2_distance)

    @property
    def gap_generated(self) -> float:
        """mean NN distance of generated samples to train minus to test."""
        return self.generated_to_train_mean - self.generated_to_test_mean

    @property
    def gap_heldout(self) -> float:
        """mean NN distance of held-out samples to train minus to the rest of the test set."""
        return self.heldout_to_train_mean - self.heldout_to_test_mean

    @property
    def gap_excess(self) -> float:
        """(gap_generated - gap_heldout) / heldout_to_train_mean; negative = closer to train than held-out data."""
        scale = self.heldout_to_train_mean
        diff = self.gap_generated - self.gap_heldout
        return float(diff / scale) if scale > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "n_train": self.n_train, "n_test": self.n_test, "n_generated": self.n_generated, "seed": self.seed,
            **self.ct.to_dict(),
            "ratio_threshold": self.ratio_threshold,
            "nn_ratio_fraction": self.nn_ratio_fraction,
            "heldout_nn_ratio_fraction": self.heldout_nn_ratio_fraction,
            "authenticity": self.authenticity,
            "heldout_authenticity": self.heldout_authenticity,
            "generated_to_train_mean": self.generated_to_train_mean,
            "generated_to_test_mean": self.generated_to_test_mean,
            "heldout_to_train_mean": self.heldout_to_train_mean,
            "heldout_to_test_mean": self.heldout_to_test_mean,
            "gap_generated": self.gap_generated,
            "gap_heldout": self.gap_heldout,
            "gap_excess": self.gap_excess,
        }


def memorization_statistics(
    train_features: np.ndarray,
    test_features: np.ndarray,
    generated_features: np.ndarray,
    *,
    seed: int,
    n_cells: int = N_CELLS,
    min_cell_generated: int = MIN_CELL_GENERATED,
    ratio_threshold: float = RATIO_THRESHOLD,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: Reporter | None = None,
) -> MemorizationStats:
    """Compute C_T, the NN distance ratio, authenticity and the train-vs-test gap in one pass.

    train [l, D] (l >= max(2, n_cells)), test [n, D] (n >= 2), generated [m, D]; ``seed``
    drives the k-means cells of C_T. Raises InputError for malformed features and
    ConfigError for too few samples (see :func:`ct_from_cells`). ``progress``: a
    :class:`genbench.util.progress.Reporter` for the k-means and k-NN phases (default silent).
    """
    progress = progress or SILENT
    train = as_features(train_features, "train_features")
    test = as_features(test_features, "test_features")
    gen = as_features(generated_features, "generated_features")
    check_same_width(train_features=train, test_features=test, generated_features=gen)
    if len(train) < 2 or len(test) < 2:
        raise ConfigError(f"memorization statistics need at least 2 train and 2 test samples; got {len(train)} "
                          f"train_features and {len(test)} test_features")
    if not 0 < ratio_threshold <= 1:
        raise ConfigError(f"ratio_threshold must be in (0, 1], got {ratio_threshold}")
    opts: dict[str, Any] = {"chunk_size": chunk_size, "max_memory_bytes": max_memory_bytes}

    ct = data_copying_ct(train, test, gen, seed=seed, n_cells=n_cells, min_cell_generated=min_cell_generated,
                         progress=progress, **opts)

    with progress.phase("k-NN: generated and test samples to the training set", len(gen) + len(test), "rows") as bar:
        gen_d, gen_i = nearest_neighbours(gen, train, 2, query_name="generated_features", base_name="train_features",
                                          on_rows=bar.advance, **opts)
        test_d, test_i = nearest_neighbours(test, train, 2, query_name="test_features", base_name="train_features",
                                            on_rows=bar.advance, **opts)
    needed = np.unique(np.concatenate([gen_i[:, 0], test_i[:, 0]]))
    with progress.phase("k-NN: nearest training samples to their own neighbours", len(needed), "rows") as bar:
        needed_d, _ = nearest_neighbours(train[needed], train, 1, exclude=needed, query_name="train_features",
                                         base_name="train_features", on_rows=bar.advance, **opts)
    train_nn = np.full(len(train), np.nan)
    train_nn[needed] = needed_d[:, 0]
    gen_authentic = _authentic(gen_d[:, 0], gen_i[:, 0], train_nn)
    test_authentic = _authentic(test_d[:, 0], test_i[:, 0], train_nn)

    with progress.phase("k-NN: generated and test samples to the test set", len(gen) + len(test), "rows") as bar:
        gen_to_test, _ = nearest_neighbours(gen, test, 1, query_name="generated_features", base_name="test_features",
                                            on_rows=bar.advance, **opts)
        test_loo = kth_neighbour_distances(test, 1, name="test_features", on_rows=bar.advance, **opts)

    return MemorizationStats(
        n_train=len(train), n_test=len(test), n_generated=len(gen), seed=int(seed), ct=ct,
        ratio_threshold=float(ratio_threshold),
        nn_ratio_fraction=float((nn_distance_ratio(gen_d[:, 0], gen_d[:, 1]) < ratio_threshold).mean()),
        heldout_nn_ratio_fraction=float((nn_distance_ratio(test_d[:, 0], test_d[:, 1]) < ratio_threshold).mean()),
        authenticity=float(gen_authentic.mean()),
        heldout_authenticity=float(test_authentic.mean()),
        generated_to_train_mean=float(gen_d[:, 0].mean()),
        generated_to_test_mean=float(gen_to_test[:, 0].mean()),
        heldout_to_train_mean=float(test_d[:, 0].mean()),
        heldout_to_test_mean=float(test_loo.mean()),
        generated_nn_index=gen_i[:, 0],
        generated_nn_distance=gen_d[:, 0],
        generated_nn2_distance=gen_d[:, 1],
        generated_authentic=gen_authentic,
    )


# ------------------------------------------------------------------------------------------ verdict
@dataclass(frozen=True)
class MemorizationThresholds:
    """When :func:`memorization_verdict` calls a generated set copying or underfitting.

    - ``ct_copying``: C_T below this is a copying signal. Each Z_U is about N(0, 1) under H0
      and C_T is their weighted mean, so -3 is a one-sided p of about 0.001 (our convention;
      the paper gives no threshold).
    - ``ct_underfitting``: C_T above this is underfitting (when no copying verdict is reached).
    - ``nn_ratio_excess``: copying signal when the fraction of generated samples with NN
      distance ratio below the ratio threshold exceeds the held-out fraction by more than
      this (0.01 = 1 % of samples).
    - ``authenticity_drop``: copying signal when authenticity is below the held-out
      authenticity by more than this (0.10 = 10 points of AuthPct).
    - ``gap_excess``: copying signal when :attr:`MemorizationStats.gap_excess` is below this
      (generated samples sit closer to train, relative to test, than held-out data does, by
      more than this fraction of the held-out NN distance to train).
    - ``require_train_specific``: C_T and authenticity ask whether generated samples are
      closer to the training set than held-out data is. Samples that shrink towards the
      modes are closer to *all* data, seen in training or not, so both fire without any
      copying (the confound of Stein et al. 2023). ``nn_ratio`` and ``gap`` ask whether the
      samples sit closer to particular training points, or to the training set than to the
      test set, which shrinkage does not change. Measured on a 10-component Gaussian mixture
      in 32 dims (train 4000, test and generated 2000, 10 cells): scaling every component's
      spread by 0.95 gives C_T = -3.6, by 0.5 gives C_T = -17.8 and authenticity 0.06
      (0.76 held out), while gap_excess stays within 0.01 of 0 and no sample has a ratio
      below 1/3; training copies plus N(0, s^2) noise with s up to the data's own spread give
      gap_excess <= -0.27 (tests/unit/test_memorization.py checks the 0.5 case). When True
      (default), "copying" needs at least one of ``nn_ratio`` / ``gap``; C_T or authenticity
      alone then only show in :func:`copying_signals`.
    """

    ct_copying: float = -3.0
    ct_underfitting: float = 3.0
    nn_ratio_excess: float = 0.01
    authenticity_drop: float = 0.10
    gap_excess: float = -0.10
    require_train_specific: bool = True

    def to_dict(self) -> dict:
        return {"ct_copying": self.ct_copying, "ct_underfitting": self.ct_underfitting,
                "nn_ratio_excess": self.nn_ratio_excess, "authenticity_drop": self.authenticity_drop,
                "gap_excess": self.gap_excess, "require_train_specific": self.require_train_specific}


#: Signals of :func:`copying_signals` that compare distances to train against distances to test.
TRAIN_SPECIFIC_SIGNALS = ("nn_ratio", "gap")


def copying_signals(stats: MemorizationStats, thresholds: MemorizationThresholds = MemorizationThresholds()) -> list[str]:
    """Names of the copying criteria that fire, from ``ct``, ``nn_ratio``, ``authenticity``, ``gap``."""
    fired = []
    if stats.ct.ct < thresholds.ct_copying:
        fired.append("ct")
    if stats.nn_ratio_fraction - stats.heldout_nn_ratio_fraction > thresholds.nn_ratio_excess:
        fired.append("nn_ratio")
    if stats.heldout_authenticity - stats.authenticity > thresholds.authenticity_drop:
        fired.append("authenticity")
    if stats.gap_excess < thresholds.gap_excess:
        fired.append("gap")
    return fired


def memorization_verdict(stats: MemorizationStats, thresholds: MemorizationThresholds = MemorizationThresholds()) -> Verdict:
    """``"copying"``, ``"underfitting"`` or ``"no-evidence"``.

    "copying" when a copying signal fires (with ``require_train_specific``, one of
    ``nn_ratio`` / ``gap``); otherwise "underfitting" when C_T > ``ct_underfitting``;
    otherwise "no-evidence".
    """
    fired = copying_signals(stats, thresholds)
    if thresholds.require_train_specific:
        fired = [name for name in fired if name in TRAIN_SPECIFIC_SIGNALS]
    if fired:
        return "copying"
    if stats.ct.ct > thresholds.ct_underfitting:
        return "underfitting"
    return "no-evidence"


@dataclass(frozen=True)
class SuspiciousSample:
    """A generated sample and its nearest training sample, for a side-by-side gallery."""

    generated_index: int
    train_index: int
    distance: float  # d1, to the nearest training sample
    ratio: float  # d1 / d2

    def to_dict(self) -> dict:
        return {"generated_index": self.generated_index, "train_index": self.train_index,
                "distance": self.distance, "ratio": self.ratio}


def most_suspicious(stats: MemorizationStats, count: int = 16) -> list[SuspiciousSample]:
    """The ``count`` generated samples most like copies: smallest NN distance ratio first,
    then smallest distance, then lowest index."""
    if count < 0:
        raise ConfigError(f"count must be non-negative, got {count}")
    ratio = stats.generated_ratio
    order = np.lexsort((np.arange(len(ratio)), stats.generated_nn_distance, ratio))[:count]
    return [SuspiciousSample(int(i), int(stats.generated_nn_index[i]), float(stats.generated_nn_distance[i]),
                             float(ratio[i])) for i in order]
