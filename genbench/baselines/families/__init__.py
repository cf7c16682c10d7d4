"""The baseline families; importing this package registers them all in FAMILIES."""
from __future__ import annotations

from . import cgan, cyclegan, dcgan, flow, glo, vae, wgan_gp  # noqa: F401  (registration)
from .base import FAMILIES, Family

__all__ = ["FAMILIES", "Family"]
