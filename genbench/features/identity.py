"""What names an extractor and its numbers, without torch: its identity, its metric names, its registry.

Kept apart from :mod:`genbench.features.base` (the ``nn.Module`` interface) so that scoring feature files,
which never builds a network, does not import torch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


#: name -> factory(weights: str | None, preprocessing: str | None, device: str, ...) -> FeatureExtractor
#: (typed Any here: naming genbench.features.base would tie this torch-free module back to the nn.Module one)
EXTRACTORS: Registry[Callable[..., Any]] = Registry("extractor", flag="--extractor")
