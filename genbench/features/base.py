"""The FeatureExtractor interface and its registry.

An extractor owns all resizing and normalisation: it takes uint8 RGB images
[B, 3, H, W] (or a list of [3, H, W] of mixed sizes when ``accepts_mixed_sizes``)
and returns named float32 layers: ``features`` [B, D] always, ``logits`` [B, K]
where the network has a classifier head (used for IS-style scores).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Registry


@dataclass(frozen=True)
class ExtractorIdentity:
    """Everything about an extractor that changes the numbers; travels with stats and results."""

    extractor: str
    layer: str
    preprocessing: str
    weights_sha256: str
    feature_dim: int

    def to_dict(self) -> dict:
        return {
            "extractor": self.extractor,
            "layer": self.layer,
            "preprocessing": self.preprocessing,
            "weights_sha256": self.weights_sha256,
            "feature_dim": self.feature_dim,
        }


@dataclass(frozen=True)
class MetricNames:
    """How metrics computed on an extractor's features are named in output.

    The canonical Inception gives ``fid``/``is``/``kid``; a domain network gives
    names such as ``fd_fmnist`` so its numbers are never mistaken for FID.
    """

    fd: str
    is_: str
    kid: str


#: The canonical names, reserved for the FID Inception network.
INCEPTION_METRIC_NAMES = MetricNames("fid", "is", "kid")


def check_device(device: torch.device) -> None:
    """ConfigError unless ``device`` can be used here; never creates a CUDA context."""
    from ..errors import ConfigError

    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={str(device)!r} (--device): CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={str(device)!r} (--device): this machine has {torch.cuda.device_count()} "
                              "CUDA device(s)")


class FeatureExtractor(nn.Module):
    """Base class. Subclasses set the class attributes and implement ``forward``."""

    name: str = ""
    layer: str = ""
    feature_dim: int = 0
    logits_dim: int | None = None
    accepts_mixed_sizes: bool = True
    metric_names: MetricNames = MetricNames("fd", "is", "kid")

    def __init__(self, preprocessing: str, weights_sha256: str) -> None:
        super().__init__()
        self.preprocessing = preprocessing
        self.weights_sha256 = weights_sha256

    def identity(self) -> ExtractorIdentity:
        return ExtractorIdentity(self.name, self.layer, self.preprocessing, self.weights_sha256, self.feature_dim)

    def forward(self, images: torch.Tensor | list[torch.Tensor]) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


#: name -> factory(weights: str | None, preprocessing: str | None) -> FeatureExtractor
EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("extractor", flag="--extractor")
