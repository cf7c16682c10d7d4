"""Normalising flows for 28x28 images: RealNVP (Dinh, Sohl-Dickstein & Bengio, ICLR 2017) or Glow.

Data: pixels k in {0..255} are dequantised with uniform noise, x = (k + u) / 256, and mapped
to logit space, y = logit(alpha + (1 - 2 alpha) x). ``model.arch`` picks the flow on y:

- ``"glow"`` (the bundled config): ActNorm, invertible 1x1 convolutions, affine couplings and
  learned split priors (Kingma & Dhariwal 2018), in ``glow_net.py``.
- ``"realnvp"`` (the default, so older checkpoints load): a multi-scale stack of affine
  coupling layers, y' = y_a, y_b * exp(s(y_a)) + t(y_a), with checkerboard masks, a squeeze
  (2x2 space-to-channel), channel-wise masks, and half of the dimensions factored out after
  each scale::

    [1,28,28]: 3 checkerboard -> squeeze [4,14,14] -> 3 channel -> factor out [2,14,14]
    [2,14,14]: 3 checkerboard -> squeeze [8,7,7]   -> 3 channel -> factor out [4,7,7]
    [4,7,7]:   4 checkerboard -> [4,7,7]

  Prior N(0, I) on all 784 latent dimensions. s = scale * tanh(raw) for stability; the last
  convolution of each coupling net starts at zero so the flow starts as the identity (the
  paper's batch-norm layers are left out, so the density of an image never depends on the
  rest of its batch, in training or in evaluation).

Both map y to standard-normal latents [B, 784] with log|det| [B]. Loss and reported metric:
bits per dimension of the discrete data, bpd = (-log p(y) - log|dy/dx| + D log 256) / (D ln 2), D = 784.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genbench.errors import ConfigError

from ..data import Arrays, Batch
from .base import FAMILIES, Family, Latents, Options
from .glow_net import Glow, run_forward, run_reverse, squeeze, unsqueeze

D = 784
ARCHS = ("realnvp", "glow")


@dataclass(frozen=True)
class FlowOptions(Options):
    arch: str = "realnvp"  # "realnvp" (the module docstring's layout) or "glow" (glow_net.py)
    hidden_ch: int = 32
    depth: int = 8  # glow: flow steps per level
    alpha: float = 0.05  # logit transform margin
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 100.0  # max gradient norm (0 = no clipping)
    sample_temperature: float = 1.0  # z ~ N(0, T^2 I) when sampling

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.arch not in ARCHS:
            raise ConfigError(f"{where}: model.arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.depth < 1:
            raise ConfigError(f"{where}: model.depth must be >= 1, got {self.depth}")
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"{where}: model.alpha must be in (0, 0.5), got {self.alpha}")
        if self.sample_temperature <= 0:
            raise ConfigError(f"{where}: model.sample_temperature must be > 0, got {self.sample_temperature}")


class CouplingNet(nn.Module):
    """conv3x3 - ReLU - conv3x3 - ReLU - conv3x3 mapping [B, in, H, W] -> (raw s, t), each [B, out, H, W]."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, hidden, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(hidden, 2 * out_ch, 3, padding=1),
        )
        last = self.body[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.body(x).chunk(2, dim=1)
        return s, t


class Coupling(nn.Module):
    """Affine coupling with a checkerboard mask (all channels) or a channel mask (half the channels)."""

    def __init__(self, ch: int, hidden: int, mask: str, parity: int) -> None:
        super().__init__()
        self.mask, self.parity = mask, parity
        if mask == "checkerboard":
            self.net = CouplingNet(ch + 1, ch, hidden)  # + the mask itself as an input plane
            self.scale = nn.Parameter(torch.ones(1, ch, 1, 1))
        else:
            self.net = CouplingNet(ch // 2, ch // 2, hidden)
            self.scale = nn.Parameter(torch.ones(1, ch // 2, 1, 1))

    def _board(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ii = torch.arange(h, device=x.device)[:, None] + torch.arange(w, device=x.device)[None, :]
        return ((ii + self.parity) % 2).to(x.dtype).expand(x.shape[0], 1, h, w)

    def forward(self, x: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """y, log|det dy/dx| [B] (forward); x, -log|det| (reverse)."""
        if self.mask == "checkerboard":
            b = self._board(x)
            raw, t = self.net(torch.cat([x * b, b], 1))
            s = self.scale * torch.tanh(raw) * (1 - b)
            t = t * (1 - b)
            if reverse:
                return x * b + (1 - b) * ((x - t) * torch.exp(-s)), -s.flatten(1).sum(1)
            return x * b + (1 - b) * (x * torch.exp(s) + t), s.flatten(1).sum(1)
        keep, change = x.chunk(2, dim=1)
        if self.parity:
            keep, change = change, keep
        raw, t = self.net(keep)
        s = self.scale * torch.tanh(raw)
        change = (change - t) * torch.exp(-s) if reverse else change * torch.exp(s) + t
        out = torch.cat([change, keep] if self.parity else [keep, change], 1)
        return out, (-s if reverse else s).flatten(1).sum(1)


class RealNVP(nn.Module):
    """y [B, 1, 28, 28] <-> z [B, 784]; see the module docstring for the layout."""

    def __init__(self, hidden: int) -> None:
        super().__init__()

        def stack(ch: int, mask: str, n: int) -> nn.ModuleList:
            return nn.ModuleList(Coupling(ch, hidden, mask, parity=i % 2) for i in range(n))

        self.s1_board, self.s1_chan = stack(1, "checkerboard", 3), stack(4, "channel", 3)
        self.s2_board, self.s2_chan = stack(2, "checkerboard", 3), stack(8, "channel", 3)
        self.final = stack(4, "checkerboard", 4)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z [B, 784], log|det dz/dy| [B])."""
        logdet = y.new_zeros(y.shape[0])
        h, logdet = run_forward(self.s1_board, y, logdet)
        h, logdet = run_forward(self.s1_chan, squeeze(h), logdet)
        z1, h = h[:, :2], h[:, 2:]
        h, logdet = run_forward(self.s2_board, h, logdet)
        h, logdet = run_forward(self.s2_chan, squeeze(h), logdet)
        z2, h = h[:, :4], h[:, 4:]
        h, logdet = run_forward(self.final, h, logdet)
        return torch.cat([z1.flatten(1), z2.flatten(1), h.flatten(1)], 1), logdet

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        """y [B, 1, 28, 28] for z [B, 784]."""
        b = z.shape[0]
        z1, z2, z3 = z[:, :392].view(b, 2, 14, 14), z[:, 392:588].view(b, 4, 7, 7), z[:, 588:].view(b, 4, 7, 7)
        h = run_reverse(self.final, z3)
        h = run_reverse(self.s2_chan, torch.cat([z2, h], 1))
        h = run_reverse(self.s2_board, unsqueeze(h))
        h = run_reverse(self.s1_chan, torch.cat([z1, h], 1))
        return run_reverse(self.s1_board, unsqueeze(h))


@FAMILIES.register("flow")
class Flow(Family):
    name = "flow"
    options_cls = FlowOptions
    paper = "Kingma & Dhariwal 2018, Glow (model.arch = \"glow\"); Dinh et al. 2017, Real NVP (\"realnvp\")"
    amp_safe = False
    output_range = (0.0, 1.0)
    ema_net = "flow"  # used when train.ema_decay > 0 (Polyak averaging, as in Flow++)

    options: FlowOptions

    def setup(self) -> None:
        o = self.options
        self.nets = {"flow": Glow(o.hidden_ch, o.depth) if o.arch == "glow" else RealNVP(o.hidden_ch)}

    def make_optimizers(self) -> None:
        o = self.options
        self.optimizers = {"flow": torch.optim.Adam(self.nets["flow"].parameters(), lr=o.lr, weight_decay=o.weight_decay)}

    def bits_per_dim(self, pixels: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """Per-image bits/dim [B] of uint8 pixels [B, 1, 28, 28] under uniform dequantisation."""
        a = self.options.alpha
        x = (pixels.float() + torch.rand(pixels.shape, device=pixels.device, generator=noise)) / 256.0
        p = a + (1 - 2 * a) * x
        y = torch.log(p) - torch.log1p(-p)
        logdet_pre = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        z, logdet = self.nets["flow"](y)
        log_prior = -0.5 * (z**2).sum(1) - 0.5 * D * math.log(2 * math.pi)
        nll = -(log_prior + logdet + logdet_pre) + D * math.log(256.0)
        return nll / (D * math.log(2.0))

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        loss = self.bits_per_dim(batches["train"].images, self.noise).mean()
        opt = self.optimizers["flow"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.nets["flow"].parameters(), self.options.grad_clip)
        opt.step()
        return {"bpd": loss.detach()}

    def evaluate(self, eval_arrays: Arrays | None) -> dict[str, float]:
        """Bits per dimension on the evaluation split (one seeded dequantisation draw per image)."""
        if eval_arrays is None:
            return {}
        pixels = torch.tensor(eval_arrays.images).unsqueeze(1)
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 7)
        total = 0.0
        for chunk in pixels.split(500):
            total += float(self.bits_per_dim(chunk.to(self.device), gen).sum())
        return {"test_bpd": total / len(pixels), "test_n": float(len(pixels))}

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        return {"z": torch.randn(n, D, generator=generator) * self.options.sample_temperature}

    def decode(self, latents: Latents) -> torch.Tensor:
        flow = self.nets["flow"]
        assert isinstance(flow, (RealNVP, Glow))  # set by setup()
        y = flow.reverse(latents["z"])
        a = self.options.alpha
        return (torch.sigmoid(y) - a) / (1 - 2 * a)
