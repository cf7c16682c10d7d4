"""A PyTorch Lightning Callback that logs fd_fmnist every N training batches with genbench.Evaluator.

    pip install lightning                                    # not a genbench dependency
    python examples/lightning_callback.py                    # CPU, 200 batches, about a minute
    python examples/lightning_callback.py --accelerator gpu --devices 2 --steps 2000   # DDP: exact merge

The same callback, for any metrics and with every metric's interval, ships as
``genbench.integrations.lightning.GenbenchCallback`` (``pip install 'genbench[lightning]'``); this file keeps a
self-contained copy to read. ``GenbenchFD`` is the part to copy: it builds one Evaluator (reference loaded, network built) when
training starts, on the LightningModule's device, and every ``every_n_batches`` batches resets it, feeds
``n_samples`` images from ``pl_module.sample(k)`` (float [k, C, H, W] in [0, 1], on the module's device)
and logs the metric to the trainer's loggers and ``trainer.callback_metrics``. Under DDP each rank
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

import genbench
from genbench.baselines.families.nets import ConvDiscriminator, ConvGenerator, dcgan_init

DATA = Path("/usr/share/datasets/fashion-mnist")


class GenbenchFD(pl.Callback):
    """Log ``metric`` of ``n_samples`` generated images against ``reference`` every ``every_n_batches``.

    ``pl_module.sample(k, generator)`` must return float [k, C, H, W] in [0, 1] (or uint8) on its device.
    ``evaluator_kwargs`` go to :class:`genbench.Evaluator` (extractor, max_samples, ...).
    """

    def __init__(self, reference: str = "fashion-mnist:train", metric: str = "fd_fmnist", every_n_batches: int = 100,
                 n_samples: int = 1000, chunk: int = 250, seed: int = 0, **evaluator_kwargs) -> None:
        super().__init__()
        self.reference, self.metric, self.every = reference, metric, every_n_batches
        self.n_samples, self.chunk, self.seed = n_samples, chunk, seed
        self.evaluator_kwargs = evaluator_kwargs
        self.evaluator: genbench.Evaluator | None = None
        self.batches = 0  # training batches seen (not trainer.global_step: a GAN steps two optimisers a batch)
        self.history: list[tuple[int, float]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.evaluator is None:  # here the module is on its device already (not yet in setup())
            self.evaluator = genbench.Evaluator(self.reference, metrics=[self.metric], device=str(pl_module.device),
                                                batch_size=self.chunk, **self.evaluator_kwargs)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            self.evaluate(trainer, pl_module)

    @torch.no_grad()
    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float:
        """Score fresh samples; every rank must get here (compute() all-reduces under DDP)."""
        rank, world = trainer.global_rank, trainer.world_size
        share = self.n_samples // world + (rank < self.n_samples % world)
        gen = torch.Generator(device=pl_module.device).manual_seed(self.seed * 1_000_003 + rank)
        was_training = pl_module.training
        pl_module.eval()
        self.evaluator.reset()
        for start in range(0, share, self.chunk):
            self.evaluator.update(pl_module.sample(min(self.chunk, share - start), gen))
        value = self.evaluator.compute().value(self.metric)
        pl_module.train(was_training)
        # Straight to the loggers, one row at the step of this batch's loss rows (pl_module.log would repeat an
        # on_step value on every later row of the epoch; trainer.global_step counts both optimisers' steps), and
        # into callback_metrics for ModelCheckpoint(monitor=...) / EarlyStopping.
        step = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step)
        for logger in trainer.loggers:
            logger.log_metrics({self.metric: value}, step=step)
        trainer.callback_metrics[self.metric] = torch.tensor(value, dtype=torch.float64)  # same on every rank
        self.history.append((self.batches, value))
        if trainer.is_global_zero:
            print(f"batch {self.batches:5d}  {self.metric} {value:10.3f}  ({self.n_samples} samples)", flush=True)
        return value


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
    callback = GenbenchFD(every_n_batches=args.every, n_samples=args.eval_n)
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=args.devices,
        # The D step leaves G's parameters unused (and the G step D's): DDP must be told.
        strategy="ddp_find_unused_parameters_true" if args.devices > 1 else "auto",
        max_steps=2 * args.steps,  # manual optimisation: global_step counts both optimisers' steps
        callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        logger=CSVLogger(args.log_dir, name="", version="") if args.log_dir else False, log_every_n_steps=1,
    )
    trainer.fit(DCGANModule(), loader)
    return callback.history


if __name__ == "__main__":
    main()
