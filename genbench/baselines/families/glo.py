"""Generative Latent Optimization (Bojanowski, Joulin, Lopez-Paz & Szlam, ICML 2018).

No discriminator and no encoder: each training image i owns a learnable code z_i, optimised
jointly with the generator to minimise a reconstruction loss l(G(z_i), x_i). Codes start
from the images' PCA projection (as in the paper) and after every step are projected back
onto the unit l2 ball ("ball") or sphere ("sphere"). Losses: "lap1" (Laplacian-pyramid L1,
sum_j 2^(-2j) mean|L^j(x) - L^j(x')|), "l2" (mean squared error) or "lap1+l2".

Sampling fits a density to the learned codes after training (stored in the ``latent_fit`` net)
and decodes draws from it: a full-covariance Gaussian (``latent_fit = "gaussian"``, the paper's
choice) or a ``gmm_components``-component full-covariance Gaussian mixture fitted by EM
(``"gmm"``: the ex-post density estimation of Ghosh et al., ICLR 2020; unsupervised, the labels
are not used). The codes of a 10-class data set form clusters that one Gaussian fits badly:
many of its draws fall between them, where the generator was never trained (the bundled
checkpoints: fd_fmnist 197 with one Gaussian, 63 with ten components).

Because the codes of ``n_codes`` training images are in the checkpoint (with their data-set
indices), GLO doubles as a tunable copycat for the memorization probes: decoding the stored
codes reproduces training images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genbench.errors import ConfigError

from ..data import Arrays, Batch
from .base import FAMILIES, Family, Latents, Options
from .nets import ConvGenerator, MixtureFit, check_latent_fit, dcgan_init

LOSSES = ("lap1", "l2", "lap1+l2")
PROJECTIONS = ("ball", "sphere")
LATENT_FITS = ("gaussian", "gmm")


@dataclass(frozen=True)
class GLOOptions(Options):
    z_dim: int = 32
    g_ch: int = 48
    n_codes: int = 10000  # training images that get a code (a seeded random subset; 0 = all)
    loss: str = "lap1+l2"
    pyramid_levels: int = 3  # 28, 14, 7
    projection: str = "ball"
    lr_g: float = 1e-3
    lr_z: float = 1e-2
    latent_fit: str = "gaussian"  # the density sampled after training: "gaussian" or "gmm"
    gmm_components: int = 10  # components of the "gmm" fit

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.loss not in LOSSES:
            raise ConfigError(f"{where}: model.loss = {self.loss!r}; expected one of: {', '.join(LOSSES)}")
        if self.projection not in PROJECTIONS:
            raise ConfigError(f"{where}: model.projection = {self.projection!r}; expected one of: {', '.join(PROJECTIONS)}")
        if not 1 <= self.pyramid_levels <= 3:
            raise ConfigError(f"{where}: model.pyramid_levels must be in 1..3 for 28x28 images, got {self.pyramid_levels}")
        check_latent_fit(where, self.latent_fit, LATENT_FITS, self.gmm_components)
        if self.n_codes < 0:
            raise ConfigError(f"{where}: model.n_codes must be >= 0, got {self.n_codes}")


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of x [B, C, H, W]: band-pass levels (finest first), then the low-pass residual."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 5, 5)
    out = []
    current = x
    for _ in range(levels - 1):
        blurred = F.conv2d(F.pad(current, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])
        out.append(current - blurred)
        current = F.avg_pool2d(blurred, 2)
    out.append(current)
    return out


def lap1_loss(x: torch.Tensor, y: torch.Tensor, levels: int) -> torch.Tensor:
    """sum_j 2^(-2j) * mean |L^j(x) - L^j(y)| over the pyramid levels j = 0 (finest) ... levels-1."""
    total = x.new_zeros(())
    for j, (a, b) in enumerate(zip(laplacian_pyramid(x, levels), laplacian_pyramid(y, levels))):
        total = total + 2.0 ** (-2 * j) * (a - b).abs().mean()
    return total


class Codes(nn.Module):
    """One code per coded training image (sparse embedding) and the images' data-set indices."""

    image_index: torch.Tensor  # buffer

    def __init__(self, n: int, z_dim: int) -> None:
        super().__init__()
        self.z = nn.Embedding(n, z_dim, sparse=True)
        self.register_buffer("image_index", torch.zeros(n, dtype=torch.int64))


class GaussianFit(nn.Module):
    """z = mean + chol @ eps: the full-covariance Gaussian fitted to the learned codes."""

    mean: torch.Tensor  # buffer
    chol: torch.Tensor  # buffer

    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(z_dim))
        self.register_buffer("chol", torch.eye(z_dim))

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return self.mean + eps @ self.chol.T


@FAMILIES.register("glo")
class GLO(Family):
    name = "glo"
    options_cls = GLOOptions
    paper = "Bojanowski et al. 2018, Optimizing the Latent Space of Generative Networks"

    options: GLOOptions

    def setup(self) -> None:
        o = self.options
        fit: nn.Module = GaussianFit(o.z_dim) if o.latent_fit == "gaussian" else MixtureFit(o.z_dim, o.gmm_components)
        self.nets = {"generator": ConvGenerator(o.z_dim, o.g_ch), "codes": Codes(max(o.n_codes, 1), o.z_dim),
                     "latent_fit": fit}
        dcgan_init(self.nets["generator"])

    def make_optimizers(self) -> None:
        o = self.options
        self.optimizers = {
            "generator": torch.optim.Adam(self.nets["generator"].parameters(), lr=o.lr_g, betas=(0.5, 0.999)),
            "codes": torch.optim.SparseAdam(list(self.nets["codes"].parameters()), lr=o.lr_z),
        }

    def _codes(self) -> Codes:
        codes = self.nets["codes"]
        assert isinstance(codes, Codes)  # setup(), prepare() and load_state() put a Codes there
        return codes

    def project(self, z: torch.Tensor) -> torch.Tensor:
        norm = z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return z / norm if self.options.projection == "sphere" else z / norm.clamp_min(1.0)

    def prepare(self, train: Arrays, held_out: Arrays | None) -> dict[str, Arrays]:
        """Pick the coded subset (seeded) and initialise its codes by PCA, projected."""
        o = self.options
        n = len(train) if o.n_codes == 0 or o.n_codes >= len(train) else o.n_codes
        rows = np.sort(np.random.default_rng(self.seed).choice(len(train), size=n, replace=False))
        subset = train.subset(rows)
        if n != self._codes().z.num_embeddings:
            self.nets["codes"] = Codes(n, o.z_dim).to(self.device)
            self.make_optimizers()
        x = torch.tensor(subset.images).reshape(n, -1).double() / 255.0
        x = x - x.mean(0)
        # Top principal directions via the covariance's eigenvectors (cheap for 784 dims).
        _, vecs = torch.linalg.eigh(x.T @ x)
        pcs = vecs[:, -o.z_dim:].flip(1)
        z = x @ pcs
        z = z / z.norm(dim=1).max() if o.projection == "ball" else z
        codes = self._codes()
        with torch.no_grad():
            codes.z.weight.copy_(self.project(z.float()).to(self.device))
            codes.image_index.copy_(torch.tensor(subset.indices).to(self.device))
        check = subset.images[:2000]
        self._recon_images = torch.tensor(check).float().div(127.5).sub(1).unsqueeze(1).to(self.device)
        return {"train": subset}

    def reconstruction_loss(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        o = self.options
        loss = out.new_zeros(())
        if "lap1" in o.loss:
            loss = loss + lap1_loss(out, x, o.pyramid_levels)
        if "l2" in o.loss:
            loss = loss + F.mse_loss(out, x)
        return loss

    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        batch = batches["train"]
        codes = self._codes().z
        with self.amp():
            out = self.nets["generator"](codes(batch.indices))
            loss = self.reconstruction_loss(out.float(), batch.float_images())
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.optimizers.values():
            opt.step()
        with torch.no_grad():
            codes.weight[batch.indices] = self.project(codes.weight[batch.indices])
        return {"loss": loss.detach()}

    def finalize(self, streams: dict[str, Arrays]) -> None:
        """Fit the sampling density to the codes (float64; a 1e-6 ridge keeps every Cholesky factor defined).

        "gaussian": N(mean, unbiased covariance). "gmm": EM from k-means++ centres seeded by the run's seed.
        """
        z = self._codes().z.weight.detach().double().cpu()
        fit = self.nets["latent_fit"]
        if isinstance(fit, MixtureFit):
            fit.fit(z, seed=self.seed)
            return
        assert isinstance(fit, GaussianFit)  # setup() puts one of the two there
        cov = torch.cov(z.T) + 1e-6 * torch.eye(z.shape[1], dtype=z.dtype)
        fit.mean.copy_(z.mean(0).float())
        fit.chol.copy_(torch.linalg.cholesky(cov).float())

    def evaluate(self, eval_arrays: Arrays | None) -> dict[str, float]:
        """Mean squared reconstruction error (in [-1, 1] units) of up to 2000 coded training images."""
        target = getattr(self, "_recon_images", None)
        if target is None:
            return {}
        out = self.nets["generator"](self._codes().z.weight[: len(target)])
        return {"train_recon_mse": float(F.mse_loss(out, target))}

    def load_state(self, state: dict, where: str) -> None:
        """Resize the code table to the checkpoint's before loading (n_codes = 0 means "all images")."""
        weight = state.get("nets", {}).get("codes", {}).get("z.weight") if isinstance(state.get("nets"), dict) else None
        if isinstance(weight, torch.Tensor) and weight.ndim == 2 and weight.shape[0] != self._codes().z.num_embeddings:
            self.nets["codes"] = Codes(weight.shape[0], self.options.z_dim).to(self.device)
        super().load_state(state, where)

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        """eps [n, z_dim] ~ N(0, I); for the "gmm" fit also u [n] ~ U[0, 1), drawn after eps."""
        latents = {"eps": torch.randn(n, self.options.z_dim, generator=generator)}
        if self.options.latent_fit == "gmm":
            latents["u"] = torch.rand(n, generator=generator)
        return latents

    def decode(self, latents: Latents) -> torch.Tensor:
        fit = self.nets["latent_fit"]
        z = fit(latents["eps"], latents["u"]) if isinstance(fit, MixtureFit) else fit(latents["eps"])
        return self.nets["generator"](z)

    def reconstruct(self, rows: torch.Tensor) -> torch.Tensor:
        """Decode the stored codes ``rows`` (copies of training images ``codes.image_index[rows]``)."""
        return self.nets["generator"](self._codes().z.weight[rows.to(self.device)])
