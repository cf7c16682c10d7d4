"""Variational auto-encoder (Kingma & Welling, ICLR 2014), trained on the ELBO.

Convolutional encoder q(z|x) = N(mu(x), diag sigma^2(x)), prior N(0, I), reparameterised
sampling, KL in closed form. Decoder likelihood p(x|z):
  - "bernoulli": per-pixel Bernoulli with logits; the grey levels in [0, 1] are the targets of
    the cross-entropy (the usual practice on non-binary data);
  - "gaussian": per-pixel N(sigmoid(out), sigma^2), sigma fixed or learned (one scalar).
Samples are decoder means (sigmoid of the logits), in [0, 1], as usual for VAE figures, of z drawn
from the prior N(0, I) (``latent_fit = "prior"``, the paper's) or from a ``gmm_components``-component
Gaussian mixture fitted after training to the posterior means of the training images (``"gmm"``: the
ex-post density estimation of Ghosh et al., ICLR 2020), which samples where the decoder was trained
when the aggregate posterior is far from the prior.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genbench.errors import ConfigError

from ..data import Arrays, Batch
from .base import FAMILIES, Family, Latents, Options
from .nets import MixtureFit, check_latent_fit

LATENT_FITS = ("prior", "gmm")


@dataclass(frozen=True)
class VAEOptions(Options):
    z_dim: int = 16
    ch: int = 32
    fc_dim: int = 128  # width of the fully connected layer between the convolutions and z
    decoder: str = "bernoulli"  # or "gaussian"
    sigma: float = 0.1  # Gaussian decoder's standard deviation (initial value when learned)
    learn_sigma: bool = False
    lr: float = 1e-3
    latent_fit: str = "prior"  # where samples draw z: "prior" or "gmm" (fitted to the posterior means)
    gmm_components: int = 10

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.decoder not in ("bernoulli", "gaussian"):
            raise ConfigError(f"{where}: model.decoder = {self.decoder!r}; expected 'bernoulli' or 'gaussian'")
        if self.sigma <= 0:
            raise ConfigError(f"{where}: model.sigma must be > 0, got {self.sigma}")
        check_latent_fit(where, self.latent_fit, LATENT_FITS, self.gmm_components)


class Encoder(nn.Module):
    """[B, 1, 28, 28] in [0, 1] -> (mu [B, z], log_var [B, z])."""

    def __init__(self, z_dim: int, ch: int, fc_dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, ch, 4, 2, 1), nn.ReLU(True),  # 14
            nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.ReLU(True),  # 7
            nn.Flatten(),
            nn.Linear(2 * ch * 49, fc_dim), nn.ReLU(True),
            nn.Linear(fc_dim, 2 * z_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.body(x).chunk(2, dim=1)
        return mu, log_var


class Decoder(nn.Module):
    """[B, z] -> logits [B, 1, 28, 28]; holds log sigma for the Gaussian likelihood."""

    def __init__(self, z_dim: int, ch: int, fc_dim: int, log_sigma: float, learn_sigma: bool) -> None:
        super().__init__()
        self.ch = ch
        self.fc = nn.Sequential(nn.Linear(z_dim, fc_dim), nn.ReLU(True), nn.Linear(fc_dim, 2 * ch * 49), nn.ReLU(True))
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1), nn.ReLU(True),  # 14
            nn.ConvTranspose2d(ch, 1, 4, 2, 1),  # 28
        )
        self.log_sigma = nn.Parameter(torch.tensor(float(log_sigma)), requires_grad=learn_sigma)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(z.shape[0], 2 * self.ch, 7, 7))


@FAMILIES.register("vae")
class VAE(Family):
    name = "vae"
    options_cls = VAEOptions
    paper = "Kingma & Welling 2014, Auto-Encoding Variational Bayes"
    output_range = (0.0, 1.0)

    options: VAEOptions

    def setup(self) -> None:
        o = self.options
        self.nets = {
            "encoder": Encoder(o.z_dim, o.ch, o.fc_dim),
            "decoder": Decoder(o.z_dim, o.ch, o.fc_dim, math.log(o.sigma), o.learn_sigma),
        }
        if o.latent_fit == "gmm":
            self.nets["latent_fit"] = MixtureFit(o.z_dim, o.gmm_components)

    def make_optimizers(self) -> None:
        params = [p for name in ("encoder", "decoder") for p in self.nets[name].parameters() if p.requires_grad]
        self.optimizers = {"vae": torch.optim.Adam(params, lr=self.options.lr)}

    def neg_elbo(self, x: torch.Tensor, noise: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image (negative ELBO, reconstruction NLL, KL) in nats for x [B, 1, 28, 28] in [0, 1]."""
        mu, log_var = self.nets["encoder"](x)
        eps = torch.randn(mu.shape, device=mu.device, generator=noise, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * log_var) * eps
        out = self.nets["decoder"](z).float()
        if self.options.decoder == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        else:
            decoder = self.nets["decoder"]
            assert isinstance(decoder, Decoder)  # set by setup()
            log_sigma = decoder.log_sigma
            resid = (x - torch.sigmoid(out)) / torch.exp(log_sigma)
            nll = (0.5 * resid**2 + log_sigma + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
        mu, log_var = mu.float(), log_var.float()
        kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(1)
        return nll + kl, nll, kl

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        x = batches["train"].float_images(low=0.0)
        with self.amp():
            loss, nll, kl = self.neg_elbo(x, self.noise)
        loss = loss.mean()
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"neg_elbo": loss.detach(), "recon": nll.mean().detach(), "kl": kl.mean().detach()}

    @torch.no_grad()
    def finalize(self, streams: dict[str, Arrays]) -> None:
        """For the "gmm" latent fit: fit the mixture to the posterior means of every training image."""
        fit = self.nets.get("latent_fit")
        if not isinstance(fit, MixtureFit):
            return
        x = torch.tensor(streams["train"].images).float().div(255).unsqueeze(1)
        means = [self.nets["encoder"](chunk.to(self.device))[0] for chunk in x.split(1000)]
        fit.fit(torch.cat(means), seed=self.seed)

    def evaluate(self, eval_arrays: Arrays | None) -> dict[str, float]:
        """Mean negative ELBO (nats per image) on the evaluation split, one posterior draw per image."""
        if eval_arrays is None:
            return {}
        x = torch.tensor(eval_arrays.images).float().div(255).unsqueeze(1)
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 7)
        total = 0.0
        for chunk in x.split(500):
            total += float(self.neg_elbo(chunk.to(self.device), gen)[0].sum())
        return {"test_neg_elbo_nats": total / len(x)}

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        """z [n, z_dim] ~ N(0, I); for the "gmm" fit also u [n] ~ U[0, 1), drawn after z, and z is its eps."""
        latents = {"z": torch.randn(n, self.options.z_dim, generator=generator)}
        if self.options.latent_fit == "gmm":
            latents["u"] = torch.rand(n, generator=generator)
        return latents

    def decode(self, latents: Latents) -> torch.Tensor:
        fit = self.nets.get("latent_fit")
        z = fit(latents["z"], latents["u"]) if isinstance(fit, MixtureFit) else latents["z"]
        return torch.sigmoid(self.nets["decoder"](z))
