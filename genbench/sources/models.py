"""Sources that draw from a seeded image model (a generator network): its samples, read like any folder.

:class:`GeneratorSource` reads any :class:`ImageGenerator` (the bundled baselines' families are such
generators: ``GeneratorSource(genbench.baselines.load_checkpoint("dcgan"), n=10000, seed=0)``).

Determinism: every sample's randomness is drawn up front, for all n samples, from one CPU
``torch.Generator`` seeded with ``seed``; batches only slice those latents, so the images do not depend on
``batch_size`` (a generator must make no cross-sample computation at inference).

Quantisation (:func:`quantize`, the same as ``torchvision.utils.save_image``, i.e. what a saved PNG holds):
the network output is clamped to the generator's output range [lo, hi], mapped to [0, 1] by
(x - lo) / (hi - lo), then ``uint8(floor(255 * v + 0.5))`` (round half up), in float32.
"""
from __future__ import annotations

import hashlib
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import InputError
from .base import ImageSource

Latents = dict[str, torch.Tensor]


class ImageGenerator(Protocol):
    """What :class:`GeneratorSource` needs of a model: seeded latents, a decoder, and what its images are."""

    @property
    def name(self) -> str: ...  # the model family, for messages
    @property
    def run_name(self) -> str: ...  # the model's own name, in keys and locations
    @property
    def conditional(self) -> bool: ...  # draw() takes class labels
    @property
    def output_range(self) -> tuple[float, float]: ...  # the range of decode()'s float images
    @property
    def image_size(self) -> tuple[int, int]: ...  # (H, W) of decode()'s images
    @property
    def channels(self) -> int: ...  # 1 gray, 3 colour
    @property
    def device(self) -> torch.device: ...
    @property
    def options(self) -> Any: ...  # everything but the weights that changes the images (its repr is hashed)

    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        """All randomness for ``n`` samples (CPU tensors with leading dimension n)."""
        ...

    def decode(self, latents: Latents) -> torch.Tensor:
        """Float images [B, C, H, W] in ``output_range`` for a slice of ``draw``'s latents."""
        ...

    def sample_labels(self, latents: Latents) -> torch.Tensor | None: ...
    def repeated_samples(self, latents: Latents) -> int: ...
    def train_mode(self, training: bool) -> None: ...
    def state(self) -> dict[str, Any]: ...  # {"nets": {name: state_dict}, "extra": {name: tensor}}


def quantize(images: torch.Tensor, output_range: tuple[float, float]) -> np.ndarray:
    """float [B, C, H, W] in ``output_range`` -> uint8 exactly as a saved PNG would hold it.

    C = 1 gives gray [B, H, W]; C = 3 gives channels-last RGB [B, H, W, 3] (as PIL and .npz files hold it).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"quantize: expected float images [B, 1 or 3, H, W], got {tuple(images.shape)}")
    lo, hi = output_range
    x = images.detach().float().clamp(lo, hi).sub(lo).div(hi - lo)
    x = x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return (x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)).cpu().numpy()


def sample_shape(generator: ImageGenerator) -> tuple[int, ...]:
    """One quantised sample's shape: (H, W) gray, (H, W, C) colour."""
    height, width = generator.image_size
    return (height, width) if generator.channels == 1 else (height, width, generator.channels)


def check_request(generator: ImageGenerator, n: Any, batch_size: int, labels: Any) -> None:
    """InputError for a negative or non-integer ``n``, a batch size below 1, or labels for an unconditional model."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n (--n) must be a non-negative integer, got {n!r}")
    if batch_size < 1:
        raise InputError(f"batch_size (--batch-size) must be >= 1, got {batch_size}")
    if labels is not None and not generator.conditional:
        raise InputError(f"labels (--labels) given, but {generator.name} is not class-conditional; only a "
                         "class-conditional model (cgan) takes labels")


def decode_range(generator: ImageGenerator, latents: Latents, start: int, stop: int) -> np.ndarray:
    """Samples ``start:stop`` of ``latents`` as uint8 (see :func:`quantize`): [B, H, W] or [B, H, W, C]."""
    part = {k: v[start:stop].to(generator.device) for k, v in latents.items()}
    with torch.no_grad():
        return quantize(generator.decode(part), generator.output_range)


class GeneratorSource(ImageSource):
    """An ImageSource of a generator's samples: uint8 RGB [3, H, W].

    Gray models' images are repeated into the three channels; colour models' [H, W, 3] samples are read
    channels-first, as every ImageSource reads.

    Latents for all ``n`` images are drawn at construction; images are generated lazily, one batch of
    ``batch_size`` at a time (the last batch is cached for sequential ``read``). ``label(i)`` is the class
    asked of a conditional model (drawn from the seed unless ``labels`` [n] are given), a translation
    model's target class, else None.
    """

    kind = "generator"

    def __init__(self, generator: ImageGenerator, n: int, seed: int = 0, batch_size: int = 256,
                 labels: Any = None) -> None:
        self.family = generator
        check_request(generator, n, batch_size, labels)
        generator.train_mode(False)
        self.n, self.seed, self.batch_size = int(n), int(seed), int(batch_size)
        self._latents = generator.draw(self.n, torch.Generator().manual_seed(self.seed), labels)
        drawn = generator.sample_labels(self._latents)
        self._labels = drawn.numpy().astype(np.int64) if drawn is not None else None
        path = getattr(generator, "checkpoint_path", None)
        self.name = generator.run_name
        self.location = str(path) if path is not None else f"<in-memory {self.name}>"
        self._block: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"GeneratorSource: range {start}:{stop} outside 0:{self.n}")

    def read_batch(self, start: int, stop: int) -> np.ndarray:
        """uint8 [stop - start, 3, H, W]."""
        self._check_range(start, stop)
        parts = [decode_range(self.family, self._latents, s, min(s + self.batch_size, stop))
                 for s in range(start, stop, self.batch_size)]
        images = np.concatenate(parts) if parts else np.zeros((0, *sample_shape(self.family)), dtype=np.uint8)
        if images.ndim == 3:  # gray [B, H, W] -> [B, 3, H, W]
            return np.repeat(images[:, None], 3, axis=1)
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def read(self, index: int) -> np.ndarray:
        self._check_range(index, index + 1)
        start = index - index % self.batch_size
        if self._block is None or self._block[0] != start:
            self._block = (start, self.read_batch(start, min(start + self.batch_size, self.n)))
        return self._block[1][index - start]

    def key(self, index: int) -> str:
        return f"{self.name}-seed{self.seed}-{index:06d}"

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    def repeats(self) -> int:
        return self.family.repeated_samples(self._latents)

    def label(self, index: int) -> int | None:
        return None if self._labels is None else int(self._labels[index])

    def labels(self) -> np.ndarray | None:
        return None if self._labels is None else self._labels.copy()

    def fingerprint(self) -> str:
        """Hash of what the images are made of: the weights and extra state as they are in memory now (not
        the file they came from, so a model changed after loading never hits a stale cache entry), the
        options and every drawn latent (which covers n, seed and labels)."""
        h = hashlib.sha256(f"genbench-generator-v2|{type(self.family).__name__}|{self.family.options!r}|".encode())
        state = self.family.state()
        tensors = [(f"nets.{net}.{key}", value) for net, sd in sorted(state["nets"].items()) for key, value in sd.items()]
        tensors += [(f"extra.{key}", value) for key, value in sorted(state["extra"].items())]
        tensors += [(f"latent.{key}", value) for key, value in sorted(self._latents.items())]
        for name, value in tensors:
            if isinstance(value, torch.Tensor):
                h.update(name.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()
