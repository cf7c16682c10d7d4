"""What the ViT extractors (DINOv2, CLIP) share: input checks, per-size preprocessing, state-dict checks, how an
extractor is built from its resolved weights and how each architecture is registered.

A :class:`VitExtractor` takes uint8 RGB [B, 3, H, W] (tensor or numpy) or a list of [3, H, W] of mixed sizes,
runs its named :class:`~genbench.features.vit_preprocess.VitPolicy` per group of equal-sized images, and
returns ``{"features": float32 [B, D]}`` (no logits: these networks have no classifier head).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, InputError, WeightsError
from .base import EXTRACTORS, FeatureExtractor, MetricNames, check_device
from .vit_preprocess import VitPolicy
from .weights import ResolvedWeights


def as_uint8_tensor(image: object, what: str) -> torch.Tensor:
    """A uint8 tensor from a tensor or numpy array; InputError naming ``what`` otherwise."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{what}: expected a uint8 torch.Tensor or numpy array, got {type(image).__name__}")
    if image.dtype != torch.uint8:
        raise InputError(f"{what}: expected dtype uint8 with values 0..255, got {image.dtype}; "
                         "convert float images with (x * 255).round().clamp(0, 255).to(torch.uint8)")
    return image


def check_state_dict(state: dict[str, torch.Tensor], net: nn.Module, source: str, what: str,
                     hint: str = "") -> dict[str, torch.Tensor]:
    """``state`` as it loads strictly into ``net``; WeightsError naming ``source`` and the expected shapes.

    Accepts a ``module.`` prefix (DataParallel saves). Missing, unexpected and wrongly shaped keys are listed
    (the first three of each) with the shapes ``net`` expects; ``hint`` is appended (e.g. which variant the
    file looks like).
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    expected = net.state_dict()
    missing = [f"{k} {tuple(v.shape)}" for k, v in expected.items() if k not in state]
    unexpected = sorted(k for k in state if k not in expected)
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("wrong shape", wrong), ("missing", missing), ("unexpected", unexpected)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{', ...' if len(items) > 3 else ''}")
        raise WeightsError(f"weights file {source} does not fit {what} ({'; '.join(parts)}){hint}")
    return {k: state[k].to(v.dtype) for k, v in expected.items()}


class VitArch(Protocol):
    """What every ViT architecture record names: the extractor and the width of its features."""

    @property
    def name(self) -> str: ...
    @property
    def embed_dim(self) -> int: ...


class VitExtractor(FeatureExtractor):
    """Base of the ViT extractors: uint8 images -> policy -> ``self.net`` -> ``{"features": [B, D]}``.

    ``arch`` gives ``name`` and ``feature_dim`` (its ``embed_dim``); subclasses set ``layer``, ``metric_names``
    and ``input_size``; ``net`` maps normalised float32 [B, 3, S, S] to float32 [B, D]. Always in eval mode,
    no gradients.
    """

    logits_dim = None
    accepts_mixed_sizes = True
    input_size: int = 224
    #: False when the weights file's sha256 was not checked against a published or pinned one.
    weights_verified: bool = False

    def __init__(self, arch: VitArch, net: nn.Module, policy: VitPolicy, weights_sha256: str,
                 device: str | torch.device = "cpu") -> None:
        super().__init__(policy.name, weights_sha256)
        self.name = arch.name
        self.feature_dim = arch.embed_dim
        self.arch = arch
        self.policy = policy
        self.device = torch.device(device)
        check_device(self.device)
        self.net = net.requires_grad_(False).eval().to(self.device)
        self.eval()

    def train(self, mode: bool = True) -> VitExtractor:
        return super().train(False)

    def prepare(self, images: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]) -> torch.Tensor:
        """Validate and preprocess: uint8 images -> float32 [B, 3, S, S] on ``self.device``."""
        size = self.input_size
        if isinstance(images, (torch.Tensor, np.ndarray)):
            batch = as_uint8_tensor(images, "images")
            if batch.dim() != 4 or batch.shape[1] != 3:
                raise InputError(f"images: expected uint8 [B, 3, H, W] RGB, got shape {tuple(batch.shape)}")
            return self.policy(batch.to(self.device), size)
        if not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
            raise InputError(f"images: expected a uint8 [B,3,H,W] tensor or a list of [3,H,W], "
                             f"got {type(images).__name__}")
        items = [as_uint8_tensor(img, f"images[{i}]") for i, img in enumerate(images)]
        for i, img in enumerate(items):
            if img.dim() != 3 or img.shape[0] != 3:
                raise InputError(f"images[{i}]: expected uint8 [3, H, W] RGB, got shape {tuple(img.shape)}")
        out = torch.empty((len(items), 3, size, size), dtype=torch.float32, device=self.device)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(items):
            by_size.setdefault((img.shape[1], img.shape[2]), []).append(i)
        for idx in by_size.values():
            out[idx] = self.policy(torch.stack([items[i] for i in idx]).to(self.device), size)
        return out

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]
                ) -> dict[str, torch.Tensor]:
        x = self.prepare(images)
        if x.shape[0] == 0:
            return {"features": torch.empty((0, self.feature_dim), dtype=torch.float32, device=self.device)}
        return {"features": self.net(x).float()}


_Extractor = TypeVar("_Extractor", bound=VitExtractor)


def build_from_weights(make: Callable[..., _Extractor], arch: VitArch, state: dict[str, torch.Tensor],
                       resolved: ResolvedWeights, policy: VitPolicy, device: str | torch.device) -> _Extractor:
    """``make(arch, state, sha256, policy, device=..., source=...)``, recording whether the weights were verified.

    ConfigError when the network cannot go to ``device`` (e.g. an unknown device string), naming --device.
    """
    try:
        extractor = make(arch, state, resolved.sha256, policy, device=device, source=str(resolved.path))
    except RuntimeError as exc:
        raise ConfigError(f"cannot build {arch.name} on device={device!r} (--device): {exc}") from exc
    extractor.weights_verified = resolved.verified
    return extractor


def register_vit(arch_name: str, build: Callable[..., VitExtractor], metric_names: MetricNames,
                 preprocessing: Any) -> None:
    """Register ``arch_name`` as an extractor whose factory calls ``build(arch_name, ...)``; its metric names and
    its preprocessing registry are declared on the factory (read without loading weights)."""
    def factory(weights: str | os.PathLike | None = None, preprocessing: str | None = None,
                device: str | torch.device = "cpu", *, allow_unverified: bool = False, allow_download: bool = True,
                weights_sha256: str | None = None) -> VitExtractor:
        return build(arch_name, weights, preprocessing, device, allow_unverified=allow_unverified,
                     allow_download=allow_download, weights_sha256=weights_sha256)

    factory.__name__ = f"build_{arch_name.replace('-', '_')}"
    factory.__doc__ = f"The {arch_name} extractor (:func:`{build.__module__}.{build.__name__}`)."
    factory.metric_names = metric_names  # type: ignore[attr-defined]  # known without loading weights
    factory.preprocessing = preprocessing  # type: ignore[attr-defined]  # read via EXTRACTORS
    EXTRACTORS.register(arch_name)(factory)
