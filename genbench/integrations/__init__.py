"""genbench in training loops and experiment trackers; every library here is an optional extra.

- :mod:`genbench.integrations.lightning`: :class:`~genbench.integrations.lightning.GenbenchCallback`, a
  PyTorch Lightning callback scoring fresh samples with :class:`genbench.Evaluator` every N batches
  (``pip install genbench[lightning]``);
- :mod:`genbench.integrations.loggers`: :class:`~genbench.integrations.loggers.TensorBoardLogger`
  (``SummaryWriter``; ``genbench[tensorboard]``), :class:`~genbench.integrations.loggers.WandbLogger`
  (``genbench[wandb]``), :class:`~genbench.integrations.loggers.MLflowLogger` (``genbench[mlflow]``), and
  :func:`~genbench.integrations.loggers.log_result` for an Evaluator's or ``genbench.score``'s result;
  ``genbench sweep --log tensorboard:DIR`` (or ``wandb:PROJECT``, ``mlflow:EXPERIMENT``) logs a sweep's entries.

Importing this package imports none of those libraries; each module raises an ImportError naming the extra
when its library is missing.
"""
from __future__ import annotations

__all__ = ["lightning", "loggers"]
