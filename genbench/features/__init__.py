"""Feature extractors: the bundled ones are declared here, by name and module (:data:`BUNDLED`).

A declared extractor's module is imported the first time the extractor itself is needed (its factory, its
static metric names), never just to list names. Plug-ins: ``GENBENCH_PLUGINS`` lists modules (comma-separated,
e.g. ``GENBENCH_PLUGINS=mypkg.extractors``), imported when an extractor is first looked up, so that an extractor
registered with ``@EXTRACTORS.register(name)`` in such a module exists in every process, also the ones torchrun
starts. Every :func:`build_extractor` call builds a new network, owned by its caller (a prepared run).
"""
from __future__ import annotations

import importlib
import inspect
import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .identity import EXTRACTORS, ExtractorIdentity, MetricNames

if TYPE_CHECKING:
    from .base import FeatureExtractor

#: The bundled extractors: name -> the module that registers it.
BUNDLED: dict[str, str] = {
    "inception-v3": "genbench.features.inception",
    "fmnist-cnn": "genbench.features.fmnist_cnn",
    **{f"dinov2-vit-{size}14": "genbench.features.dinov2" for size in ("s", "b", "l", "g")},
    **{name: "genbench.features.clip" for name in ("clip-vit-b32", "clip-vit-l14", "clip-vit-l14-336")},
}
for _name, _module in BUNDLED.items():
    EXTRACTORS.declare(_name, _module)

#: Environment variable naming plug-in modules to import (comma-separated).
PLUGINS_ENV = "GENBENCH_PLUGINS"


def plugin_modules() -> list[str]:
    """Module names listed in $GENBENCH_PLUGINS."""
    return [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]


_plugins_loaded: list[str] = []  # the $GENBENCH_PLUGINS value whose modules were imported


def _load_plugins() -> None:
    """Import the $GENBENCH_PLUGINS modules (once per value of the variable)."""
    listed = os.environ.get(PLUGINS_ENV, "")
    if _plugins_loaded == [listed]:
        return
    for module in plugin_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"{PLUGINS_ENV}: cannot import plug-in module {module!r} ({exc}); expected importable module "
                "names separated by commas"
            ) from exc
    _plugins_loaded[:] = [listed]


def build_extractor(name: str, weights: str | None = None, preprocessing: str | None = None, device: str = "cpu",
                    allow_unverified: bool = False, weights_sha256: str | None = None,
                    layer: str | None = None) -> FeatureExtractor:
    """Build a new extractor ``name`` (in eval mode; the caller owns it); an unknown name lists the valid ones.

    ``allow_unverified`` accepts a weights file whose sha256 differs from the published one
    (its actual sha256 is what gets recorded); extractors without a pinned download refuse it.
    ``weights_sha256`` pins the sha256 of weights that have no published one (DINOv2).
    ``layer`` picks one of the extractor's layers (None: its default).
    """
    _load_plugins()
    factory = EXTRACTORS.get(name)
    options: dict[str, Any] = {}
    if allow_unverified:
        if "allow_unverified" not in inspect.signature(factory).parameters:
            raise ConfigError(f"--allow-unverified-weights does not apply to extractor {name!r}")
        options["allow_unverified"] = True
    if weights_sha256 is not None:
        if "weights_sha256" not in inspect.signature(factory).parameters:
            raise ConfigError(f"--weights-sha256 does not apply to extractor {name!r}")
        options["weights_sha256"] = weights_sha256
    if layer is not None:  # an extractor with several layers takes layer= (inception-v3: pool3, spatial)
        if "layer" not in inspect.signature(factory).parameters:
            raise ConfigError(f"--layer does not apply to extractor {name!r}: it has one layer")
        options["layer"] = layer
    extractor = factory(weights=weights, preprocessing=preprocessing, device=device, **options)
    return extractor.eval()


def static_metric_names(name: str) -> MetricNames | None:
    """The metric names of extractor ``name`` when its factory declares them (no weights loaded), else None."""
    _load_plugins()
    return getattr(EXTRACTORS.get(name), "metric_names", None)


def canonical_preprocessing(extractor: str, preprocessing: str) -> str:
    """The name recorded for ``preprocessing`` under ``extractor`` (an alias becomes its canonical name).

    Extractors with their own policy family (DINOv2, CLIP) declare it on their factory; the others use the
    Inception registry. ConfigError for a name the extractor's family does not know.
    """
    _load_plugins()
    registry = getattr(EXTRACTORS.get(extractor), "preprocessing", None) if extractor in EXTRACTORS else None
    if registry is None:
        from .preprocess import PREPROCESSING

        return PREPROCESSING.canonical(preprocessing)
    registry.get(preprocessing)  # ConfigError listing the valid names
    return registry.canonical(preprocessing)


def extractor_names() -> list[str]:
    _load_plugins()
    return EXTRACTORS.names()


def __getattr__(name: str) -> Any:
    # FeatureExtractor is an nn.Module: torch is imported only when it is asked for.
    if name == "FeatureExtractor":
        from .base import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EXTRACTORS", "ExtractorIdentity", "FeatureExtractor", "MetricNames", "build_extractor",
           "canonical_preprocessing", "extractor_names", "static_metric_names"]
