"""Conditional GAN (Mirza & Osindero 2014) on the 10 Fashion-MNIST classes.

As in the paper, the class y is fed to both networks as an extra input: the generator
sees [z, onehot(y)], the discriminator sees the image with 10 one-hot class planes
stacked as extra channels. The networks are the DCGAN ones (the paper's MLPs with
maxout are replaced by the DCGAN convolutions, as most reimplementations do); the loss
is the non-saturating GAN loss. Fake images are generated for the real batch's labels,
so the class frequencies follow the data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import Batch
from .base import FAMILIES, NUM_CLASSES, Family, Latents, Options, check_labels
from .dcgan import gan_step
from .nets import ConvDiscriminator, ConvGenerator, dcgan_init


@dataclass(frozen=True)
class CGANOptions(Options):
    z_dim: int = 64
    g_ch: int = 48
    d_ch: int = 48
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


@FAMILIES.register("cgan")
class CGAN(Family):
    name = "cgan"
    options_cls = CGANOptions
    paper = "Mirza & Osindero 2014, Conditional Generative Adversarial Nets"
    conditional = True
    ema_net = "generator"

    options: CGANOptions

    def setup(self) -> None:
        o = self.options
        self.nets = {
            "generator": ConvGenerator(o.z_dim + NUM_CLASSES, o.g_ch),
            "discriminator": ConvDiscriminator(1 + NUM_CLASSES, o.d_ch),
        }
        for net in self.nets.values():
            dcgan_init(net)

    def make_optimizers(self) -> None:
        o = self.options
        self.optimizers = {
            name: torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.beta1, o.beta2)) for name, net in self.nets.items()
        }

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        batch = batches["train"]
        onehot = F.one_hot(batch.labels, NUM_CLASSES).float()
        planes = onehot[:, :, None, None].expand(-1, -1, 28, 28)
        cond = (lambda z: torch.cat([z, onehot], 1), lambda x: torch.cat([x, planes.to(x.dtype)], 1))
        return gan_step(self, batch.float_images(), self.options.z_dim, cond=cond)

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        # z first, so that the same seed gives the same z whether or not labels are given.
        z = torch.randn(n, self.options.z_dim, generator=generator)
        labels = check_labels(labels, n)
        if labels is None:
            labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
        return {"z": z, "labels": labels}

    def decode(self, latents: Latents) -> torch.Tensor:
        onehot = F.one_hot(latents["labels"], NUM_CLASSES).to(latents["z"].dtype)
        return self.nets["generator"](torch.cat([latents["z"], onehot], 1))
