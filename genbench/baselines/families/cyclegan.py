"""CycleGAN (Zhu, Park, Isola & Efros, ICCV 2017): unpaired translation between two Fashion-MNIST classes.

Domains are two classes of the training split (default A = 7 sneaker, B = 5 sandal), sampled
independently (no pairs). Two ResNet generators G: A->B and F: B->A (7x7 conv, two stride-2
downsamplings, residual blocks, two upsamplings, 7x7 conv, instance norm, reflection padding),
two PatchGAN discriminators with instance norm, the least-squares GAN loss, the cycle loss
lambda * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1) and the identity loss
identity_weight * lambda * (|G(b) - b|_1 + |F(a) - a|_1); the discriminators see fakes from a
50-image history pool; Adam(2e-4, beta1 = 0.5), weights from N(0, 0.02). The paper's schedule
(constant, then linearly to 0 over the second half) is the shared loop's ``lr_schedule = "linear"``
with ``lr_decay_start = 0.5``, as configs/cyclegan.toml sets it.

Sampling translates held-out source-domain images: the class-A images of the evaluation split
(kept in the checkpoint), in a seeded random order (a fresh permutation each pass).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genbench.errors import ConfigError, InputError

from ..data import Arrays, Batch
from .base import FAMILIES, NUM_CLASSES, Family, Latents, Options


@dataclass(frozen=True)
class CycleGANOptions(Options):
    domain_a: int = 7  # sneaker
    domain_b: int = 5  # sandal
    g_ch: int = 16
    d_ch: int = 32
    n_res: int = 3
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # relative to cycle_weight, as in the paper's code
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def validate(self, where: str) -> None:
        super().validate(where)
        for key in ("domain_a", "domain_b"):
            if not 0 <= getattr(self, key) < NUM_CLASSES:
                raise ConfigError(f"{where}: model.{key} must be a class in 0..{NUM_CLASSES - 1}, got {getattr(self, key)}")
        if self.domain_a == self.domain_b:
            raise ConfigError(f"{where}: model.domain_a and model.domain_b must differ (both {self.domain_a})")


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """[B, 1, 28, 28] in [-1, 1] -> [B, 1, 28, 28] in [-1, 1] (c7s1-ch, d2ch, d4ch, R4ch x n, u2ch, uch, c7s1-1)."""

    def __init__(self, ch: int, n_res: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(1, ch, 7), nn.InstanceNorm2d(ch), nn.ReLU(True)]
        for mult in (1, 2):  # 28 -> 14 -> 7
            layers += [nn.Conv2d(ch * mult, ch * mult * 2, 3, 2, 1), nn.InstanceNorm2d(ch * mult * 2), nn.ReLU(True)]
        layers += [ResBlock(4 * ch) for _ in range(n_res)]
        for mult in (4, 2):  # 7 -> 14 -> 28
            layers += [nn.ConvTranspose2d(ch * mult, ch * mult // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(ch * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 1, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: [B, 1, 28, 28] -> [B, 1, 5, 5] real/fake scores of overlapping patches."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, ch, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 14
            nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.InstanceNorm2d(2 * ch), nn.LeakyReLU(0.2, True),  # 7
            nn.Conv2d(2 * ch, 4 * ch, 4, 1, 1), nn.InstanceNorm2d(4 * ch), nn.LeakyReLU(0.2, True),  # 6
            nn.Conv2d(4 * ch, 1, 4, 1, 1),  # 5
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def normal_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            assert m.bias is not None  # every conv of these nets has a bias
            nn.init.zeros_(m.bias)


class ImagePool:
    """History of generated images (Shrivastava et al. 2017): half of each batch comes from older fakes."""

    images: list[torch.Tensor]

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator, self.images = size, generator, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                j = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[j])
                self.images[j] = image
            else:
                out.append(image)
        return torch.stack(out)


@FAMILIES.register("cyclegan")
class CycleGAN(Family):
    name = "cyclegan"
    options_cls = CycleGANOptions
    paper = "Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"

    sampling_nets = ("g_ab",)  # translation A -> B; the bundled checkpoint ships only this generator

    options: CycleGANOptions

    def setup(self) -> None:
        o = self.options
        self.nets = {
            "g_ab": ResnetGenerator(o.g_ch, o.n_res), "g_ba": ResnetGenerator(o.g_ch, o.n_res),
            "d_a": PatchDiscriminator(o.d_ch), "d_b": PatchDiscriminator(o.d_ch),
        }
        for net in self.nets.values():
            normal_init(net)
        pool_rng = torch.Generator().manual_seed(self.seed + 3)
        self.pools = {"a": ImagePool(o.pool_size, pool_rng), "b": ImagePool(o.pool_size, pool_rng)}
        self.sources = torch.zeros(0, 28, 28, dtype=torch.uint8)
        self.source_index = torch.zeros(0, dtype=torch.int64)

    def make_optimizers(self) -> None:
        o = self.options
        betas = (o.beta1, o.beta2)
        gen = list(self.nets["g_ab"].parameters()) + list(self.nets["g_ba"].parameters())
        disc = list(self.nets["d_a"].parameters()) + list(self.nets["d_b"].parameters())
        self.optimizers = {"generators": torch.optim.Adam(gen, lr=o.lr, betas=betas),
                           "discriminators": torch.optim.Adam(disc, lr=o.lr, betas=betas)}

    def prepare(self, train: Arrays, held_out: Arrays | None) -> dict[str, Arrays]:
        o = self.options
        if held_out is None:
            raise ConfigError("cyclegan samples by translating held-out images: set data.eval_dataset (e.g. 'fashion-mnist:test')")
        rows = np.flatnonzero(held_out.labels == o.domain_a)
        if len(rows) == 0:
            raise InputError(f"the evaluation split has no images of class {o.domain_a} (model.domain_a) to translate")
        self.sources = torch.tensor(held_out.images[rows])
        self.source_index = torch.tensor(held_out.indices[rows])
        self._eval_sources = self.sources
        return {"a": train.subset(np.flatnonzero(train.labels == o.domain_a)),
                "b": train.subset(np.flatnonzero(train.labels == o.domain_b))}

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        o = self.options
        G, Fn, Da, Db = (self.nets[k] for k in ("g_ab", "g_ba", "d_a", "d_b"))
        a, b = batches["a"].float_images(), batches["b"].float_images()
        with self.amp():
            fake_b, fake_a = G(a), Fn(b)
            for d in (Da, Db):
                d.requires_grad_(False)
            adv = ((Db(fake_b) - 1) ** 2).mean() + ((Da(fake_a) - 1) ** 2).mean()
            cycle = (Fn(fake_b) - a).abs().mean() + (G(fake_a) - b).abs().mean()
            loss_g = adv + o.cycle_weight * cycle
            if o.identity_weight > 0:
                identity = (G(b) - b).abs().mean() + (Fn(a) - a).abs().mean()
                loss_g = loss_g + o.identity_weight * o.cycle_weight * identity
        self.optimizers["generators"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["generators"].step()
        for d in (Da, Db):
            d.requires_grad_(True)
        with self.amp():
            pool_b, pool_a = self.pools["b"].query(fake_b), self.pools["a"].query(fake_a)
            loss_d = 0.5 * (((Db(b) - 1) ** 2).mean() + (Db(pool_b) ** 2).mean()) \
                + 0.5 * (((Da(a) - 1) ** 2).mean() + (Da(pool_a) ** 2).mean())
        self.optimizers["discriminators"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["discriminators"].step()
        return {"loss_g_adv": adv.detach(), "cycle": cycle.detach(), "loss_d": loss_d.detach()}

    def evaluate(self, eval_arrays: Arrays | None) -> dict[str, float]:
        """Mean |F(G(a)) - a| (in [-1, 1] units) over the held-out source images."""
        if len(self.sources) == 0:
            return {}
        total = 0.0
        for chunk in self.sources.split(500):
            a = chunk.to(self.device).float().div(127.5).sub(1).unsqueeze(1)
            total += float((self.nets["g_ba"](self.nets["g_ab"](a)) - a).abs().mean((1, 2, 3)).sum())
        return {"test_cycle_l1": total / len(self.sources), "n_sources": float(len(self.sources))}

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"source_images": self.sources.cpu(), "source_index": self.source_index.cpu()}

    def load_extra_state(self, extra: dict[str, torch.Tensor], where: str) -> None:
        images = extra.get("source_images")
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 3 or len(images) == 0:
            raise InputError(f"{where}: cyclegan checkpoint lacks its held-out source images (extra.source_images)")
        self.sources = images
        self.source_index = extra.get("source_index", torch.arange(len(images)))

    def distinct_samples(self) -> int | None:
        return len(self.sources)

    def repeated_samples(self, latents: Latents) -> int:
        rows = latents["source"]
        return int(len(rows) - len(torch.unique(rows)))

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        """Translate a seeded order of the held-out sources; beyond ``len(sources)`` images they repeat."""
        m = len(self.sources)
        if m == 0:
            raise InputError("cyclegan has no held-out source images to translate (train it or load a checkpoint first)")
        passes = -(-n // m)
        order = torch.cat([torch.randperm(m, generator=generator) for _ in range(passes)])[:n] if n else torch.zeros(0, dtype=torch.int64)
        return {"source": order, "labels": torch.full((n,), self.options.domain_b, dtype=torch.int64)}

    def decode(self, latents: Latents) -> torch.Tensor:
        rows = latents["source"].cpu()
        a = self.sources[rows].to(self.device).float().div(127.5).sub(1).unsqueeze(1)
        return self.nets["g_ab"](a)
