"""The Frechet distance computed where the statistics live: torch float64 on their device (a GPU in training).

Same algorithm as :mod:`genbench.metrics.fid` (a factor F of the reference covariance, prepared once;
tr((S_gen S_ref)^{1/2}) as the sum of square roots of the eigenvalues of the symmetric F^T S_gen F), written
with torch for code that holds its sums on a CUDA device and wants the factorisations, products and eigenvalue
solve done there. genbench's own metric stage (the registry's ``fd``, used by every verb and the Evaluator) runs
the numpy path on the host; this module runs on the CPU too (the tests compare the two).
"""
from __future__ import annotations

import torch

from ..errors import InputError
from .fid import NEGATIVE_RTOL


def _drop_roundoff(eigenvalues: torch.Tensor) -> torch.Tensor:
    """Zero the eigenvalues that are round-off of a singular PSD matrix (as genbench.metrics.fid does)."""
    tol = eigenvalues.abs().max() * eigenvalues.shape[0] * torch.finfo(torch.float64).eps
    return torch.where(eigenvalues > tol, eigenvalues, torch.zeros_like(eigenvalues))


def moments(n: int, total: torch.Tensor, outer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [d] and unbiased covariance [d, d] (float64, symmetrised) from the running sums, on their device."""
    if n < 2:
        raise InputError(f"statistics need at least 2 samples, got {n}")
    total, outer = total.to(torch.float64), outer.to(torch.float64)
    mu = total / n
    cov = (outer - n * torch.outer(mu, mu)) / (n - 1)
    return mu, (cov + cov.T) / 2


class TorchFrechetReference:
    """The fixed side N(mu, sigma) of many Frechet distances, on ``device``: mean, trace and factor, once."""

    def __init__(self, mu: torch.Tensor, sigma: torch.Tensor) -> None:
        self.mu = mu.to(torch.float64)
        self.sigma = sigma.to(torch.float64)
        d = self.mu.shape[0]
        if self.sigma.shape != (d, d):
            raise InputError(f"statistics shapes disagree: mu {tuple(self.mu.shape)}, sigma {tuple(self.sigma.shape)}")
        if not (torch.isfinite(self.mu).all() and torch.isfinite(self.sigma).all()):
            raise InputError("statistics contain NaN or Inf")
        self.trace = torch.trace(self.sigma)
        factor, info = torch.linalg.cholesky_ex(self.sigma)
        floor = (torch.finfo(torch.float64).eps * self.sigma.diagonal().abs().max()).sqrt()
        if int(info) == 0 and bool(factor.diagonal().min() > floor):
            self.factor = factor
        else:  # singular (fewer samples than dimensions): V diag(sqrt(w)) from the eigendecomposition
            w, v = torch.linalg.eigh(self.sigma)
            self.factor = v * _drop_roundoff(w).sqrt()

    def distance(self, mu: torch.Tensor, sigma: torch.Tensor) -> float:
        """FD between N(mu, sigma) (float64 tensors on this reference's device) and the reference."""
        mu, sigma = mu.to(self.mu), sigma.to(self.sigma)
        inner = self.factor.T @ sigma @ self.factor
        eig = torch.linalg.eigvalsh((inner + inner.T) / 2)
        diff = mu - self.mu
        sq = diff @ diff
        traces = torch.trace(sigma) + self.trace
        value = float(sq + traces - 2.0 * _drop_roundoff(eig).sqrt().sum())
        if value < -NEGATIVE_RTOL * float(traces + sq):
            raise InputError(f"the Frechet distance came out {value:.6g}, below zero beyond rounding: a covariance is "
                             "not positive semi-definite (check the statistics files)")
        return value
