"""Plan -> extract each input once -> accumulate statistics -> metrics -> a result with provenance.

Inputs are taken by role: ``generated`` and ``reference``. Each may be an image
source (folder, archive, array file, data set, in-memory array), a feature file
written by ``genbench extract``; the reference may also be a statistics file or a
reference id from the manifest (``fashion-mnist:train``). The extractor and its
preprocessing follow from the reference unless given; inputs built under other
settings are refused with the field that differs.
"""
from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .config import DEFAULT_EXTRACTOR, ExtractOptions, MetricOptions
from .errors import ConfigError, InputError, ReferenceStatsError
from .extraction.distributed import for_this_rank, is_main_process
from .extraction.engine import precision_deviation
from .features import build_extractor
from .features.base import INCEPTION_METRIC_NAMES, FeatureExtractor, MetricNames
from .metrics.registry import GEN_FEATURES, GEN_LOGITS, METRICS, REF_FEATURES, preflight_metrics, resolve_metrics
from .results.history import run_stamp
from .results.records import ScoreResult
from .sources.arrays import npz_keys
from .sources.base import ImageSource
from .stats.feature_stats import FeatureStats
from .stats.io import FeatureFile, SavedStats, load_features, load_stats
from .stats.reference import sha256_file

IDENTITY_FIELDS = ("extractor", "layer", "preprocessing", "weights_sha256", "feature_dim")


@dataclass
class Evaluated:
    """One input after extraction: its statistics and, where kept, per-sample features and logits."""

    role: str
    description: str
    identity: dict | None
    stats: FeatureStats
    features: np.ndarray | None = None  # float32 [N, D]
    logits: np.ndarray | None = None  # float32 [N, K]
    labels: np.ndarray | None = None  # int64 [N]
    files: list[str] | None = None
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.stats.n


# ----------------------------------------------------------------------------- inputs


@dataclass
class Pending:
    """An input that still has to go through the extractor."""

    role: str
    source: ImageSource


def _is_stats_file(path: Path) -> bool:
    if path.suffix != ".npz" or not path.is_file():
        return False
    keys = npz_keys(path)  # the zip directory only; InputError naming the file when it is no .npz
    return "mu" in keys and "sigma" in keys


def open_input(obj: Any, role: str, extractor_name: str | None, data_dir: str | None) -> Evaluated | Pending:
    """Turn what the user passed for ``role`` into a loaded Evaluated or a Pending source."""
    from .sources.resolve import as_source, is_feature_file

    if isinstance(obj, (str, Path)):
        spec = str(obj)
        path = Path(spec)
        if role == "reference" and not path.exists():
            from .stats.reference import lookup_reference

            entry = lookup_reference(spec, extractor_name)
            if entry is not None:
                saved = entry.load()
                return _from_saved_stats(saved, role, f"reference id {entry.id}", {"reference_id": entry.id, "sha256": entry.sha256})
        if path.is_file() and is_feature_file(path):
            return _from_feature_file(load_features(path), role)
        if _is_stats_file(path):
            if role != "reference":
                raise InputError(
                    f"{path}: a statistics file can only be the reference (--ref); the generated side needs "
                    "images or a feature file"
                )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                saved = load_stats(path)
            for w in caught:
                warnings.warn(w.message, w.category, stacklevel=3)
            return _from_saved_stats(saved, role, str(path), {"sha256": sha256_file(path)})
        return Pending(role, as_source(spec, data_dir=data_dir))
    return Pending(role, as_source(obj))


def _from_saved_stats(saved: SavedStats, role: str, description: str, info: dict) -> Evaluated:
    return Evaluated(role, description, saved.meta, saved.stats, info={"kind": "statistics", "location": description, **info})


def _from_feature_file(ff: FeatureFile, role: str) -> Evaluated:
    return Evaluated(
        role,
        str(ff.path),
        ff.meta,
        FeatureStats.from_features(ff.features),
        features=ff.features,
        logits=ff.logits,
        labels=ff.labels,
        files=ff.files,
        info={"kind": "features", "location": str(ff.path)},
    )


# ----------------------------------------------------------------------------- extraction


def extract_source(
    source: ImageSource,
    extractor: FeatureExtractor,
    options: ExtractOptions,
    role: str = "generated",
    keep_features: bool = True,
    keep_logits: bool = True,
) -> Evaluated:
    """Stream ``source`` through ``extractor`` once; statistics always, features/logits when asked.

    Goes through the feature cache (:mod:`genbench.extraction.cache`; ``options.cache``) and, under torchrun, splits the
    work across ranks (:mod:`genbench.extraction.distributed`), where ranks other than 0 get no features or logits.
    ``info["cache"]`` records "hit", "miss", "partial" (resumed) or "off". Per-image ``files`` (names)
    are kept with the features only, so memory stays flat when only statistics are asked for.
    """
    from .extraction.distributed import extract_features

    warn_repeats(source)
    out = extract_features(source, extractor, options, role, keep_features, keep_logits)
    return Evaluated(
        role,
        f"{source.location or source.kind} ({role})",
        extractor.identity().to_dict(),
        out.stats,
        features=out.features,
        logits=out.logits,
        labels=out.labels if source.has_labels else None,
        files=[source.key(i) for i in range(len(source))] if keep_features else None,  # names go with features
        info={**source.info().to_dict(), **out.info},
    )


def repeats_message(source: ImageSource) -> str | None:
    """What to say of a source that repeats images (see ``ImageSource.repeats``), or None."""
    repeated = source.repeats()
    if not repeated:
        return None
    return (f"{source.location or source.kind}: {repeated} of {len(source)} images repeat earlier ones; repeats "
            "shrink the measured diversity (recall, coverage) and bias FD and KID: score distinct images only")


def warn_repeats(source: ImageSource) -> None:
    message = repeats_message(source)
    if message:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------- compatibility


def check_compatible(identity: dict | None, expected: dict, what: str) -> None:
    """Refuse an input built under other settings, naming the field that differs."""
    if identity is None:
        return
    for key in IDENTITY_FIELDS:
        if key in identity and key in expected and identity[key] != expected[key]:
            raise ReferenceStatsError(
                f"{what} was built with {key}={identity[key]!r}, but this run uses {key}={expected[key]!r}; "
                "statistics made under different settings cannot be compared"
            )


def choose_extractor(options: ExtractOptions, loaded: list[Evaluated]) -> tuple[str, str | None]:
    """Extractor name and preprocessing: explicit options win, then what loaded inputs were built with."""
    name, preprocessing = options.extractor, options.preprocessing
    for ev in loaded:
        if ev.identity:
            name = name or ev.identity.get("extractor")
            if name == ev.identity.get("extractor"):
                preprocessing = preprocessing or ev.identity.get("preprocessing")
    return name or DEFAULT_EXTRACTOR, preprocessing


def check_loaded(loaded: list[Evaluated], expected: dict, name: str) -> None:
    """ReferenceStatsError unless every loaded input was built like ``expected`` (identity fields, feature width)."""
    for ev in loaded:
        check_compatible(ev.identity, expected, f"{ev.role} input {ev.description}")
        if ev.stats.dim != expected.get("feature_dim", ev.stats.dim):
            raise ReferenceStatsError(
                f"{ev.role} input {ev.description} has {ev.stats.dim}-dimensional features, "
                f"but extractor {name} gives {expected['feature_dim']}"
            )


def _build_for(name: str, preprocessing: str | None, xo: ExtractOptions, loaded: list[Evaluated]) -> FeatureExtractor:
    """The extractor; a preprocessing that came from an input's metadata is named as coming from that input."""
    try:
        return build_extractor(name, xo.weights, preprocessing, xo.device, xo.allow_unverified_weights,
                               xo.weights_sha256)
    except ConfigError as exc:
        origin = next((ev.description for ev in loaded if ev.identity and xo.preprocessing is None
                       and ev.identity.get("preprocessing") == preprocessing), None)
        if origin is None or preprocessing is None or "preprocessing" not in str(exc):
            raise
        detail = str(exc).replace(" (--preprocessing)", "")
        raise ConfigError(f"the preprocessing {preprocessing!r} recorded in {origin} does not fit extractor {name}: "
                          f"{detail}") from None


# ----------------------------------------------------------------------------- scoring


def score(
    generated: Any,
    reference: Any,
    metrics: list[str] | None = None,
    extract_options: ExtractOptions | None = None,
    metric_options: MetricOptions | None = None,
) -> ScoreResult:
    """Score ``generated`` against ``reference``; see the module docstring for the accepted inputs."""
    started = time.perf_counter()
    xo = for_this_rank(extract_options or ExtractOptions())  # under torchrun: cuda -> cuda:LOCAL_RANK
    mo = metric_options or MetricOptions()
    # Load the reference first: a bad reference should fail before any extraction.
    ref_in = open_input(reference, "reference", xo.extractor, xo.data_dir)
    gen_in = open_input(generated, "generated", xo.extractor, xo.data_dir)
    loaded = [x for x in (ref_in, gen_in) if isinstance(x, Evaluated)]
    name, preprocessing = choose_extractor(xo, loaded)
    pending = [x for x in (ref_in, gen_in) if isinstance(x, Pending)]

    extractor: FeatureExtractor | None = None
    if pending or not all(ev.identity for ev in loaded):
        extractor = _build_for(name, preprocessing, xo, loaded)
        expected = extractor.identity().to_dict()
    else:
        expected = {k: loaded[0].identity.get(k) for k in IDENTITY_FIELDS}
    check_loaded(loaded, expected, name)
    names = extractor.metric_names if extractor is not None else _names_for(name)
    ref_has_features = isinstance(ref_in, Pending) or ref_in.features is not None
    if metrics is None:
        metrics = ["fd", "is"] + (["kid"] if ref_has_features else [])
        if extractor is not None and extractor.logits_dim is None:
            metrics.remove("is")
    plan = resolve_metrics(metrics, names, name)
    needs = set().union(*(METRICS.get(kind).needs for _, kind in plan)) if plan else set()
    _check_available(needs, ref_in, gen_in, plan)
    for obj in (gen_in, ref_in):  # sizes against options, before any extraction
        if _count(obj) < 2:
            raise InputError(f"the {obj.role} input {_description(obj)} has {_count(obj)} sample(s); "
                             "statistics need at least 2")
    preflight_metrics(plan, _count(gen_in), _count(ref_in), mo)

    evaluated: dict[str, Evaluated] = {ev.role: ev for ev in loaded}
    for p in pending:
        keep_features = (GEN_FEATURES if p.role == "generated" else REF_FEATURES) in needs or (
            p.role == "generated" and mo.bootstrap > 0
        )
        keep_logits = p.role == "generated" and GEN_LOGITS in needs
        evaluated[p.role] = extract_source(p.source, extractor, xo, p.role, keep_features, keep_logits)
    gen, ref = evaluated["generated"], evaluated["reference"]
    if not is_main_process():  # under torchrun, rank 0 alone computes metrics and reports
        return ScoreResult({}, {"rank": int(os.environ.get("RANK", "0")), "note": "metrics are computed on rank 0"})
    precision_check = {}
    if xo.precision != "float32" and any(p.role == "generated" for p in pending):
        gen_source = next(p.source for p in pending if p.role == "generated")
        precision_check = {"precision_check": precision_deviation(gen_source, extractor, xo, ref.stats)}

    from .util.progress import enabled as progress_enabled

    with progress_enabled(xo.progress):  # k-NN, KID and bootstrap phases on stderr unless --quiet
        values = {out_name: METRICS.get(kind).compute(gen, ref, mo) for out_name, kind in plan}
    provenance = {
        "genbench_version": __version__,
        **{k: expected.get(k) for k in IDENTITY_FIELDS},
        # False only when this run's extractor was built from a file whose sha256 is not the published one.
        "weights_verified": bool(getattr(extractor, "weights_verified", True)),
        "inputs": {"generated": {**gen.info, "n": gen.n}, "reference": {**ref.info, "n": ref.n}},
        "metric_options": mo.to_dict(),
        "seed": mo.seed,
        "device": xo.device,
        "batch_size": xo.batch_size,
        "precision": xo.precision,
        **precision_check,  # what tf32/bf16 changed on a subset, when not float32 (genbench.extraction.engine)
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]) if sys.argv else "",
        "wall_time_s": round(time.perf_counter() - started, 3),
        **run_stamp(),  # created_at (UTC) and git_commit of the current directory (None outside git)
    }
    return ScoreResult(values, provenance)


def _count(obj: Evaluated | Pending) -> int:
    """Samples an input has (or will have once extracted)."""
    if isinstance(obj, Pending):
        return len(obj.source)
    return len(obj.features) if obj.features is not None else obj.n


def _description(obj: Evaluated | Pending) -> str:
    if isinstance(obj, Pending):
        return obj.source.location or obj.source.kind
    return obj.description


def _names_for(extractor_name: str) -> MetricNames:
    """Metric names of an extractor without loading its weights where they are known statically."""
    if extractor_name == "inception-v3":
        return INCEPTION_METRIC_NAMES
    from .features import static_metric_names

    return static_metric_names(extractor_name) or build_extractor(extractor_name).metric_names


def _check_available(needs: set[str], ref_in, gen_in, plan) -> None:
    for role, obj, need in (
        ("reference", ref_in, REF_FEATURES),
        ("generated", gen_in, GEN_FEATURES),
        ("generated", gen_in, GEN_LOGITS),
    ):
        if need not in needs or isinstance(obj, Pending):
            continue
        have = obj.features if need != GEN_LOGITS else obj.logits
        if have is None:
            wanting = [n for n, kind in plan if need in METRICS.get(kind).needs]
            raise ConfigError(
                f"metrics {', '.join(wanting)} (--metrics) need {need}, but the {role} input {obj.description} "
                "has none (a statistics file keeps only mean and covariance); pass images or a feature file"
            )
