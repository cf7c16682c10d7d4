"""DCGAN (Radford, Metz & Chintala, ICLR 2016) with the non-saturating GAN loss (Goodfellow et al. 2014).

Small version for 28x28: project-and-reshape generator with two stride-2 transposed
convolutions, batch norm and ReLU, tanh output; discriminator with two stride-2
convolutions, LeakyReLU(0.2) and batch norm (none on its input layer); Adam(2e-4, beta1=0.5);
weights from N(0, 0.02). Generator loss: -log D(G(z)) (non-saturating).

``model.channels`` (1 or 3) sets the image channels of both networks; it must match the data set
(3 for ``stacked-fashion-mnist``, checked when the config is resolved; see configs/dcgan-stacked.toml).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genbench.errors import ConfigError

from ..data import Batch
from .base import FAMILIES, Family, Latents, Options
from .nets import ConvDiscriminator, ConvGenerator, dcgan_init


@dataclass(frozen=True)
class DCGANOptions(Options):
    z_dim: int = 64
    g_ch: int = 48  # generator width (hidden layers have 2*g_ch and g_ch channels)
    d_ch: int = 48
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    channels: int = 1  # image channels: 1 (gray, fashion-mnist) or 3 (colour, stacked-fashion-mnist)

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.channels not in (1, 3):
            raise ConfigError(f"{where}: model.channels must be 1 (gray) or 3 (colour), got {self.channels}")


@FAMILIES.register("dcgan")
class DCGAN(Family):
    name = "dcgan"
    options_cls = DCGANOptions
    paper = "Radford et al. 2016, Unsupervised Representation Learning with Deep Convolutional GANs"
    ema_net = "generator"

    options: DCGANOptions

    def setup(self) -> None:
        o = self.options
        self.nets = {
            "generator": ConvGenerator(o.z_dim, o.g_ch, out_ch=o.channels),
            "discriminator": ConvDiscriminator(o.channels, o.d_ch),
        }
        for net in self.nets.values():
            dcgan_init(net)

    def make_optimizers(self) -> None:
        o = self.options
        self.optimizers = {
            name: torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.beta1, o.beta2)) for name, net in self.nets.items()
        }

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        return gan_step(self, batches["train"].float_images(), self.options.z_dim, cond=None)

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        return {"z": torch.randn(n, self.options.z_dim, generator=generator)}

    def decode(self, latents: Latents) -> torch.Tensor:
        return self.nets["generator"](latents["z"])


def gan_step(family: Family, real: torch.Tensor, z_dim: int, cond: tuple | None) -> dict[str, torch.Tensor]:
    """One non-saturating GAN update of D then G (shared by DCGAN and the conditional GAN).

    ``cond``: None, or (generator_input_fn, discriminator_input_fn) that attach class information.
    """
    G, D = family.nets["generator"], family.nets["discriminator"]
    opt_g, opt_d = family.optimizers["generator"], family.optimizers["discriminator"]
    z = torch.randn(real.shape[0], z_dim, device=real.device, generator=family.noise)
    g_in = cond[0](z) if cond else z
    d_in = cond[1] if cond else (lambda x: x)
    with family.amp():
        fake = G(g_in)
        # D maximises log D(x) + log(1 - D(G(z))); softplus(-s) = -log sigmoid(s).
        loss_d = F.softplus(-D(d_in(real))).mean() + F.softplus(D(d_in(fake.detach()))).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with family.amp():
        loss_g = F.softplus(-D(d_in(fake))).mean()  # non-saturating: maximise log D(G(z))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
