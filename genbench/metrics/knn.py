"""Chunked Euclidean distances and k-nearest-neighbour queries on feature arrays.

All arithmetic is float64. Distances are first computed with the expansion
``|q - b|^2 = |q|^2 + |b|^2 - 2 q.b`` on features centred at the base set's mean
(distances are translation invariant; centring removes most of the cancellation),
one block of query rows at a time, so an N x M matrix never exists in memory: a
block holds ``rows x M`` float64 values plus temporaries, budgeted at
:data:`BYTES_PER_ENTRY` bytes per entry and kept under ``max_memory_bytes``.

The expansion goes through BLAS, whose rounding differs between CPUs (Intel / AMD,
instruction sets, thread counts), and it gives small nonzero or negative values for
exact copies. So every decision that could depend on those last bits is taken on
the *exact* squared distance :func:`exact_squared_distances`, ``sum((q - b)^2)``
of the uncentred rows in numpy's own summation (no BLAS): a rigorous bound on the
expansion's rounding error (:meth:`_Base.approx_block`) selects the few candidates
for which the expansion alone cannot decide, and only those are recomputed exactly.
Hence :func:`nearest_neighbours` returns the exact k nearest points (ties to the lower
index), exact copies give distance 0 and the same row pair always gives the same bits,
on any machine and for any chunking. :func:`iter_distance_blocks` and
:func:`pairwise_distances` return the expansion itself (accurate to about 1e-13
relative, but not bit-reproducible across machines).

Backend: numpy. Measured on the 2-core development machine (float64, 512 x 128 by
60000 x 128 blocks): matmul 30 GFLOP/s in numpy vs 22 in torch; selecting the 3
smallest per row took 0.17 s with repeated ``argmin`` vs 0.27 s with ``torch.topk``
and 0.55 s with ``argpartition``. Inputs are converted to float64 once
(8 * N * D bytes each, outside the block budget).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, InputError

#: Default memory budget for one block of distances (256 MiB).
DEFAULT_MAX_MEMORY_BYTES = 256 * 1024**2
#: Bytes budgeted per block entry: the float64 block plus one float64-sized temporary.
BYTES_PER_ENTRY = 16
#: Up to this k, neighbours are selected by repeated argmin (faster than a partition).
_ARGMIN_MAX_K = 8
#: Safety factor on the worst-case rounding bound of the expansion (see :meth:`_Base.approx_block`).
_BOUND_SAFETY = 4.0
_EPS = float(np.finfo(np.float64).eps)


def as_features(x: np.ndarray, name: str) -> np.ndarray:
    """Validate a feature array [N, D] and return it as C-contiguous float64.

    Raises InputError (naming ``name``) for a wrong rank, no rows or columns, or non-finite values.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D feature array [N, D]; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must have at least one row and one column; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values ({int((~np.isfinite(arr)).sum())} entries)")
    return arr


def check_same_width(**arrays: np.ndarray) -> None:
    """Raise InputError unless all named feature arrays have the same number of columns."""
    widths = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(widths.values())) > 1:
        shown = ", ".join(f"{n} has D={w}" for n, w in widths.items())
        raise InputError(f"feature arrays must have the same width D; {shown}")


def plan_chunk_rows(
    n_cols: int,
    *,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    n_rows: int | None = None,
) -> int:
    """Rows per block so that ``rows * n_cols * BYTES_PER_ENTRY <= max_memory_bytes``.

    ``chunk_size`` asks for a fixed number of rows; it must fit the budget. ``n_rows``
    caps the result at the number of query rows. Raises ConfigError when the requested
    chunk (or a single row) cannot fit, naming both options.
    """
    if max_memory_bytes <= 0:
        raise ConfigError(f"max_memory_bytes must be positive, got {max_memory_bytes}")
    per_row = max(int(n_cols), 1) * BYTES_PER_ENTRY
    if chunk_size is not None:
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be a positive number of rows, got {chunk_size}")
        need = chunk_size * per_row
        if need > max_memory_bytes:
            raise ConfigError(
                f"chunk_size={chunk_size} rows against {n_cols} columns needs {need} bytes "
                f"({BYTES_PER_ENTRY} per entry), more than max_memory_bytes={max_memory_bytes}; "
                f"use chunk_size <= {max_memory_bytes // per_row} or raise max_memory_bytes"
            )
        rows = chunk_size
    else:
        rows = max_memory_bytes // per_row
        if rows < 1:
            raise ConfigError(
                f"one row of distances against {n_cols} columns needs {per_row} bytes, "
                f"more than max_memory_bytes={max_memory_bytes}"
            )
    if n_rows is not None:
        rows = max(1, min(rows, n_rows))
    return int(rows)


def exact_squared_distances(
    a: np.ndarray, b: np.ndarray, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
) -> np.ndarray:
    """``sum((a[p] - b[p])^2)`` per row pair, a [P, D] and b [P, D] float64 -> [P] float64.

    The canonical distance of this module: elementwise numpy arithmetic and numpy's pairwise
    summation along D (no BLAS), so the result for a pair depends only on the two rows, never
    on the CPU, the other pairs or the chunking; identical rows give exactly 0. Pairs are
    processed in chunks of at most ``max_memory_bytes`` of temporaries.
    """
    out = np.empty(len(a))
    step = max(1, max_memory_bytes // (BYTES_PER_ENTRY * max(a.shape[1], 1)))
    for start in range(0, len(a), step):
        diff = a[start:start + step] - b[start:start + step]
        diff *= diff
        out[start:start + step] = diff.sum(axis=1)
    return out


class _Base:
    """A base set prepared for distance blocks: centred float64 features and their squared norms."""

    def __init__(self, base: np.ndarray) -> None:
        self.raw = base
        self.center = base.mean(axis=0)
        self.points = base - self.center
        self.sq_norms = np.einsum("ij,ij->i", self.points, self.points)
        self.max_norm = float(np.sqrt(self.sq_norms.max()))

    def approx_block(self, query_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expansion squared distances [rows, M] (clamped at 0) and a bound [rows] on their error.

        For every entry, ``|block[i, j] - exact_squared_distances(query[i], base[j])| <= bound[i]``
        whatever the BLAS summation order: the dot products, norms and centring each err by at
        most about ``(D + 2) eps/2 (|q_i'| + |b_j'|)^2`` (centred norms), the exact sum by
        ``(D + 1) eps/2 |q_i - b_j|^2``; the bound uses ``max_j |b_j'|`` and a safety factor of
        :data:`_BOUND_SAFETY` over ``(D + 16) eps (|q_i'| + max |b'|)^2``.
        """
        q = query_rows - self.center
        q_sq = np.einsum("ij,ij->i", q, q)
        block = q @ self.points.T
        block *= -2.0
        block += q_sq[:, None]
        block += self.sq_norms[None, :]
        np.maximum(block, 0.0, out=block)
        scale = np.sqrt(q_sq) + self.max_norm
        bound = _BOUND_SAFETY * (q.shape[1] + 16) * _EPS * scale * scale
        return block, bound

    def squared_block(self, query_rows: np.ndarray) -> np.ndarray:
        """Squared distances [rows, M] from (uncentred) query rows to the base, clamped at 0 (the expansion)."""
        return self.approx_block(query_rows)[0]

    def exact(self, query: np.ndarray, rows: np.ndarray, cols: np.ndarray, max_memory_bytes: int) -> np.ndarray:
        """Exact squared distances [P] between ``query[rows[p]]`` and base point ``cols[p]``."""
        return exact_squared_distances(query[rows], self.raw[cols], max_memory_bytes=max_memory_bytes)


def iter_distance_blocks(
    x: np.ndarray,
    y: np.ndarray,
    *,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    squared: bool = False,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, block)`` with ``block[i, j] = |x[start + i] - y[j]|`` as float64 [stop-start, M].

    ``squared=True`` yields squared distances. The block is reused memory only within one
    step; callers must not keep references across iterations if they modify it.
    """
    x, base, rows = _blocked(x, y, chunk_size, max_memory_bytes)
    for start in range(0, len(x), rows):
        stop = min(start + rows, len(x))
        block = base.squared_block(x[start:stop])
        if not squared:
            np.sqrt(block, out=block)
        yield start, stop, block


def _blocked(x: np.ndarray, y: np.ndarray, chunk_size: int | None,
             max_memory_bytes: int) -> tuple[np.ndarray, _Base, int]:
    """Checked x [N, D], the base built on y [M, D], and the rows per block that fit the memory budget."""
    x = as_features(x, "x")
    y = as_features(y, "y")
    check_same_width(x=x, y=y)
    rows = plan_chunk_rows(len(y), chunk_size=chunk_size, max_memory_bytes=max_memory_bytes, n_rows=len(x))
    return x, _Base(y), rows


class BallBlock:
    """Distances from query rows ``[start, stop)`` to all base points, for exact ball-membership tests.

    Holds the expansion block [rows, M] and its error bound; :meth:`within` decides
    ``distance < radius`` on the exact distance (:func:`exact_squared_distances`, square-rooted),
    recomputing only the entries the expansion cannot decide, so ties (a copy of a point's k-th
    neighbour lying exactly on its ball) and copies (distance exactly 0) come out the same on
    every machine.
    """

    #: Relative margin on radius^2 covering the rounding of r^2, the band arithmetic and sqrt.
    RADIUS_MARGIN = 8 * _EPS

    def __init__(self, base: _Base, query: np.ndarray, start: int, stop: int, max_memory_bytes: int) -> None:
        self.start, self.stop = start, stop
        self._base, self._query, self._max_memory_bytes = base, query, max_memory_bytes
        self.squared, self.bound = base.approx_block(query[start:stop])

    def within(self, radius: np.ndarray) -> np.ndarray:
        """bool [rows, M]: exact ``|query_i - base_j| < radius``, radius broadcastable to [rows, M]
        (``r[:, None]`` per query row or ``r[None, :]`` per base point)."""
        r2 = np.asarray(radius, dtype=np.float64) ** 2
        bound = self.bound[:, None]
        # Certainly inside: exact <= approx + bound < r^2. Certainly outside: exact >= approx - bound > r^2.
        # The thresholds are [rows, 1] for per-row radii, else one [rows, M] float temporary at a time.
        inside = self.squared < r2 * (1.0 - self.RADIUS_MARGIN) - bound
        unsure = self.squared <= r2 * (1.0 + self.RADIUS_MARGIN) + bound  # not certainly outside ...
        unsure ^= inside  # ... nor certainly inside (inside implies <= the upper threshold): decide exactly
        rows, cols = _nonzero_2d(unsure)
        if len(rows):
            exact = np.sqrt(self._base.exact(self._query, rows + self.start, cols, self._max_memory_bytes))
            inside[rows, cols] = exact < np.broadcast_to(radius, inside.shape)[rows, cols]
        return inside


def iter_ball_blocks(
    x: np.ndarray,
    y: np.ndarray,
    *,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
) -> Iterator[BallBlock]:
    """Yield a :class:`BallBlock` per block of x rows [N, D] against all of y [M, D] (ascending ``start``)."""
    x, base, rows = _blocked(x, y, chunk_size, max_memory_bytes)
    for start in range(0, len(x), rows):
        yield BallBlock(base, x, start, min(start + rows, len(x)), max_memory_bytes)


def pairwise_distances(
    x: np.ndarray, y: np.ndarray | None = None, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
) -> np.ndarray:
    """The full Euclidean distance matrix [N, M] in float64 (``y=None`` means ``y = x``, diagonal set to 0).

    Meant for small sets: raises ConfigError when ``N * M * BYTES_PER_ENTRY`` exceeds ``max_memory_bytes``.
    """
    x = as_features(x, "x")
    same = y is None
    y = x if y is None else as_features(y, "y")
    check_same_width(x=x, y=y)
    plan_chunk_rows(len(y), chunk_size=len(x), max_memory_bytes=max_memory_bytes)
    out = np.empty((len(x), len(y)))
    for start, stop, block in iter_distance_blocks(x, y, chunk_size=len(x), max_memory_bytes=max_memory_bytes):
        out[start:stop] = block
    if same:
        np.fill_diagonal(out, 0.0)
    return out


def _nonzero_2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the True entries of a C-contiguous bool [R, C], row-major (``np.nonzero``, 10x faster)."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def _kth_smallest(block: np.ndarray, k: int) -> np.ndarray:
    """The k-th smallest value [rows] of each row of block [rows, M] (block is left unchanged)."""
    if k <= _ARGMIN_MAX_K:
        rows = np.arange(block.shape[0])
        idx = np.empty((block.shape[0], k), dtype=np.int64)
        saved = np.empty((block.shape[0], k))
        for j in range(k):
            idx[:, j] = np.argmin(block, axis=1)
            saved[:, j] = block[rows, idx[:, j]]
            block[rows, idx[:, j]] = np.inf
        for j in range(k):
            block[rows, idx[:, j]] = saved[:, j]
        return saved[:, k - 1].copy()
    return np.partition(block, k - 1, axis=1)[:, k - 1]


def _first_k_per_row(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """From candidate pairs (row [P], col [P], value [P]), every row having at least k of them,
    the k smallest values per row [n_rows, k] and their cols, ties broken by the lower col."""
    order = np.lexsort((cols, values, rows))
    counts = np.bincount(rows, minlength=n_rows)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = order[first[:, None] + np.arange(k)[None, :]]
    return values[take], cols[take]


def nearest_neighbours(
    query: np.ndarray,
    base: np.ndarray,
    k: int = 1,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    query_name: str = "query",
    base_name: str = "base",
    on_rows: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest base points of each query point.

    query [N, D], base [M, D]; ``exclude`` [N] int gives, per query row, one base index that
    may not be chosen (use ``np.arange(N)`` when query is base, to skip each point itself;
    -1 excludes nothing). Returns ``(distances [N, k] float64, indices [N, k] int64)``: the exact
    k nearest by :func:`exact_squared_distances` (distance = its square root), sorted, ties broken
    by the lower base index, identical on every machine and for every ``chunk_size``. Raises
    ConfigError when the base has fewer than k eligible points. ``on_rows(count)`` (optional) is
    called after each block of query rows, e.g. a progress bar's ``advance``.
    """
    q = as_features(query, query_name)
    b = as_features(base, base_name)
    check_same_width(**{query_name: q, base_name: b})
    available = len(b) - (1 if exclude is not None else 0)
    if k < 1 or k > available:
        raise ConfigError(
            f"k={k} nearest neighbours requested but {base_name} has {len(b)} points"
            + (" (one excluded per query)" if exclude is not None else "")
        )
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64)
        if exclude.shape != (len(q),):
            raise InputError(f"exclude must have one index per {query_name} row ({len(q)}); got shape {exclude.shape}")
    prepared = _Base(b)
    rows = plan_chunk_rows(len(b), chunk_size=chunk_size, max_memory_bytes=max_memory_bytes, n_rows=len(q))
    dist = np.empty((len(q), k))
    idx = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), rows):
        stop = min(start + rows, len(q))
        block, bound = prepared.approx_block(q[start:stop])
        if exclude is not None:
            ex = exclude[start:stop]
            valid = ex >= 0
            block[np.nonzero(valid)[0], ex[valid]] = np.inf
        # Every point among the exact k nearest has an expansion value within 2 bounds of the
        # expansion's k-th smallest; recompute those candidates exactly and select on exact values.
        limit = _kth_smallest(block, k) + 2.0 * bound
        cand_r, cand_c = _nonzero_2d(block <= limit[:, None])
        del block
        exact = prepared.exact(q, cand_r + start, cand_c, max_memory_bytes)
        sq, chosen = _first_k_per_row(cand_r, cand_c, exact, stop - start, k)
        dist[start:stop] = np.sqrt(sq)
        idx[start:stop] = chosen
        if on_rows is not None:
            on_rows(stop - start)
    return dist, idx


def kth_neighbour_distances(
    features: np.ndarray,
    k: int | Sequence[int],
    *,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    name: str = "features",
    on_rows: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point of the same set (the k-NN ball radius).

    features [N, D]; ``k`` an int gives [N], a sequence of ints gives [N, len(k)]. Equal to the
    (k+1)-th smallest entry of each row of the full distance matrix with a zero diagonal (the
    prdc package's convention). Raises ConfigError when N < k + 1. ``on_rows``: as in
    :func:`nearest_neighbours` (rows of ``features`` done).
    """
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or min(ks) < 1:
        raise ConfigError(f"k must be a positive integer (or a list of them), got {k!r}")
    x = as_features(features, name)
    if len(x) < max(ks) + 1:
        raise ConfigError(f"the k={max(ks)}-th nearest neighbour needs at least {max(ks) + 1} points in {name}; got {len(x)}")
    dist, _ = nearest_neighbours(
        x, x, max(ks), exclude=np.arange(len(x)), chunk_size=chunk_size, max_memory_bytes=max_memory_bytes,
        query_name=name, base_name=name, on_rows=on_rows,
    )
    radii = dist[:, [kk - 1 for kk in ks]]
    return radii[:, 0] if isinstance(k, (int, np.integer)) else radii
