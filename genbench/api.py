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

from .config import ExtractOptions, MetricOptions, option_fields, param_name
from .errors import ConfigError
from .evaluate import extract_input
from .evaluate import score as _score
from .registry import did_you_mean
from .results.records import ScoreResult
from .stats.feature_stats import FeatureStats
from .stats.io import FeatureFile

#: The one default the API sets apart from genbench.config: quiet (the CLI shows progress; -q turns it off).
API_DEFAULTS: dict[str, Any] = {"progress": False}


def _aliases(cls: type) -> dict[str, str]:
    """Short keyword -> field name: the CLI's parameter name where it is not the field's (``pr_k``, ``dc_k``)."""
    return {param_name(f): f.name for f in option_fields(cls) if param_name(f) != f.name and not f.metadata.get("invert")}


def _split_options(options: dict[str, Any], *classes: type, call: str) -> list[dict[str, Any]]:
    """``options`` (keywords of ``call``) -> one dict of field values per class in ``classes``; an unknown keyword, or
    a field given twice (by its name and its alias), is a ConfigError naming it."""
    owner = {f.name: cls for cls in classes for f in option_fields(cls)}
    aliases = {alias: name for cls in classes for alias, name in _aliases(cls).items()}
    chosen: dict[type, dict[str, Any]] = {cls: {} for cls in classes}
    given_as: dict[str, str] = {}
    for key, value in options.items():
        name = aliases.get(key, key)
        if name not in owner:
            valid = sorted([*owner, *aliases])
            raise ConfigError(f"{call}() got an unknown keyword {key!r}{did_you_mean(key, valid)}; "
                              f"valid keywords: {', '.join(valid)}")
        if name in given_as:
            raise ConfigError(f"{call}(): {given_as[name]!r} and {key!r} both set {name}; give one")
        given_as[name] = key
        chosen[owner[name]][name] = value
    return [chosen[cls] for cls in classes]


def _extract_options(options: dict[str, Any], call: str = "extract") -> ExtractOptions:
    (values,) = _split_options(options, ExtractOptions, call=call)
    return ExtractOptions(**{**API_DEFAULTS, **values})


def score(generated: Any, reference: Any, metrics: list[str] | None = None, **options: Any) -> ScoreResult:
    """Score ``generated`` against ``reference``. Returns a ScoreResult whose ``to_dict()`` equals
    the CLI's ``--json`` document. Raises a GenbenchError subclass on bad input (ConfigError for an
    unknown keyword).

    ``options`` are the fields of :class:`genbench.config.ExtractOptions` and :class:`genbench.config.MetricOptions`
    (listed below, with their defaults), as ``genbench score``'s options: ``cache=False`` skips the feature cache
    (:mod:`genbench.extraction.cache`) for this call; a ``precision`` other than float32 also records its deviation
    from float32 on a subset in ``provenance["precision_check"]``. Under torchrun, ranks other than 0
    return a ScoreResult without metrics."""
    x_values, m_values = _split_options(options, ExtractOptions, MetricOptions, call="score")
    xo = ExtractOptions(**{**API_DEFAULTS, **x_values})
    mo = MetricOptions(**m_values)
    return _score(generated, reference, metrics, xo, mo)


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
    xo = _extract_options(options, "compute_stats")
    ev, meta = extract_input(source, xo, keep_features=False, keep_logits=False)  # the one path (genbench.evaluate)
    return ev.stats, meta


def _keywords_doc(*classes: type) -> str:
    """The keyword list appended to the docstrings, from the dataclass fields (so it cannot drift from them); indented
    like the docstrings, so that ``help()`` shows one block."""
    import textwrap

    lines = ["", "", "Keyword options (defaults from genbench.config; the API alone defaults to progress=False):"]
    for cls in classes:
        lines += ["", f"{cls.__name__}:"]
        short = {name: alias for alias, name in _aliases(cls).items()}
        for f in option_fields(cls):
            default = API_DEFAULTS.get(f.name, f.default)
            also = f" (also ``{short[f.name]}``)" if f.name in short else ""
            flag = f.metadata["flag"] + (" turns it off" if f.metadata.get("invert") else "")
            text = (f.metadata.get("doc") or f.metadata["help"]) + f" CLI: {flag}."
            lines.append(f"    {f.name}: {f.type} = {default!r}{also}")
            lines += textwrap.wrap(text, 100, initial_indent=" " * 8, subsequent_indent=" " * 8,
                               break_on_hyphens=False)
    return "\n".join("    " + line if line else "" for line in lines) + "\n"


score.__doc__ = (score.__doc__ or "") + _keywords_doc(ExtractOptions, MetricOptions)
extract.__doc__ = (extract.__doc__ or "") + _keywords_doc(ExtractOptions)
compute_stats.__doc__ = (compute_stats.__doc__ or "") + _keywords_doc(ExtractOptions)


__all__ = ["score", "extract", "compute_stats", "ScoreResult", "FeatureStats"]
