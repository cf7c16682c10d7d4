"""Feature extractors; importing this package registers the bundled ones."""
from __future__ import annotations

import importlib
from functools import lru_cache

from .base import EXTRACTORS, ExtractorIdentity, FeatureExtractor, MetricNames

_BUNDLED_MODULES = ("genbench.features.inception", "genbench.features.fmnist_cnn")


def _register_bundled() -> None:
    for module in _BUNDLED_MODULES:
        importlib.import_module(module)


@lru_cache(maxsize=8)
def build_extractor(name: str, weights: str | None = None, preprocessing: str | None = None, device: str = "cpu") -> FeatureExtractor:
    """Build (and cache per process) the extractor ``name``; an unknown name lists the valid ones."""
    _register_bundled()
    factory = EXTRACTORS.get(name)
    extractor = factory(weights=weights, preprocessing=preprocessing, device=device)
    return extractor.eval()


def extractor_names() -> list[str]:
    _register_bundled()
    return EXTRACTORS.names()


__all__ = ["EXTRACTORS", "ExtractorIdentity", "FeatureExtractor", "MetricNames", "build_extractor", "extractor_names"]
