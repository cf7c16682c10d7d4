"""What explains a Frechet distance: the rank and smallest eigenvalue of each covariance, and on request the
agreement of genbench's route with the usual ``scipy.linalg.sqrtm`` route.

The trackers of FID implementations are full of "imaginary component" errors and NaNs. Their cause is
almost always a covariance estimated from n <= d samples: it has rank at most n - 1, so Sigma1 Sigma2 is
singular, and ``sqrtm`` of a singular (numerically: slightly non-normal, with tiny negative eigenvalues)
matrix comes back complex. genbench's route (genbench.metrics.fid) never forms that square root and is real
by construction, but a rank-deficient estimate is still a biased one; the diagnostics say so.

- ``rank``: eigenvalues of the covariance above ``d * eps * max eigenvalue``;
- ``min_eigenvalue``: the smallest eigenvalue (negative values are rounding of a singular matrix);
- ``rank_deficient``: n <= d, with a warning naming the input and the sample count d + 1 it would need;
- with ``check``: ``scipy_fd``, the FD by ``sqrtm(Sigma1 Sigma2)`` (the pytorch-fid / TTUR route, real part
  taken), ``relative_difference`` to genbench's FD, and ``sqrtm_max_imaginary`` /
  ``sqrtm_max_imaginary_relative`` (the largest |imaginary part| of the square root, alone and over its
  largest |entry|), the number pytorch-fid refuses above 1e-3.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..stats.feature_stats import FeatureStats


def covariance_diagnostics(sigma: np.ndarray, n: int | None, what: str = "input") -> dict:
    """Rank, smallest eigenvalue and the n <= d warning of one covariance [d, d] estimated from n samples (None: a
    statistics file that records no count; no warning then)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    d = sigma.shape[0]
    w = np.linalg.eigvalsh((sigma + sigma.T) / 2)
    tol = float(np.abs(w).max(initial=0.0)) * d * np.finfo(np.float64).eps
    out: dict = {"n": None if n is None else int(n), "dim": int(d), "rank": int((w > tol).sum()),
                 "min_eigenvalue": float(w.min()), "rank_deficient": None if n is None else bool(n <= d)}
    if n is not None and n <= d:
        out["warning"] = (f"the {what} covariance comes from n={n} samples in d={d} dimensions (n <= d): it has rank "
                          f"at most {max(n - 1, 0)}, so the FD estimate is rank-deficient and biased (and sqrtm-based "
                          f"tools may return complex values); use at least {d + 1} samples")
    return out


def scipy_route(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> dict:
    """FD by ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` (real part of its trace) and the size of its imaginary part."""
    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on singular input; the numbers below say how bad it is
        root = linalg.sqrtm(np.asarray(sigma1, np.float64) @ np.asarray(sigma2, np.float64))
    root = np.asarray(root)
    imag = float(np.abs(root.imag).max()) if np.iscomplexobj(root) else 0.0
    scale = float(np.abs(root).max()) if root.size else 0.0
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    fd = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root).real)
    return {"scipy_fd": fd, "sqrtm_max_imaginary": imag,
            "sqrtm_max_imaginary_relative": imag / scale if scale > 0 else 0.0,
            "sqrtm_finite": bool(np.isfinite(root).all())}


def fd_diagnostics(generated: FeatureStats, reference: FeatureStats, fd: float, *, check: bool = False,
                   reference_side: dict | None = None, reference_n: int | None | bool = True) -> dict:
    """Diagnostics of one FD between the Gaussians of two FeatureStats (module docstring); ``fd``: genbench's value;
    ``reference_side``: the reference's :func:`covariance_diagnostics`, where already computed; ``reference_n``:
    None when the reference's count is unknown (a file that records none), True: ``reference.n``."""
    n_ref = reference.n if reference_n is True else reference_n
    ref_side = reference_side if reference_side is not None else covariance_diagnostics(reference.cov(), n_ref,
                                                                                         "reference")
    out: dict = {"generated": covariance_diagnostics(generated.cov(), generated.n, "generated"),
                 "reference": dict(ref_side)}
    warned = [side["warning"] for side in (out["generated"], out["reference"]) if "warning" in side]
    if warned:
        out["warnings"] = warned
    if check:
        route = scipy_route(generated.mean(), generated.cov(), reference.mean(), reference.cov())
        route["relative_difference"] = abs(route["scipy_fd"] - fd) / max(abs(fd), np.finfo(np.float64).tiny)
        out["check"] = route
    return out
