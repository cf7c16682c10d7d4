"""Small networks shared by the families: convolutional nets for 28x28 images, and a latent mixture.

Shapes: generators map [B, in_dim] -> [B, out_ch, 28, 28] (tanh, in [-1, 1]; out_ch = 1 for gray);
discriminators map [B, in_ch, 28, 28] -> [B] (one unbounded score per image); ``MixtureFit`` maps
(eps [n, d], u [n]) -> z [n, d].
"""
from __future__ import annotations

import torch
from torch import nn

from genbench.errors import ConfigError

from ..gmm import Mixture, fit_gmm, sample_mixture


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConvGenerator(nn.Module):
    """DCGAN generator: project-and-reshape to [2ch, 7, 7], two stride-2 transposed convs to 28x28.

    Batch norm and ReLU on the hidden layers, tanh on the output (Radford et al. 2016).
    ``out_ch``: image channels (1 gray, 3 colour).
    """

    def __init__(self, in_dim: int, ch: int, batch_norm: bool = True, out_ch: int = 1) -> None:
        super().__init__()
        norm1 = nn.BatchNorm1d(2 * ch * 49) if batch_norm else nn.Identity()
        norm2 = nn.BatchNorm2d(ch) if batch_norm else nn.Identity()
        self.project = nn.Sequential(nn.Linear(in_dim, 2 * ch * 49, bias=not batch_norm), norm1, nn.ReLU(True))
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1, bias=not batch_norm),  # 7 -> 14
            norm2,
            nn.ReLU(True),
            nn.ConvTranspose2d(ch, out_ch, 4, 2, 1),  # 14 -> 28
            nn.Tanh(),
        )
        self.ch = ch

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], 2 * self.ch, 7, 7)
        return self.body(h)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator / WGAN critic: two stride-2 convs (28 -> 14 -> 7) and a linear score.

    LeakyReLU(0.2); ``norm`` on the second conv: "batch" (DCGAN), "layer" (WGAN-GP critic,
    which must not use batch norm), or "none". No normalisation on the input layer.
    """

    def __init__(self, in_ch: int, ch: int, norm: str = "batch") -> None:
        super().__init__()
        if norm == "batch":
            norm_layer: nn.Module = nn.BatchNorm2d(2 * ch)
        elif norm == "layer":
            norm_layer = nn.GroupNorm(1, 2 * ch)  # layer norm over C, H, W
        elif norm == "none":
            norm_layer = nn.Identity()
        else:
            raise ValueError(f"unknown norm {norm!r}")
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, ch, 4, 2, 1),  # 28 -> 14
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=norm == "none"),  # 14 -> 7
            norm_layer,
            nn.LeakyReLU(0.2, True),
            nn.Flatten(),
            nn.Linear(2 * ch * 49, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


def check_latent_fit(where: str, latent_fit: str, choices: tuple[str, ...], components: int) -> None:
    """ConfigError unless ``model.latent_fit`` is one of ``choices`` and ``model.gmm_components`` in 1..1000."""
    if latent_fit not in choices:
        raise ConfigError(f"{where}: model.latent_fit = {latent_fit!r}; expected one of: {', '.join(choices)}")
    if not 1 <= components <= 1000:
        raise ConfigError(f"{where}: model.gmm_components must be in 1..1000, got {components}")


class MixtureFit(nn.Module):
    """z ~ sum_k w_k N(mean_k, cov_k), cov_k = chol_k chol_k^T: a Gaussian mixture fitted after training to
    the latents of the training images (GLO's codes, a VAE's posterior means), sampled instead of a fixed prior."""

    weights: torch.Tensor  # buffer [K]
    means: torch.Tensor  # buffer [K, d]
    chols: torch.Tensor  # buffer [K, d, d]

    def __init__(self, z_dim: int, components: int) -> None:
        super().__init__()
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, z_dim))
        self.register_buffer("chols", torch.eye(z_dim).expand(components, z_dim, z_dim).clone())

    def forward(self, eps: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """eps [n, d] standard normal, u [n] uniform in [0, 1) (picks the component) -> z [n, d]."""
        return sample_mixture(self.weights, self.means, self.chols, eps, u)

    @torch.no_grad()
    def fit(self, z: torch.Tensor, seed: int) -> Mixture:
        """Fit the mixture to z [N, d] by EM (float64, k-means++ start seeded by ``seed``) and store it."""
        mixture = fit_gmm(z.detach().double().cpu(), len(self.weights), seed=seed)
        self.weights.copy_(mixture.weights.float())
        self.means.copy_(mixture.means.float())
        self.chols.copy_(mixture.chols.float())
        return mixture
