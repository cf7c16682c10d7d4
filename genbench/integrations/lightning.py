"""A PyTorch Lightning callback: ``genbench.Evaluator`` metrics of fresh samples every N training batches.

    from genbench.integrations.lightning import GenbenchCallback
    trainer = pl.Trainer(callbacks=[GenbenchCallback("fashion-mnist:train", metrics=["fd_fmnist"],
                                                     every_n_batches=500, n_samples=5000)])

The LightningModule provides ``sample(k, generator)``: float [k, C, H, W] in [0, 1] (or uint8) on its device
(``sample_fn`` replaces it). The callback builds one Evaluator (reference loaded, network built) when training
starts, on the module's device; every ``every_n_batches`` batches it resets it, feeds ``n_samples`` images in
chunks of ``chunk`` and logs each metric's headline (and interval, where asked) to the trainer's loggers
(TensorBoard, W&B, MLflow, CSV: whatever the Trainer has) and to ``trainer.callback_metrics`` (so
``ModelCheckpoint(monitor="fd_fmnist")`` and ``EarlyStopping`` see it). Under DDP each rank generates its
share and ``Evaluator.compute()`` merges the float64 sums across ranks: every rank logs the same number, equal
to one process scoring all the samples. ``pip install 'genbench[lightning]'``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"lightning is not installed: pip install 'genbench[lightning]' ({exc})") from exc

import genbench

from .loggers import scalars


class GenbenchCallback(pl.Callback):
    """Log ``metrics`` of ``n_samples`` generated images against ``reference`` every ``every_n_batches`` batches.

    ``evaluator_kwargs`` go to :class:`genbench.Evaluator` (extractor, max_samples, ...); ``seed`` seeds the
    samples' generator (per rank: ``seed * 1_000_003 + rank``); ``history`` keeps (batches, values) pairs.
    """

    def __init__(self, reference: Any, metrics: list[str] | None = None, every_n_batches: int = 1000,
                 n_samples: int = 10_000, chunk: int = 250, seed: int = 0,
                 sample_fn: Callable[[Any, int, torch.Generator], Any] | None = None, **evaluator_kwargs: Any) -> None:
        super().__init__()
        if every_n_batches < 1 or n_samples < 2 or chunk < 1:
            raise genbench.errors.ConfigError("every_n_batches and chunk must be >= 1, n_samples >= 2")
        self.reference, self.metrics, self.every = reference, metrics, every_n_batches
        self.n_samples, self.chunk, self.seed, self.sample_fn = n_samples, chunk, seed, sample_fn
        self.evaluator_kwargs = evaluator_kwargs
        self.evaluator: genbench.Evaluator | None = None
        self.batches = 0  # training batches seen (not trainer.global_step: a GAN steps two optimisers a batch)
        self.history: list[tuple[int, dict[str, float]]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.evaluator is None:  # here the module is on its device already (not yet in setup())
            self.evaluator = genbench.Evaluator(self.reference, metrics=self.metrics, device=str(pl_module.device),
                                                batch_size=self.chunk, **self.evaluator_kwargs)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            self.evaluate(trainer, pl_module)

    def _sample(self, pl_module: pl.LightningModule, k: int, generator: torch.Generator) -> Any:
        if self.sample_fn is not None:
            return self.sample_fn(pl_module, k, generator)
        return pl_module.sample(k, generator)  # type: ignore[operator]  # the module's own method, by contract

    @torch.no_grad()
    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """Score fresh samples and log them; every rank must get here (compute() all-reduces under DDP)."""
        assert self.evaluator is not None  # built in on_train_start
        rank, world = trainer.global_rank, trainer.world_size
        share = self.n_samples // world + (rank < self.n_samples % world)
        gen = torch.Generator(device=pl_module.device).manual_seed(self.seed * 1_000_003 + rank)
        was_training = pl_module.training
        pl_module.eval()
        self.evaluator.reset()
        try:
            for start in range(0, share, self.chunk):
                self.evaluator.update(self._sample(pl_module, min(self.chunk, share - start), gen))
            values = scalars(self.evaluator.compute().metrics)
        finally:
            pl_module.train(was_training)
        # Straight to the loggers at the step of this batch's rows, and into callback_metrics for
        # ModelCheckpoint(monitor=...) / EarlyStopping.
        step = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step)
        for logger in trainer.loggers:
            logger.log_metrics(values, step=step)
        for key, value in values.items():
            trainer.callback_metrics[key] = torch.tensor(value, dtype=torch.float64)  # the same on every rank
        self.history.append((self.batches, values))
        return values
