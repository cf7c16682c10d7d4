"""A Gaussian mixture with full covariances, fitted by expectation-maximisation (pure math, float64).

Used by GLO and the VAE to sample (``model.latent_fit = "gmm"``): a density fitted after training to the
latents of the training images, the "ex-post density estimation" of Ghosh et al. (ICLR 2020). Shapes: data x [N, d]; a K-component
mixture holds weights [K], means [K, d] and the lower Cholesky factors of the covariances [K, d, d].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mixture:
    weights: torch.Tensor  # [K], sums to 1
    means: torch.Tensor  # [K, d]
    chols: torch.Tensor  # [K, d, d], lower triangular: cov_k = chols[k] @ chols[k].T
    log_likelihood: float  # mean log-density of the data (nats per point) at the last E step, one M step before the parameters
    iterations: int


def log_densities(x: torch.Tensor, means: torch.Tensor, chols: torch.Tensor) -> torch.Tensor:
    """log N(x_n; mean_k, cov_k) for every point and component: [N, K]."""
    d = x.shape[1]
    diff = x[None, :, :] - means[:, None, :]  # [K, N, d]
    solved = torch.linalg.solve_triangular(chols, diff.transpose(1, 2), upper=False)  # [K, d, N]
    half_log_det = torch.diagonal(chols, dim1=1, dim2=2).log().sum(1)  # [K]
    return (-0.5 * solved.pow(2).sum(1) - half_log_det[:, None] - 0.5 * d * math.log(2 * math.pi)).T


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k initial centres [k, d] drawn by k-means++ (Arthur & Vassilvitskii 2007), seeded by ``generator``."""
    first = int(torch.randint(len(x), (), generator=generator))
    centres = [x[first]]
    nearest = (x - x[first]).pow(2).sum(1)
    for _ in range(1, k):
        total = float(nearest.sum())
        if total <= 0:  # fewer distinct points than components: repeat one
            index = int(torch.randint(len(x), (), generator=generator))
        else:
            index = int(torch.multinomial(nearest / total, 1, generator=generator))
        centres.append(x[index])
        nearest = torch.minimum(nearest, (x - x[index]).pow(2).sum(1))
    return torch.stack(centres)


def fit_gmm(x: torch.Tensor, k: int, seed: int, max_iter: int = 300, tol: float = 1e-7,
            ridge: float = 1e-6) -> Mixture:
    """Maximum-likelihood K-component mixture for x [N, d] (float64), started from seeded k-means++ centres.

    Each covariance gets ``ridge * I`` added so that an emptied or flat component keeps a Cholesky factor.
    Stops when the mean log-likelihood gains less than ``tol`` (relative) in one iteration. With k = 1 this
    is the sample mean and the maximum-likelihood covariance (divided by N) plus the ridge.
    """
    if x.ndim != 2 or len(x) < k or k < 1:
        raise ValueError(f"fit_gmm: need x [N, d] with N >= k >= 1, got shape {tuple(x.shape)} and k={k}")
    x = x.double()
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    means = kmeans_plus_plus(x, k, torch.Generator(device=x.device).manual_seed(seed))
    centred = x - x.mean(0)
    chols = torch.linalg.cholesky(centred.T @ centred / n + ridge * eye).expand(k, d, d).clone()
    log_weights = torch.full((k,), -math.log(k), dtype=x.dtype, device=x.device)
    previous = -math.inf
    log_likelihood = -math.inf
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        joint = log_densities(x, means, chols) + log_weights  # E step
        norm = torch.logsumexp(joint, dim=1, keepdim=True)
        log_likelihood = float(norm.mean())
        resp = (joint - norm).exp()  # [N, K]
        counts = resp.sum(0).clamp_min(1e-12)  # M step
        log_weights = (counts / n).log()
        means = (resp.T @ x) / counts[:, None]
        diff = x[None, :, :] - means[:, None, :]  # [K, N, d]
        covs = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / counts[:, None, None] + ridge * eye
        chols = torch.linalg.cholesky(covs)
        if log_likelihood - previous < tol * abs(log_likelihood):
            break
        previous = log_likelihood
    return Mixture(log_weights.exp(), means, chols, log_likelihood, iterations)


def sample_mixture(weights: torch.Tensor, means: torch.Tensor, chols: torch.Tensor, eps: torch.Tensor,
                   u: torch.Tensor) -> torch.Tensor:
    """Points [n, d] from the mixture: component by inverse CDF of u [n] in [0, 1), then mean + chol @ eps [n, d]."""
    cdf = torch.cumsum(weights, 0)
    component = torch.searchsorted(cdf / cdf[-1], u.to(cdf.dtype).contiguous(), right=True).clamp_max(len(weights) - 1)
    return means[component] + (chols[component] @ eps.to(chols.dtype)[:, :, None]).squeeze(2)
