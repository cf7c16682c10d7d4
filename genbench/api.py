"""The Python API, mirroring the CLI: for notebooks and training loops.

    >>> import genbench
    >>> result = genbench.score("samples/", "fashion-mnist:train")
    >>> result.value("fd_fmnist"), result.metrics["is_fmnist"]["mean"]

Inputs may be paths (folders, archives, .npy/.npz arrays, feature files,
statistics files for the reference), reference ids, ImageSource objects, or
uint8 arrays/tensors [N, 3, H, W] / [N, H, W, C] (float arrays in [0, 1] are
converted by rounding x * 255).
"""
from __future__ import annotations

from typing import Any

from .config import API_DEFAULTS, ExtractOptions, MetricOptions, keywords_doc, split_options
from .evaluate import extract_input
from .evaluate import score as _score
from .results.records import ScoreResult
from .stats.feature_stats import FeatureStats
from .stats.io import FeatureFile


def _extract_options(options: dict[str, Any], call: str = "extract") -> ExtractOptions:
    (values,) = split_options(options, ExtractOptions, call=call)
    return ExtractOptions(**{**API_DEFAULTS, **values})


def score(generated: Any, reference: Any, metrics: list[str] | None = None, *, train: Any = None, test: Any = None,
          per_sample: bool = False, **options: Any) -> ScoreResult:
    """Score ``generated`` against ``reference``. Returns a ScoreResult whose ``to_dict()`` equals
    the CLI's ``--json`` document. Raises a GenbenchError subclass on bad input (ConfigError for an
    unknown keyword).

    ``options`` are the fields of :class:`genbench.config.ExtractOptions` and :class:`genbench.config.MetricOptions`
    (listed below, with their defaults), as ``genbench score``'s options: ``cache=False`` skips the feature cache
    (:mod:`genbench.extraction.cache`) for this call; a ``precision`` other than float32 also records its deviation
    from float32 on a subset in ``provenance["precision_check"]``. Under torchrun, ranks other than 0
    return a ScoreResult without metrics. ``train``/``test``: the training and held-out inputs of fld and fld_gap
    (mifid and authenticity use ``train`` instead of the reference); ``per_sample=True``: the per-sample arrays as
    ``result.samples`` (genbench.metrics.per_sample)."""
    x_values, m_values = split_options(options, ExtractOptions, MetricOptions, call="score")
    xo = ExtractOptions(**{**API_DEFAULTS, **x_values})
    mo = MetricOptions(**m_values)
    return run_score(generated, reference, metrics, xo, mo, train=train, test=test, per_sample=per_sample)


def run_score(generated: Any, reference: Any, metrics: list[str] | None, xo: ExtractOptions, mo: MetricOptions, *,
              train: Any = None, test: Any = None, per_sample: bool = False) -> ScoreResult:
    """:func:`genbench.evaluate.score`, or :func:`genbench.protocols.score_protocol` when ``xo.protocol`` is set
    (the CLI's ``genbench score`` and ``gate`` call this too)."""
    if xo.protocol is not None:
        from .protocols import score_protocol

        return score_protocol(generated, reference, xo.protocol, xo, mo, metrics)
    return _score(generated, reference, metrics, xo, mo, train=train, test=test, per_sample=per_sample)


def extract(source: Any, **options: Any) -> FeatureFile:
    """Per-image features (float32 [N, D]) and logits (float32 [N, K], when the extractor has them).

    ``options`` are the fields of :class:`genbench.config.ExtractOptions` (listed below), as ``genbench extract``'s
    options; ConfigError for an unknown keyword."""
    xo = _extract_options(options, "extract")
    ev, meta = extract_input(source, xo, keep_features=True, keep_logits=True)  # the one path (genbench.evaluate)
    assert ev.features is not None  # kept, as asked
    return FeatureFile(ev.features, ev.logits, ev.files or [], ev.labels, meta)


def compute_stats(source: Any, **options: Any) -> tuple[FeatureStats, dict]:
    """Streaming statistics of a source (features are not kept) and their metadata.

    ``options`` are the fields of :class:`genbench.config.ExtractOptions` (listed below), as ``genbench stats``'s
    options; ConfigError for an unknown keyword."""
    stats, _, meta = compute_layer_stats(source, **options)
    return stats, meta


def compute_layer_stats(source: Any, **options: Any) -> tuple[FeatureStats, dict[str, FeatureStats], dict]:
    """:func:`compute_stats` plus the statistics of the further layers streamed in the same pass, by name
    (``layer="pool3+spatial"`` or ``protocol="adm"``: ``{"spatial": ...}``; else ``{}``)."""
    xo = _extract_options(options, "compute_stats")
    ev, meta = extract_input(source, xo, keep_features=False, keep_logits=False)  # the one path (genbench.evaluate)
    return ev.stats, dict(ev.layers), meta


score.__doc__ = (score.__doc__ or "") + keywords_doc(ExtractOptions, MetricOptions)
extract.__doc__ = (extract.__doc__ or "") + keywords_doc(ExtractOptions)
compute_stats.__doc__ = (compute_stats.__doc__ or "") + keywords_doc(ExtractOptions)


__all__ = ["score", "extract", "compute_stats", "ScoreResult", "FeatureStats"]
