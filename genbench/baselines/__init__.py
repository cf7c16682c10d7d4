"""genbench's bundled baseline generators for Fashion-MNIST 28x28 (dcgan, wgan-gp, vae, glo, flow, cgan, cyclegan).

See :mod:`baselines.api` for the public functions and :mod:`baselines.train` for the shared loop.
"""
from __future__ import annotations

from .api import (
    FAMILIES,
    GeneratorSource,
    list_families,
    load_checkpoint,
    quantize,
    sample_images,
    sample_images_and_labels,
    train,
)

__all__ = [
    "FAMILIES", "GeneratorSource", "list_families", "load_checkpoint", "quantize", "sample_images",
    "sample_images_and_labels", "train",
]
