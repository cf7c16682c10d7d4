"""The float64 moment sums of a feature array, computed in row blocks: (n, sum of x, sum of x x^T).

A block of rows is converted to float64 at a time (16 MiB at d = 2048), so a float32 array of any length
never has a full float64 copy, and each block is checked for NaN/Inf before it is added. The sum of outer
products is one BLAS ``dsyrk`` per block into one triangle (half the flops of ``x.T @ x`` as a general
product), mirrored to the full symmetric matrix once at the end. Every product of two float32 values is
exact in float64, so the sums carry float64 rounding only; a different block size changes the last bits,
never more.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ..errors import InputError

#: Rows converted to float64 and added per BLAS call.
BLOCK_ROWS = 1024


def moment_sums(features: np.ndarray, dim: int | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, total float64 [d], outer float64 [d, d]) of float features [n, d]: n rows, their sum, and the
    sum of their outer products (exactly symmetric).

    ``dim``: the width the caller expects (None: the array's own). Raises InputError for another shape or
    for NaN/Inf values.
    """
    f = np.asarray(features)
    d = f.shape[1] if dim is None and f.ndim == 2 else dim
    if f.ndim != 2 or f.shape[1] != d:
        raise InputError(f"features: expected shape [B, {'d' if d is None else d}], got {tuple(f.shape)}")
    n = int(f.shape[0])
    total = np.zeros(d, dtype=np.float64)
    upper = np.zeros((d, d), dtype=np.float64, order="F")
    for start in range(0, n, BLOCK_ROWS):
        block = np.ascontiguousarray(f[start:start + BLOCK_ROWS], dtype=np.float64)  # [k, d], C order
        if not np.isfinite(block).all():
            raise InputError("features contain NaN or Inf values; the extractor or the input images are broken")
        total += block.sum(axis=0)
        # block.T is a Fortran-ordered [d, k] view: dsyrk adds block.T @ block to the upper triangle in place
        upper = blas.dsyrk(1.0, block.T, beta=1.0, c=upper, trans=0, lower=0, overwrite_c=1)
    outer = upper + upper.T  # the strict lower triangle of ``upper`` is zero: this mirrors it
    np.fill_diagonal(outer, np.diagonal(upper))
    return n, total, outer
