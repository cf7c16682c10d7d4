"""Feature extractors; importing this package registers the bundled ones.

Plug-ins: ``GENBENCH_PLUGINS`` lists modules (comma-separated, e.g. ``GENBENCH_PLUGINS=mypkg.extractors``)
imported before an extractor is looked up, so that an extractor registered with
``@EXTRACTORS.register(name)`` in such a module exists in every process, also the ones torchrun starts.
"""
from __future__ import annotations

import importlib
import inspect
import os
from functools import lru_cache

from ..errors import ConfigError
from .base import EXTRACTORS, ExtractorIdentity, FeatureExtractor, MetricNames

_BUNDLED_MODULES = ("genbench.features.inception", "genbench.features.fmnist_cnn")

#: Environment variable naming plug-in modules to import (comma-separated).
PLUGINS_ENV = "GENBENCH_PLUGINS"


def plugin_modules() -> list[str]:
    """Module names listed in $GENBENCH_PLUGINS."""
    return [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]


def _register_bundled() -> None:
    for module in _BUNDLED_MODULES:
        importlib.import_module(module)
    for module in plugin_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"{PLUGINS_ENV}: cannot import plug-in module {module!r} ({exc}); expected importable module "
                "names separated by commas"
            ) from exc


@lru_cache(maxsize=8)
def build_extractor(name: str, weights: str | None = None, preprocessing: str | None = None, device: str = "cpu",
                    allow_unverified: bool = False) -> FeatureExtractor:
    """Build (and cache per process) the extractor ``name``; an unknown name lists the valid ones.

    ``allow_unverified`` accepts a weights file whose sha256 differs from the published one
    (its actual sha256 is what gets recorded); extractors without a pinned download refuse it.
    """
    _register_bundled()
    factory = EXTRACTORS.get(name)
    options = {}
    if allow_unverified:
        if "allow_unverified" not in inspect.signature(factory).parameters:
            raise ConfigError(f"--allow-unverified-weights does not apply to extractor {name!r}")
        options["allow_unverified"] = True
    extractor = factory(weights=weights, preprocessing=preprocessing, device=device, **options)
    return extractor.eval()


def extractor_names() -> list[str]:
    _register_bundled()
    return EXTRACTORS.names()


__all__ = ["EXTRACTORS", "ExtractorIdentity", "FeatureExtractor", "MetricNames", "build_extractor", "extractor_names"]
