"""MiFID, the memorization-informed FID (Bai et al., KDD 2021; Kaggle "Generative Dog Images", 2019).

    d_mem = mean over a in A of  min over b in B of (1 - |cos(a, b)|)
    d_thr = d_mem if d_mem < eps else 1                    (eps = 0.1, torchmetrics' default)
    MiFID = FD / (d_thr + 1e-14)                           (0 when FD <= 1e-8, as torchmetrics)

Rows whose entries *sum* to zero are dropped from both sets first (the competition code and torchmetrics
do this; it is meant for all-zero rows). A generator that copies training images has d_mem near 0 and a
huge MiFID; one that does not memorize (d_mem >= eps) gets MiFID = FD.

Direction: the competition's scoring code averages over the *generated* images (A = generated,
B = training images), which is what genbench does by default (``memorization_of="generated"``).
torchmetrics' ``MemorizationInformedFrechetInceptionDistance`` calls the same function with its real
features first, so it averages over the *real* images (A = real, B = generated); pass
``memorization_of="reference"`` for that. The two agree when both sets have the same spread but
differ otherwise (a collapsed generator near one training image is a copy by the first, not by the
second). torchmetrics also uses its one ``real`` set both as FID reference and as training set; genbench
takes the training features separately where given (the reference otherwise).

Memory: the cosines are computed in row blocks of A against all of B; no |A| x |B| matrix is kept.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import ConfigError, InputError
from .knn import BYTES_PER_ENTRY, DEFAULT_MAX_MEMORY_BYTES, as_features, check_same_width

#: torchmetrics' default ``cosine_distance_eps``.
COSINE_EPS = 0.1
#: Added to the thresholded distance before dividing (torchmetrics' ``10e-15``).
DIVISION_EPS = 10e-15
#: MiFID is 0 at or below this FD (torchmetrics).
FD_FLOOR = 1e-8


def _nonzero_unit_rows(x: np.ndarray) -> np.ndarray:
    kept = x[x.sum(axis=1) != 0]
    return kept / np.linalg.norm(kept, axis=1, keepdims=True)


def min_cosine_distances(query: np.ndarray, base: np.ndarray, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
                         query_name: str = "generated features", base_name: str = "training features"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """For each row of query [N, D] with a nonzero sum: ``min_b 1 - |cos(q, b)|`` over the nonzero-sum rows of
    base [M, D]; returns (distances [N'] float64, indices [N'] of the query rows kept)."""
    q = as_features(query, query_name)
    b = as_features(base, base_name)
    check_same_width(**{query_name: q, base_name: b})
    kept = np.flatnonzero(q.sum(axis=1) != 0)
    qn, bn = _nonzero_unit_rows(q), _nonzero_unit_rows(b)
    if len(qn) == 0 or len(bn) == 0:
        raise InputError(f"MiFID: every row of the {query_name if len(qn) == 0 else base_name} sums to zero")
    rows = max(1, max_memory_bytes // (BYTES_PER_ENTRY * len(bn)))
    out = np.empty(len(qn))
    for start in range(0, len(qn), rows):
        block = qn[start:start + rows] @ bn.T
        np.abs(block, out=block)
        out[start:start + rows] = 1.0 - block.max(axis=1)
    return out, kept


def memorization_distance(generated: np.ndarray, train: np.ndarray, *,
                          memorization_of: Literal["generated", "reference"] = "generated",
                          max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> float:
    """d_mem: the mean minimum cosine distance (see the module docstring for the direction)."""
    if memorization_of == "generated":
        d, _ = min_cosine_distances(generated, train, max_memory_bytes=max_memory_bytes)
    elif memorization_of == "reference":
        d, _ = min_cosine_distances(train, generated, max_memory_bytes=max_memory_bytes,
                                    query_name="training features", base_name="generated features")
    else:
        raise ConfigError(f"memorization_of must be 'generated' or 'reference', got {memorization_of!r}")
    return float(d.mean())


def mifid_from(fd: float, d_mem: float, eps: float = COSINE_EPS) -> float:
    """MiFID from an FD and d_mem: FD / (d_thr + 1e-14), 0 for FD <= 1e-8."""
    if not 0 < eps <= 1:
        raise ConfigError(f"the MiFID cosine threshold (--mifid-eps) must be in (0, 1], got {eps}")
    d_thr = d_mem if d_mem < eps else 1.0
    return float(fd / (d_thr + DIVISION_EPS)) if fd > FD_FLOOR else 0.0
