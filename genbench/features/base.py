"""The FeatureExtractor interface and its registry.

An extractor owns all resizing and normalisation: it takes uint8 RGB images
[B, 3, H, W] (or a list of [3, H, W] of mixed sizes when ``accepts_mixed_sizes``)
and returns named float32 layers: ``features`` [B, D] always, ``logits`` [B, K]
where the network has a classifier head (used for IS-style scores).
"""
from __future__ import annotations

import torch
from torch import nn

from .identity import EXTRACTORS, INCEPTION_METRIC_NAMES, ExtractorIdentity, MetricNames

__all__ = ["EXTRACTORS", "INCEPTION_METRIC_NAMES", "ExtractorIdentity", "FeatureExtractor", "MetricNames",
           "check_device"]


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
