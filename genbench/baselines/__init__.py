"""genbench's bundled baseline generators for Fashion-MNIST 28x28 (dcgan, wgan-gp, vae, glo, flow, cgan, cyclegan).

See :mod:`baselines.api` for the public functions and :mod:`baselines.train` for the shared loop; a model's
samples as an image source: ``genbench.sources.models.GeneratorSource(load_checkpoint(name), n, seed)``.
"""
from __future__ import annotations

from .api import (
    FAMILIES,
    list_families,
    load_checkpoint,
    sample_images,
    sample_images_and_labels,
    train,
)

__all__ = ["FAMILIES", "list_families", "load_checkpoint", "sample_images", "sample_images_and_labels", "train"]
