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

from .config import DEFAULT_EXTRACTOR, ExtractOptions, MetricOptions
from .evaluate import extract_source
from .evaluate import score as _score
from .extraction.distributed import for_this_rank
from .features import build_extractor
from .results.records import ScoreResult
from .stats.feature_stats import FeatureStats
from .stats.io import FeatureFile


def score(
    generated: Any,
    reference: Any,
    metrics: list[str] | None = None,
    *,
    extractor: str | None = None,
    weights: str | None = None,
    preprocessing: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    workers: int = 0,
    seed: int = 0,
    is_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    bootstrap: int = 0,
    data_dir: str | None = None,
    progress: bool = False,
    cache: bool = True,
    precision: str = "float32",
    allow_unverified_weights: bool = False,
) -> ScoreResult:
    """Score ``generated`` against ``reference``. Returns a ScoreResult whose ``to_dict()`` equals
    the CLI's ``--json`` document. Raises a GenbenchError subclass on bad input.

    ``cache=False`` skips the feature cache (:mod:`genbench.extraction.cache`) for this call; ``precision`` is
    float32 (default), tf32 (CUDA) or bf16, and a non-default one also records its deviation from
    float32 on a subset in ``provenance["precision_check"]``. Under torchrun, ranks other than 0
    return a ScoreResult without metrics."""
    xo = ExtractOptions(extractor, weights, preprocessing, batch_size, device, workers, data_dir, progress, cache, precision,
                        allow_unverified_weights)
    mo = MetricOptions(seed=seed, is_splits=is_splits, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, bootstrap=bootstrap)
    return _score(generated, reference, metrics, xo, mo)


def extract(
    source: Any,
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    weights: str | None = None,
    preprocessing: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    workers: int = 0,
    data_dir: str | None = None,
    progress: bool = False,
    cache: bool = True,
    precision: str = "float32",
    allow_unverified_weights: bool = False,
    weights_sha256: str | None = None,
) -> FeatureFile:
    """Per-image features (float32 [N, D]) and logits (float32 [N, K], when the extractor has them)."""
    from .sources.resolve import as_source

    xo = ExtractOptions(extractor, weights, preprocessing, batch_size, device, workers, data_dir, progress, cache, precision,
                        allow_unverified_weights)
    xo = for_this_rank(xo)  # under torchrun: cuda -> cuda:LOCAL_RANK
    net = build_extractor(extractor, weights, preprocessing, xo.device, allow_unverified_weights, weights_sha256)
    src = as_source(source, data_dir=data_dir) if isinstance(source, str) else as_source(source)
    ev = extract_source(src, net, xo, role="input", keep_features=True, keep_logits=True)
    meta = {**net.identity().to_dict(), "precision": xo.precision, "source": ev.info, "n": ev.n}
    return FeatureFile(ev.features, ev.logits, ev.files or [], ev.labels, meta)


def compute_stats(
    source: Any,
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    weights: str | None = None,
    preprocessing: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    workers: int = 0,
    data_dir: str | None = None,
    progress: bool = False,
    cache: bool = True,
    precision: str = "float32",
    allow_unverified_weights: bool = False,
    weights_sha256: str | None = None,
) -> tuple[FeatureStats, dict]:
    """Streaming statistics of a source (features are not kept) and their metadata."""
    from .sources.resolve import as_source

    xo = ExtractOptions(extractor, weights, preprocessing, batch_size, device, workers, data_dir, progress, cache, precision,
                        allow_unverified_weights)
    xo = for_this_rank(xo)  # under torchrun: cuda -> cuda:LOCAL_RANK
    net = build_extractor(extractor, weights, preprocessing, xo.device, allow_unverified_weights, weights_sha256)
    src = as_source(source, data_dir=data_dir) if isinstance(source, str) else as_source(source)
    ev = extract_source(src, net, xo, role="input", keep_features=False, keep_logits=False)
    return ev.stats, {**net.identity().to_dict(), "precision": xo.precision, "source": ev.info}


__all__ = ["score", "extract", "compute_stats", "ScoreResult", "FeatureStats"]
