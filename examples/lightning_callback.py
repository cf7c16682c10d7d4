"""A PyTorch Lightning Callback that logs fd_fmnist every N training batches with genbench.Evaluator.

    pip install lightning                                    # not a genbench dependency
    python examples/lightning_callback.py                    # CPU, 200 batches, about a minute
    python examples/lightning_callback.py --accelerator gpu --devices 2 --steps 2000   # DDP: exact merge

The callback is ``genbench.integrations.lightning.GenbenchCallback`` (``pip install 'genbench[lightning]'``):
it builds one Evaluator (reference loaded, network built) when training starts, on the LightningModule's
device, and every ``every_n_batches`` batches resets it, feeds ``n_samples`` images from
``pl_module.sample(k, generator)`` (float [k, C, H, W] in [0, 1], on the module's device) and logs the metric
to the trainer's loggers and ``trainer.callback_metrics``. Under DDP each rank
generates its share and ``Evaluator.compute()`` merges the float64 sums across ranks, so every rank logs
the same number, equal to one process scoring all the samples. The model here is the DCGAN of
genbench's bundled baselines (``genbench.baselines.families.nets``) trained with Lightning's manual
optimisation.
"""
from __future__ import annotations

import argparse
import gzip
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from genbench.baselines.families.nets import ConvDiscriminator, ConvGenerator, dcgan_init
from genbench.integrations.lightning import GenbenchCallback

DATA = Path("/usr/share/datasets/fashion-mnist")


class DCGANModule(pl.LightningModule):
    """The bundled DCGAN's networks and non-saturating losses, one D and one G step per batch."""

    def __init__(self, z_dim: int = 64, g_ch: int = 48, d_ch: int = 48, lr: float = 2e-4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator, self.discriminator = ConvGenerator(z_dim, g_ch), ConvDiscriminator(1, d_ch)
        dcgan_init(self.generator)
        dcgan_init(self.discriminator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Float [n, 1, 28, 28] in [0, 1] on the module's device."""
        z = torch.randn(n, self.hparams.z_dim, device=self.device, generator=generator)
        return (self.generator(z) + 1) / 2

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        (real,) = batch
        real = real * 2 - 1  # [0, 1] -> [-1, 1], the generator's tanh range
        opt_d, opt_g = self.optimizers()
        fake = self.generator(torch.randn(real.shape[0], self.hparams.z_dim, device=self.device))
        d_real, d_fake = self.discriminator(real), self.discriminator(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()
        d_fake = self.discriminator(fake)
        loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))  # -log D(G(z))
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()
        self.log_dict({"loss_d": loss_d, "loss_g": loss_g})

    def configure_optimizers(self):
        betas = (0.5, 0.999)
        return (torch.optim.Adam(self.discriminator.parameters(), self.hparams.lr, betas=betas),
                torch.optim.Adam(self.generator.parameters(), self.hparams.lr, betas=betas))


def load_fashion_mnist(root: Path, limit: int) -> torch.Tensor:
    """Training images as float [N, 1, 28, 28] in [0, 1] (from the idx files)."""
    with gzip.open(root / "train-images-idx3-ubyte.gz", "rb") as fh:
        raw = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(raw[:limit].astype(np.float32) / 255.0)


def main(argv: Sequence[str] | None = None) -> list[tuple[int, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="training batches")
    ap.add_argument("--every", type=int, default=100, help="log fd_fmnist every N batches")
    ap.add_argument("--eval-n", type=int, default=1000, help="generated samples per evaluation (all ranks)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, default=20_000, help="training images read from --data")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--accelerator", default="cpu")
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--log-dir", type=Path, default=None, help="write a CSVLogger's metrics.csv here")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the models are tiny)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pl.seed_everything(0, verbose=False)

    real = load_fashion_mnist(args.data, args.limit)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(real), batch_size=args.batch, shuffle=True,
                                         drop_last=True)
    callback = GenbenchCallback("fashion-mnist:train", metrics=["fd_fmnist"], every_n_batches=args.every,
                                n_samples=args.eval_n)
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=args.devices,
        # The D step leaves G's parameters unused (and the G step D's): DDP must be told.
        strategy="ddp_find_unused_parameters_true" if args.devices > 1 else "auto",
        max_steps=2 * args.steps,  # manual optimisation: global_step counts both optimisers' steps
        callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        logger=CSVLogger(args.log_dir, name="", version="") if args.log_dir else False, log_every_n_steps=1,
    )
    trainer.fit(DCGANModule(), loader)
    history = [(batches, values["fd_fmnist"]) for batches, values in callback.history]
    if trainer.is_global_zero:
        for batches, value in history:
            print(f"batch {batches:5d}  fd_fmnist {value:10.3f}  ({args.eval_n} samples)", flush=True)
    return history


if __name__ == "__main__":
    main()
