"""Glow (Kingma & Dhariwal, NeurIPS 2018) for 28x28 gray images, in logit space.

One flow step is ActNorm -> invertible 1x1 convolution -> affine coupling. The layout::

    [1,28,28] squeeze -> [4,14,14]: K steps -> split: z1 [2,14,14] ~ N(mu(h), sigma(h)), h [2,14,14]
    [2,14,14] squeeze -> [8,7,7]:   K steps -> split: z2 [4,7,7]   ~ N(mu(h), sigma(h)), h [4,7,7]
    [4,7,7]:                        K steps -> z3 [4,7,7] ~ N(mu, sigma) (learned, per dimension)

The coupling's scale is sigmoid(raw + 2) (the paper's choice, bounded and starting near 0.88);
the last convolution of every coupling net and of every split prior starts at zero. ActNorm's
scale and bias are set from the first training batch so that its output has zero mean and
unit variance per channel (data-dependent initialisation), and are ordinary parameters after.

``forward`` returns the standardised latents eps = (z - mu) / sigma [B, 784] and
log|det d eps / d y| [B] (so the density is a standard normal on eps); ``reverse`` maps eps
back to y, so a sampling temperature T is eps ~ N(0, T^2 I).
"""
from __future__ import annotations

import torch
from torch import nn


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, 4C, H/2, W/2] (each 2x2 block becomes 4 channels)."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """Inverse of squeeze: [B, 4C, H, W] -> [B, C, 2H, 2W]."""
    b, c4, h, w = x.shape
    x = x.view(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c4 // 4, 2 * h, 2 * w)


def run_forward(layers: nn.ModuleList, h: torch.Tensor, logdet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply invertible ``layers`` in order, adding their log|det| [B] to ``logdet``."""
    for layer in layers:
        h, ld = layer(h)
        logdet = logdet + ld
    return h, logdet


def run_reverse(layers: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    """Invert ``run_forward``: the layers' inverses, last layer first."""
    for layer in reversed(layers):
        h, _ = layer(h, reverse=True)
    return h


class ActNorm(nn.Module):
    """y = (x + bias) * exp(logs) per channel; [B, C, H, W] -> same, logdet H W sum(logs)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, ch, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, ch, 1, 1))
        self.initialized: torch.Tensor
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init_from(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if not reverse and self.training and not bool(self.initialized):
            self._init_from(x)
        ld = self.logs.sum() * x.shape[2] * x.shape[3]
        if reverse:
            return x * torch.exp(-self.logs) - self.bias, -ld.expand(x.shape[0])
        return (x + self.bias) * torch.exp(self.logs), ld.expand(x.shape[0])


class InvConv1x1(nn.Module):
    """y = W x at every pixel with W [C, C] started at a random rotation; logdet H W log|det W|."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(ch, ch))
        self.weight = nn.Parameter(q)

    def forward(self, x: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        ld = torch.linalg.slogdet(self.weight)[1] * x.shape[2] * x.shape[3]
        w = torch.linalg.inv(self.weight) if reverse else self.weight
        y = torch.einsum("ij,bjhw->bihw", w, x)
        return y, (-ld if reverse else ld).expand(x.shape[0])


class ZeroConv(nn.Conv2d):
    """3x3 convolution whose weights and bias start at zero, times exp(3 * logscale) per channel."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 3, padding=1)
        assert self.bias is not None
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)
        self.logscale = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * torch.exp(3.0 * self.logscale)


class AffineCoupling(nn.Module):
    """Second half of the channels scaled and shifted by a net of the first half: conv3x3 - ReLU - conv1x1 - ReLU - zero conv3x3."""

    def __init__(self, ch: int, hidden: int) -> None:
        super().__init__()
        half = ch // 2
        self.net = nn.Sequential(
            nn.Conv2d(half, hidden, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(True),
            ZeroConv(hidden, 2 * (ch - half)),
        )

    def forward(self, x: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        keep, change = x.chunk(2, dim=1)
        raw, t = self.net(keep).chunk(2, dim=1)
        log_scale = nn.functional.logsigmoid(raw + 2.0)
        if reverse:
            change = change * torch.exp(-log_scale) - t
            return torch.cat([keep, change], 1), -log_scale.flatten(1).sum(1)
        change = (change + t) * torch.exp(log_scale)
        return torch.cat([keep, change], 1), log_scale.flatten(1).sum(1)


class FlowStep(nn.Module):
    def __init__(self, ch: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(ch), InvConv1x1(ch), AffineCoupling(ch, hidden)])

    def forward(self, x: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in (reversed(self.layers) if reverse else self.layers):
            x, ld = layer(x, reverse=reverse)
            logdet = logdet + ld
        return x, logdet


class Glow(nn.Module):
    """y [B, 1, 28, 28] <-> eps [B, 784]; see the module docstring for the layout."""

    def __init__(self, hidden: int, depth: int) -> None:
        super().__init__()

        def steps(ch: int) -> nn.ModuleList:
            return nn.ModuleList(FlowStep(ch, hidden) for _ in range(depth))

        self.level1, self.level2, self.level3 = steps(4), steps(8), steps(4)
        self.prior1, self.prior2 = ZeroConv(2, 4), ZeroConv(4, 8)  # h -> (mu, log sigma) of the split half
        self.prior3 = nn.Parameter(torch.zeros(1, 8, 7, 7))  # (mu, log sigma) of the top latent

    @staticmethod
    def _standardise(z: torch.Tensor, stats: torch.Tensor, logdet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = stats.chunk(2, dim=1)
        return (z - mu) * torch.exp(-log_sigma), logdet - log_sigma.flatten(1).sum(1)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps [B, 784], log|det d eps / d y| [B])."""
        b = y.shape[0]
        logdet = y.new_zeros(b)
        h, logdet = run_forward(self.level1, squeeze(y), logdet)
        z1, h = h[:, 2:], h[:, :2]
        e1, logdet = self._standardise(z1, self.prior1(h), logdet)
        h, logdet = run_forward(self.level2, squeeze(h), logdet)
        z2, h = h[:, 4:], h[:, :4]
        e2, logdet = self._standardise(z2, self.prior2(h), logdet)
        h, logdet = run_forward(self.level3, h, logdet)
        e3, logdet = self._standardise(h, self.prior3.expand(b, -1, -1, -1), logdet)
        return torch.cat([e1.flatten(1), e2.flatten(1), e3.flatten(1)], 1), logdet

    def reverse(self, eps: torch.Tensor) -> torch.Tensor:
        """y [B, 1, 28, 28] for eps [B, 784]."""
        b = eps.shape[0]
        e1, e2, e3 = eps[:, :392].view(b, 2, 14, 14), eps[:, 392:588].view(b, 4, 7, 7), eps[:, 588:].view(b, 4, 7, 7)

        def unstandardise(e: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
            mu, log_sigma = stats.chunk(2, dim=1)
            return e * torch.exp(log_sigma) + mu

        h = unstandardise(e3, self.prior3.expand(b, -1, -1, -1))
        h = run_reverse(self.level3, h)
        h = torch.cat([h, unstandardise(e2, self.prior2(h))], 1)
        h = unsqueeze(run_reverse(self.level2, h))
        h = torch.cat([h, unstandardise(e1, self.prior1(h))], 1)
        return unsqueeze(run_reverse(self.level1, h))
