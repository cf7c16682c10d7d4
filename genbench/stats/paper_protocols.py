"""The paper protocols' table (registry :data:`PROTOCOLS`) and how a protocol fixes a run's options.

What each protocol fixes is described in :mod:`genbench.protocols`, which scores a run under one
(:func:`genbench.protocols.score_protocol`); this module is the part the engine itself needs
(:func:`genbench.evaluate.prepare_run` applies :func:`apply_extract_protocol` to every run with ``--protocol``):
the :class:`Protocol` records, and the refusal, naming both, of an option that contradicts one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..config import ExtractOptions, MetricOptions
from ..errors import ConfigError
from ..registry import Registry


@dataclass(frozen=True)
class Protocol:
    """What a published protocol fixes. ``None`` in an option field: the protocol leaves it to genbench's default.

    ``metrics``: registry names, in the order of the paper's table; ``labels``: the table's names for them.
    ``second``: (extractor, preprocessing, metric) of a second feature space scored against the same reference
    (EDM2's FD_DINOv2). ``pr_reference_size``: images of the reference that precision/recall use (ADM: the
    reference batch's 10,000). ``num_samples``: the generated count the paper's numbers are reported on.
    """

    name: str
    title: str
    source: str
    extractor: str
    preprocessing: str
    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    layer: str | None = None
    is_split_size: int | None = None
    is_splits: int | None = None
    pr_k: int | None = None
    pr_reference_size: int | None = None
    covariance: str = "unbiased"
    num_samples: int | None = 50000
    dataset_prep: str | None = None
    second: tuple[str, str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PROTOCOLS: Registry[Protocol] = Registry("protocol", flag="--protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    PROTOCOLS.register(protocol.name)(protocol)
    return protocol


register_protocol(Protocol(
    "adm", "ADM evaluation suite (Dhariwal & Nichol 2021; DiT, LlamaGen, MAR)",
    "openai/guided-diffusion evaluations/evaluator.py",
    extractor="inception-v3", preprocessing="tf1-bilinear", layer="pool3+spatial",
    metrics=("is", "fd", "sfid", "precision-adm", "recall-adm"),
    labels=("Inception Score", "FID", "sFID", "Precision", "Recall"),
    is_split_size=5000, pr_k=3, pr_reference_size=10000, dataset_prep="adm-center-crop",
))
register_protocol(Protocol(
    "edm2", "EDM2 (Karras et al. 2024): FID and FD_DINOv2", "NVlabs/edm2 calculate_metrics.py",
    extractor="inception-v3", preprocessing="tf1-bilinear", metrics=("fd",), labels=("FID", "FD_DINOv2"),
    dataset_prep="edm2-center-crop-dhariwal", second=("dinov2-vit-l14", "dinov2-torch-bicubic", "fd"),
))
register_protocol(Protocol(
    "clean-fid", "clean-fid (Parmar et al. 2022), mode clean", "GaParmar/clean-fid cleanfid/fid.py, resize.py",
    extractor="inception-v3", preprocessing="pil-bicubic", metrics=("fd",), labels=("clean-FID",), num_samples=None,
))
register_protocol(Protocol(
    "ttur", "TTUR: the original FID code (Heusel et al. 2017)", "bioinf-jku/TTUR fid.py",
    extractor="inception-v3", preprocessing="tf1-bilinear", metrics=("fd",), labels=("FID",), num_samples=None,
))
register_protocol(Protocol(
    "stylegan", "StyleGAN2-ADA / StyleGAN3 fid50k_full", "NVlabs/stylegan2-ada-pytorch metrics/metric_utils.py",
    extractor="inception-v3", preprocessing="tf1-bilinear", metrics=("fd",), labels=("fid50k_full",),
    covariance="biased",
))


def get_protocol(name: str) -> Protocol:
    """The protocol ``name``; ConfigError listing the known ones."""
    return PROTOCOLS.get(name)


# ----------------------------------------------------------------------------- applying a protocol to options


def _contradiction(protocol: Protocol, flag: str, given: object, fixed: object) -> ConfigError:
    return ConfigError(f"{flag} {given} contradicts --protocol {protocol.name}, which fixes {flag.lstrip('-')} "
                       f"{fixed} ({protocol.source}); drop {flag} or the protocol")


def apply_extract_protocol(protocol: Protocol, xo: ExtractOptions, *, second: bool = False) -> ExtractOptions:
    """``xo`` with the protocol's extractor, preprocessing and layer (``second``: its second feature space's);
    ConfigError naming the option and the protocol when ``xo`` sets one to something else."""
    from ..features import canonical_preprocessing

    if protocol.second is not None and xo.extractor == protocol.second[0]:
        second = True  # the second feature space's run (EDM2's DINOv2)
    extractor, preprocessing = (protocol.second[0], protocol.second[1]) if second and protocol.second else (
        protocol.extractor, protocol.preprocessing)
    layer = None if second else protocol.layer
    if xo.extractor is not None and xo.extractor != extractor and not (protocol.second and xo.extractor in (
            protocol.extractor, protocol.second[0])):
        raise _contradiction(protocol, "--extractor", xo.extractor, extractor)
    if xo.preprocessing is not None:
        given = canonical_preprocessing(extractor, xo.preprocessing) if xo.extractor in (None, extractor) else None
        if given != preprocessing:
            raise _contradiction(protocol, "--preprocessing", xo.preprocessing, preprocessing)
    if xo.layer is not None and xo.layer != (layer or "pool3") and not (
            xo.layer in ("pool3", "spatial") and layer == "pool3+spatial"):
        raise _contradiction(protocol, "--layer", xo.layer, layer or "pool3")
    return xo.replaced(extractor=extractor, preprocessing=preprocessing, protocol=protocol.name,
                       layer=xo.layer if xo.layer is not None and layer is not None else layer).for_extractor(extractor)


def apply_metric_protocol(protocol: Protocol, mo: MetricOptions) -> MetricOptions:
    """``mo`` with the protocol's IS splits, k of precision/recall and covariance; ConfigError for an option set
    (away from genbench's default) to another value."""
    default = MetricOptions()
    changes: dict[str, Any] = {}
    for name, flag, fixed in (("is_split_size", "--is-split-size", protocol.is_split_size),
                              ("is_splits", "--is-splits", protocol.is_splits),
                              ("prdc_k_precision_recall", "--pr-k", protocol.pr_k),
                              ("covariance", "--covariance", protocol.covariance)):
        given = getattr(mo, name)
        if fixed is None:
            continue
        if given != getattr(default, name) and given != fixed:
            raise _contradiction(protocol, flag, given, fixed)
        changes[name] = fixed
    if protocol.is_split_size is not None and mo.is_splits != default.is_splits:
        raise _contradiction(protocol, "--is-splits", mo.is_splits, f"splits of {protocol.is_split_size} images")
    return replace(mo, **changes)


def apply_metrics(protocol: Protocol, metrics: Sequence[str] | None) -> list[str]:
    """The protocol's metrics; ConfigError for a requested metric it does not define (naming the valid ones)."""
    allowed = list(protocol.metrics)
    if metrics is None:
        return allowed
    names = {"fid": "fd", "is": "is", "sfid": "sfid", "precision": "precision-adm", "recall": "recall-adm"}
    chosen: list[str] = []
    for name in metrics:
        if protocol.second is not None and name == "fd_dinov2":  # the second feature space's run scores it
            continue
        kind = name if name in allowed else names.get(name)
        if kind not in allowed:
            raise ConfigError(f"--metrics {name} contradicts --protocol {protocol.name}, whose metrics are "
                              f"{', '.join(allowed)} ({protocol.source})")
        chosen.append(kind)
    return chosen or allowed


def protocol_of(identity: Mapping[str, Any] | None) -> str | None:
    """The protocol an identity or provenance records (None: made without one)."""
    return None if identity is None else identity.get("protocol")
