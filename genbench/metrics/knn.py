"""Chunked Euclidean distances and k-nearest-neighbour queries on feature arrays.

All arithmetic is float64. Distances are computed with the expansion
``|q - b|^2 = |q|^2 + |b|^2 - 2 q.b`` on features centred at the base set's mean
(distances are translation invariant; centring removes most of the cancellation),
one block of query rows at a time, so an N x M matrix never exists in memory: a
block holds ``rows x M`` float64 values plus temporaries, budgeted at
:data:`BYTES_PER_ENTRY` bytes per entry and kept under ``max_memory_bytes``.
The distances returned by :func:`nearest_neighbours` are recomputed exactly as
``sqrt(sum((q - b)^2))`` for the selected neighbours, so exact copies give 0.

Backend: numpy. Measured on the 2-core development machine (float64, 512 x 128 by
60000 x 128 blocks): matmul 30 GFLOP/s in numpy vs 22 in torch; selecting the 3
smallest per row took 0.17 s with repeated ``argmin`` vs 0.27 s with ``torch.topk``
and 0.55 s with ``argpartition``. Inputs are converted to float64 once
(8 * N * D bytes each, outside the block budget).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, InputError

#: Default memory budget for one block of distances (256 MiB).
DEFAULT_MAX_MEMORY_BYTES = 256 * 1024**2
#: Bytes budgeted per block entry: the float64 block plus one float64-sized temporary.
BYTES_PER_ENTRY = 16
#: Up to this k, neighbours are selected by repeated argmin (faster than a partition).
_ARGMIN_MAX_K = 8


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


class _Base:
    """A base set prepared for distance blocks: centred float64 features and their squared norms."""

    def __init__(self, base: np.ndarray) -> None:
        self.center = base.mean(axis=0)
        self.points = base - self.center
        self.sq_norms = np.einsum("ij,ij->i", self.points, self.points)

    def squared_block(self, query_rows: np.ndarray) -> np.ndarray:
        """Squared distances [rows, M] from (uncentred) query rows to the base, clamped at 0."""
        q = query_rows - self.center
        block = q @ self.points.T
        block *= -2.0
        block += np.einsum("ij,ij->i", q, q)[:, None]
        block += self.sq_norms[None, :]
        np.maximum(block, 0.0, out=block)
        return block


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
    x = as_features(x, "x")
    y = as_features(y, "y")
    check_same_width(x=x, y=y)
    base = _Base(y)
    rows = plan_chunk_rows(len(y), chunk_size=chunk_size, max_memory_bytes=max_memory_bytes, n_rows=len(x))
    for start in range(0, len(x), rows):
        stop = min(start + rows, len(x))
        block = base.squared_block(x[start:stop])
        if not squared:
            np.sqrt(block, out=block)
        yield start, stop, block


def pairwise_distances(
    x: np.ndarray, y: np.ndarray | None = None, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
) -> np.ndarray:
    """The full Euclidean distance matrix [N, M] in float64 (``y=None`` means ``y = x``, diagonal set to 0).

    Meant for small sets: raises ConfigError when ``N * M * BYTES_PER_ENTRY`` exceeds ``max_memory_bytes``.
    """
    x = as_features(x, "x")
    same = y is None
    y = x if same else as_features(y, "y")
    check_same_width(x=x, y=y)
    plan_chunk_rows(len(y), chunk_size=len(x), max_memory_bytes=max_memory_bytes)
    out = np.empty((len(x), len(y)))
    for start, stop, block in iter_distance_blocks(x, y, chunk_size=len(x), max_memory_bytes=max_memory_bytes):
        out[start:stop] = block
    if same:
        np.fill_diagonal(out, 0.0)
    return out


def _smallest_k(block: np.ndarray, k: int) -> np.ndarray:
    """Column indices [rows, k] of the k smallest entries per row, ascending by value (block is modified)."""
    rows = np.arange(block.shape[0])
    if k <= _ARGMIN_MAX_K:
        idx = np.empty((block.shape[0], k), dtype=np.int64)
        for j in range(k):
            idx[:, j] = np.argmin(block, axis=1)
            block[rows, idx[:, j]] = np.inf
        return idx
    part = np.argpartition(block, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


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
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest base points of each query point.

    query [N, D], base [M, D]; ``exclude`` [N] int gives, per query row, one base index that
    may not be chosen (use ``np.arange(N)`` when query is base, to skip each point itself;
    -1 excludes nothing). Returns ``(distances [N, k] float64, indices [N, k] int64)``, sorted
    by exact distance, ties broken by the lower base index. Raises ConfigError when the base
    has fewer than k eligible points.
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
        block = prepared.squared_block(q[start:stop])
        if exclude is not None:
            ex = exclude[start:stop]
            valid = ex >= 0
            block[np.nonzero(valid)[0], ex[valid]] = np.inf
        chosen = _smallest_k(block, k)
        diff = q[start:stop, None, :] - b[chosen]
        exact = np.sqrt(np.einsum("rkd,rkd->rk", diff, diff))
        order = np.lexsort((chosen, exact), axis=1) if k > 1 else np.zeros((stop - start, 1), dtype=np.int64)
        dist[start:stop] = np.take_along_axis(exact, order, axis=1)
        idx[start:stop] = np.take_along_axis(chosen, order, axis=1)
    return dist, idx


def kth_neighbour_distances(
    features: np.ndarray,
    k: int | Sequence[int],
    *,
    chunk_size: int | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    name: str = "features",
) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point of the same set (the k-NN ball radius).

    features [N, D]; ``k`` an int gives [N], a sequence of ints gives [N, len(k)]. Equal to the
    (k+1)-th smallest entry of each row of the full distance matrix with a zero diagonal (the
    prdc package's convention). Raises ConfigError when N < k + 1.
    """
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or min(ks) < 1:
        raise ConfigError(f"k must be a positive integer (or a list of them), got {k!r}")
    x = as_features(features, name)
    if len(x) < max(ks) + 1:
        raise ConfigError(f"the k={max(ks)}-th nearest neighbour needs at least {max(ks) + 1} points in {name}; got {len(x)}")
    dist, _ = nearest_neighbours(
        x, x, max(ks), exclude=np.arange(len(x)), chunk_size=chunk_size, max_memory_bytes=max_memory_bytes,
        query_name=name, base_name=name,
    )
    radii = dist[:, [kk - 1 for kk in ks]]
    return radii[:, 0] if isinstance(k, (int, np.integer)) else radii
