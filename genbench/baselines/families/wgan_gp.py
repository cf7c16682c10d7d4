"""WGAN-GP (Gulrajani et al., NeurIPS 2017): Wasserstein critic loss with a gradient penalty.

Per generator step the critic takes ``n_critic`` steps on fresh real batches, each minimising
D(G(z)) - D(x) + lambda * (||grad D(x_hat)||_2 - 1)^2 with x_hat uniformly interpolated
between real and fake (Algorithm 1; lambda=10, n_critic=5, Adam(1e-4, beta1=0, beta2=0.9)).
The critic has no batch norm (it would break the per-sample penalty): layer norm instead,
as the paper recommends. The generator is the DCGAN generator. Trained in float32 (the
double backward of the penalty is kept out of mixed precision).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench.errors import ConfigError

from ..data import Batch
from .base import FAMILIES, Family, Latents, Options
from .nets import ConvDiscriminator, ConvGenerator, dcgan_init


@dataclass(frozen=True)
class WGANGPOptions(Options):
    z_dim: int = 64
    g_ch: int = 48
    d_ch: int = 32
    critic_norm: str = "layer"  # "layer" or "none"
    n_critic: int = 5
    gp_weight: float = 10.0
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.n_critic < 1:
            raise ConfigError(f"{where}: model.n_critic must be >= 1, got {self.n_critic}")
        if self.critic_norm not in ("layer", "none"):
            raise ConfigError(f"{where}: model.critic_norm = {self.critic_norm!r}; expected 'layer' or 'none'")


@FAMILIES.register("wgan-gp")
class WGANGP(Family):
    name = "wgan-gp"
    options_cls = WGANGPOptions
    paper = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"
    amp_safe = False
    ema_net = "generator"

    options: WGANGPOptions

    @property
    def batches_per_step(self) -> int:  # type: ignore[override]
        return self.options.n_critic

    def setup(self) -> None:
        o = self.options
        self.nets = {"generator": ConvGenerator(o.z_dim, o.g_ch), "critic": ConvDiscriminator(1, o.d_ch, o.critic_norm)}
        dcgan_init(self.nets["generator"])

    def make_optimizers(self) -> None:
        o = self.options
        self.optimizers = {
            name: torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.beta1, o.beta2)) for name, net in self.nets.items()
        }

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        o = self.options
        G, D = self.nets["generator"], self.nets["critic"]
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["critic"]
        reals = batches["train"].float_images().chunk(o.n_critic)
        for real in reals:
            z = torch.randn(real.shape[0], o.z_dim, device=real.device, generator=self.noise)
            with torch.no_grad():
                fake = G(z)
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=self.noise)
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            wasserstein = D(real).mean() - D(fake).mean()  # the critic's estimate of W(P_r, P_g)
            loss_d = -wasserstein + o.gp_weight * penalty
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        z = torch.randn(reals[0].shape[0], o.z_dim, device=reals[0].device, generator=self.noise)
        loss_g = -D(G(z)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"wasserstein": wasserstein.detach(), "gp": penalty.detach(), "loss_g": loss_g.detach()}

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        return {"z": torch.randn(n, self.options.z_dim, generator=generator)}

    def decode(self, latents: Latents) -> torch.Tensor:
        return self.nets["generator"](latents["z"])
