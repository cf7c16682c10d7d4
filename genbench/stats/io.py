"""On-disk formats: statistics files and feature files (both plain ``.npz``, no pickles).

Statistics file: ``mu`` float64 [d], ``sigma`` float64 [d, d] (so pytorch-fid and
the original TTUR code read it), ``n`` int64 scalar, and ``meta``, a JSON string
with the extractor identity, n and the genbench version. A plain mu/sigma file
from another tool loads with a warning that its provenance is unknown.

Feature file (written by ``genbench extract``): ``features`` float32 [N, D],
optional ``logits`` float32 [N, K], ``files`` str [N], optional ``labels`` int64 [N],
and ``meta`` (JSON).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ReferenceStatsError
from ..util.atomic import atomic_path
from ..version import __version__
from .feature_stats import FeatureStats

#: bumped whenever the meaning of saved statistics changes.
STATS_FORMAT_VERSION = 1


class UnknownProvenanceWarning(UserWarning):
    """A statistics file without genbench metadata: its settings cannot be checked."""


def _load_npz(path: Path, what: str, error: type[Exception]) -> dict[str, np.ndarray]:
    """All arrays of a ``.npz`` read bounded and without pickles (:func:`genbench.sources.arrays.load_npz`)."""
    from ..sources.arrays import load_npz

    if not path.is_file():
        raise error(f"{path}: {what} file not found")
    try:
        return load_npz(path)
    except InputError as exc:
        text = str(exc)
        if "object" in text.lower() or "pickle" in text.lower():
            raise error(f"{path}: contains pickled objects, which genbench refuses to load") from None
        raise error(f"{path}: not a readable .npz {what} file ({text.removeprefix(str(path) + ': ')})") from None


def _meta_from(data: dict[str, np.ndarray], path: Path, error: type[Exception]) -> dict | None:
    if "meta" not in data:
        return None
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError:
        raise error(f"{path}: the 'meta' entry is not valid JSON") from None
    if not isinstance(meta, dict):
        raise error(f"{path}: the 'meta' entry must be a JSON object")
    return meta


#: Relative tolerances of the covariance checks at load time: asymmetry relative to the largest entry, and a
#: negative eigenvalue relative to the largest diagonal entry (rounding in float64 stays far below both).
SYMMETRY_RTOL = 1e-6
PSD_RTOL = 1e-6


def covariance_problem(sigma: np.ndarray) -> str | None:
    """Why float64 ``sigma`` [d, d] is no covariance matrix (asymmetric, negative variance, indefinite); else None.

    Symmetric within :data:`SYMMETRY_RTOL` and positive semi-definite within :data:`PSD_RTOL`: a Cholesky
    factorisation of ``sigma + PSD_RTOL * max(diag) * I`` succeeds exactly when no eigenvalue lies below
    about ``-PSD_RTOL * max(diag)``.
    """
    scale = float(np.abs(sigma).max(initial=0.0))
    if scale == 0.0:
        return None
    asym = float(np.abs(sigma - sigma.T).max())
    if asym > SYMMETRY_RTOL * scale:
        return f"sigma is not symmetric (max |sigma - sigma^T| = {asym:.3g}, largest entry {scale:.3g})"
    diag = np.diag(sigma)
    if diag.min() < 0:
        return f"sigma has a negative variance on its diagonal ({diag.min():.3g} at index {int(diag.argmin())})"
    jitter = PSD_RTOL * max(float(diag.max()), np.finfo(np.float64).tiny)
    try:
        np.linalg.cholesky((sigma + sigma.T) / 2 + jitter * np.eye(sigma.shape[0]))
    except np.linalg.LinAlgError:
        low = float(np.linalg.eigvalsh((sigma + sigma.T) / 2)[0])
        return (f"sigma is not positive semi-definite (smallest eigenvalue {low:.3g}, largest variance "
                f"{float(diag.max()):.3g}; tolerance {PSD_RTOL:g} relative)")
    return None


def _count_from(value: object, path: Path, where: str) -> int:
    """The sample count stored as ``where``: a whole number >= 1, as a scalar; ReferenceStatsError otherwise."""
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in "iuf" or isinstance(value, bool):
        raise ReferenceStatsError(f"{path}: {where} must be a whole number (the sample count), got {arr.dtype} "
                                  f"of shape {arr.shape}")
    number = float(arr)
    if not np.isfinite(number) or number != int(number) or number < 1:
        raise ReferenceStatsError(f"{path}: {where} must be a whole number >= 1 (the sample count), got {number:g}")
    return int(number)


@dataclass
class SavedStats:
    """Statistics loaded from disk with their metadata (None when provenance is unknown)."""

    stats: FeatureStats
    meta: dict | None
    path: Path | None = None
    n_known: bool = True  # False: the file records no sample count (stats.n is then a placeholder of 2)
    #: a seeded uniform sample of the rows (``genbench merge`` of shards with ``--bank``): float32 [k, d] / [k, C]
    bank_features: np.ndarray | None = None
    bank_logits: np.ndarray | None = None
    #: statistics of further layers of the same images (``spatial``: ``mu_s``/``sigma_s``), by layer name
    layers: dict[str, FeatureStats] = field(default_factory=dict)


#: statistics of a further layer saved beside mu/sigma, by layer name: (mean key, covariance key), ADM's names
LAYER_KEYS = {"spatial": ("mu_s", "sigma_s")}


def save_stats(path: str | Path, stats: FeatureStats, meta: dict, overwrite: bool = False,
               bank_features: np.ndarray | None = None, bank_logits: np.ndarray | None = None,
               layers: dict[str, FeatureStats] | None = None, layer_identities: dict[str, dict] | None = None) -> None:
    """Write a statistics ``.npz`` atomically. ``meta`` holds the extractor identity and source info; ``bank_*``
    (optional) a sample of per-sample rows saved beside mu and sigma (other tools ignore them); ``layers``
    (optional) statistics of further layers of the same images, saved under :data:`LAYER_KEYS` (``spatial``:
    ``mu_s``/``sigma_s`` [2023], [2023, 2023], as ADM's reference batches hold sFID's), each with its identity
    (``layer_identities[name]``) in ``meta["layers"]``. ValueError for a layer without keys or a count that
    differs from ``stats.n``."""
    meta = {**meta, "n": stats.n, "genbench_version": __version__, "format_version": STATS_FORMAT_VERSION}
    extra: dict[str, np.ndarray] = {name: np.asarray(a, np.float32) for name, a in (
        ("bank_features", bank_features), ("bank_logits", bank_logits)) if a is not None}
    if layers:
        recorded = {}
        for name, st in layers.items():
            if name not in LAYER_KEYS or st.n != stats.n:
                raise ValueError(f"layer {name!r} ({st.n} images) cannot be saved beside statistics of {stats.n} "
                                 f"images (known layers: {', '.join(LAYER_KEYS)})")
            mu_key, sigma_key = LAYER_KEYS[name]
            extra[mu_key], extra[sigma_key] = st.mean(), st.cov()
            recorded[name] = {**(layer_identities or {}).get(name, {}), "layer": name, "feature_dim": st.dim,
                              "keys": [mu_key, sigma_key]}
        meta["layers"] = recorded
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=stats.mean(), sigma=stats.cov(), n=np.int64(stats.n), meta=np.str_(json.dumps(meta)),
                     **extra)  # type: ignore[arg-type]  # mypy matches **extra to allow_pickle; no such key


def save_gaussian(path: str | Path, mu: np.ndarray, sigma: np.ndarray, n: int | None, meta: dict,
                  overwrite: bool = False) -> None:
    """Write float64 ``mu`` [d] and ``sigma`` [d, d] exactly as given (no round trip through sums), atomically.

    ``n``: the sample count, or None where the statistics' source does not state it (then the file has no
    ``n`` and :func:`load_stats` treats the count as unknown). Used for imported published statistics.
    """
    meta = {**meta, "genbench_version": __version__, "format_version": STATS_FORMAT_VERSION}
    meta.pop("n", None)
    arrays: dict[str, np.ndarray | np.str_] = {"mu": np.asarray(mu, np.float64), "sigma": np.asarray(sigma, np.float64)}
    if n is not None:
        meta["n"] = int(n)
        arrays["n"] = np.int64(n)  # type: ignore[assignment]  # a 0-d array, as save_stats writes it
    arrays["meta"] = np.str_(json.dumps(meta))
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle; no such key


def checked_gaussian(mu: np.ndarray, sigma: np.ndarray, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """float64 (mu, sigma) after the checks every statistics file gets: shapes, finite values, a valid covariance."""
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ReferenceStatsError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not describe one Gaussian")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ReferenceStatsError(f"{path}: mu or sigma contains NaN or Inf")
    problem = covariance_problem(sigma)
    if problem:
        raise ReferenceStatsError(f"{path}: {problem}; these are not the statistics of any set of features")
    return mu, sigma


def load_stats(path: str | Path) -> SavedStats:
    """Read a statistics file written by genbench, pytorch-fid or TTUR (mu/sigma .npz)."""
    path = Path(path)
    data = _load_npz(path, "statistics", ReferenceStatsError)
    missing = [k for k in ("mu", "sigma") if k not in data]
    if missing:
        raise ReferenceStatsError(
            f"{path}: expected arrays 'mu' and 'sigma' in a statistics file; missing {missing}, found {sorted(data)}"
        )
    mu, sigma = checked_gaussian(data["mu"], data["sigma"], path)
    meta = _meta_from(data, path, ReferenceStatsError)
    if "n" in data:
        n = _count_from(data["n"], path, "the array 'n'")
    elif meta and "n" in meta:
        n = _count_from(meta["n"], path, "meta 'n'")
    else:
        n = 0
    if meta is None:
        warnings.warn(
            f"{path}: statistics without genbench metadata; their extractor, weights and preprocessing are "
            "unknown and cannot be checked against yours",
            UnknownProvenanceWarning,
            stacklevel=2,
        )
    banks = {}
    for key, width in (("bank_features", mu.shape[0]), ("bank_logits", None)):
        bank = data.get(key)
        if bank is None:
            continue
        if (bank.ndim != 2 or not np.issubdtype(bank.dtype, np.floating) or (width is not None and bank.shape[1] != width)
                or not np.isfinite(bank).all()):
            raise ReferenceStatsError(f"{path}: '{key}' must be finite floats [k, {width or 'C'}], got {bank.dtype} "
                                      f"{bank.shape}")
        banks[key] = bank.astype(np.float32, copy=False)
    # n unknown (plain mu/sigma): use 2 so the sums rebuild mu and sigma exactly.
    count = n if n >= 2 else 2
    layers = {}
    for name, (mu_key, sigma_key) in LAYER_KEYS.items():
        if mu_key in data or sigma_key in data:
            if mu_key not in data or sigma_key not in data:
                raise ReferenceStatsError(f"{path}: the {name} layer needs both '{mu_key}' and '{sigma_key}'")
            lmu, lsigma = checked_gaussian(data[mu_key], data[sigma_key], f"{path} ({mu_key}/{sigma_key})")
            layers[name] = FeatureStats.from_mean_cov(lmu, lsigma, count)
    return SavedStats(FeatureStats.from_mean_cov(mu, sigma, count), meta, path, n_known=n >= 2, **banks,
                      layers=layers)


@dataclass
class FeatureFile:
    """Per-sample features saved by ``genbench extract``."""

    features: np.ndarray
    logits: np.ndarray | None
    files: list[str]
    labels: np.ndarray | None
    meta: dict | None
    path: Path | None = None
    extra: dict = field(default_factory=dict)


def save_features(path: str | Path, ff: FeatureFile, overwrite: bool = False) -> None:
    """Write a feature file atomically."""
    arrays: dict[str, np.ndarray | np.str_] = {
        "features": np.asarray(ff.features, np.float32),
        "files": np.asarray(ff.files, dtype=np.str_),
        "meta": np.str_(json.dumps({**(ff.meta or {}), "genbench_version": __version__})),
    }
    if ff.logits is not None:
        arrays["logits"] = np.asarray(ff.logits, np.float32)
    if ff.labels is not None:
        arrays["labels"] = np.asarray(ff.labels, np.int64)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle; no such key


def load_features(path: str | Path) -> FeatureFile:
    """Read a feature file; checks shapes and finiteness."""
    path = Path(path)
    data = _load_npz(path, "feature", InputError)
    if "features" not in data:
        raise InputError(f"{path}: expected an array 'features' in a feature file; found {sorted(data)}")
    features = data["features"]
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
        raise InputError(f"{path}: 'features' must be a float array [N, D], got {features.dtype} {features.shape}")
    if not np.isfinite(features).all():
        raise InputError(f"{path}: 'features' contains NaN or Inf values")
    logits = data.get("logits")
    if logits is not None and (logits.ndim != 2 or len(logits) != len(features) or not np.isfinite(logits).all()):
        raise InputError(f"{path}: 'logits' must be finite floats [{len(features)}, K], got {logits.shape}")
    files = [str(f) for f in data["files"]] if "files" in data else [str(i) for i in range(len(features))]
    labels = data.get("labels")
    return FeatureFile(features, logits, files, labels, _meta_from(data, path, InputError), path)
