"""Named image transforms at a given strength, for sensitivity probes, demos and reference rows.

Every transform maps one uint8 image [3, H, W] to a uint8 image of the same size.
Random transforms draw from ``numpy.random.default_rng([seed, index])``, so an
image's result depends only on the seed and its index, never on batching.
Strength 0 is always the identity.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ..errors import ConfigError
from ..registry import Registry
from .base import ImageSource
from .derived import DerivedSource


@dataclass(frozen=True)
class TransformSpec:
    name: str
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
    strengths: tuple[float, ...]  # a default ladder of increasing strength, starting at 0
    unit: str


TRANSFORMS: Registry[TransformSpec] = Registry("transform", flag="--transforms")


def _register(name: str, strengths: tuple[float, ...], unit: str):
    def decorate(fn):
        TRANSFORMS.register(name)(TransformSpec(name, fn, strengths, unit))
        return fn

    return decorate


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)))


def _from_pil(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()


@_register("gaussian-blur", (0, 0.5, 1.0, 1.5, 2.0), "sigma in pixels")
def gaussian_blur(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    return _from_pil(_to_pil(image).filter(ImageFilter.GaussianBlur(radius=strength)))


@_register("gaussian-noise", (0, 8, 16, 32, 64), "std in 8-bit levels")
def gaussian_noise(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    noisy = image.astype(np.float64) + rng.normal(0.0, strength, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@_register("jpeg", (0, 90, 70, 50, 30, 10), "JPEG quality (0 = none; lower is stronger)")
def jpeg(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    buffer = io.BytesIO()
    _to_pil(image).save(buffer, format="JPEG", quality=int(strength))
    return _from_pil(Image.open(io.BytesIO(buffer.getvalue())))


@_register("downscale-upscale", (0, 0.2, 0.4, 0.6, 0.8), "fraction of resolution removed")
def downscale_upscale(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    h, w = image.shape[1:]
    small = (max(1, round(w * (1 - strength))), max(1, round(h * (1 - strength))))
    return _from_pil(_to_pil(image).resize(small, Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BILINEAR))


@_register("center-crop", (0, 0.1, 0.2, 0.3, 0.4), "fraction of each side cropped, then resized back")
def center_crop(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    h, w = image.shape[1:]
    dy, dx = int(round(h * strength / 2)), int(round(w * strength / 2))
    cropped = _to_pil(image).crop((dx, dy, w - dx, h - dy))
    return _from_pil(cropped.resize((w, h), Image.Resampling.BILINEAR))


@_register("hflip", (0, 0.25, 0.5, 0.75, 1.0), "probability of a horizontal flip")
def hflip(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    return image[:, :, ::-1].copy() if rng.uniform() < strength else image


@_register("shift", (0, 1, 2, 3, 4), "translation in pixels (random direction, edge-padded)")
def shift(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    k = int(round(strength))
    dy, dx = rng.integers(-k, k + 1, size=2)
    padded = np.pad(image, ((0, 0), (k, k), (k, k)), mode="edge")
    h, w = image.shape[1:]
    return padded[:, k + dy : k + dy + h, k + dx : k + dx + w].copy()


@_register("brightness", (0, 0.1, 0.2, 0.3, 0.4), "fraction of full scale added")
def brightness(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    return np.clip(image.astype(np.int16) + int(round(255 * strength)), 0, 255).astype(np.uint8)


def parse_transform(text: str) -> tuple[str, float]:
    """``"gaussian-blur=1.5"`` -> ("gaussian-blur", 1.5); the name is checked against the registry."""
    name, _, value = text.partition("=")
    TRANSFORMS.get(name)
    try:
        return name, float(value) if value else 0.0
    except ValueError:
        raise ConfigError(f"transform {text!r}: expected NAME=STRENGTH with a number, e.g. gaussian-blur=1.0") from None


class TransformedSource(DerivedSource):
    """Applies a chain of (transform, strength) pairs to every image of a base source, seeded per index."""

    kind = "transformed"
    keeps_repeats = True  # a transformed repeat is still a near-copy of its first occurrence

    def __init__(self, base: ImageSource, steps: list[tuple[str, float]], seed: int = 0) -> None:
        self.steps = [(TRANSFORMS.get(name), float(strength)) for name, strength in steps]
        self.seed = seed
        super().__init__(base, ",".join(f"{s.name}={v:g}" for s, v in self.steps))

    def derive(self, image: np.ndarray, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])
        for spec, strength in self.steps:
            image = spec.apply(image, strength, rng)
        return image

    def fingerprint_part(self) -> str:
        return f"{self.location}|seed={self.seed}"
