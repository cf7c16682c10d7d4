"""Paper protocols by name (``--protocol NAME``): every choice a published table depends on, fixed in one place.

A protocol fixes the extractor and its preprocessing, the layer, the metrics, the Inception Score's splits, the k
of precision/recall and the reference set they use, the covariance's normalisation, the sample count the paper
reports on and the dataset preparation of its reference images (:class:`Protocol`, registry :data:`PROTOCOLS`).
An option that contradicts the protocol is refused, naming both (:func:`apply_protocol`); the name is recorded in
the provenance and in the identity of features and statistics (:mod:`genbench.stats.compatibility`), so numbers
and references made under different protocols are never compared (``genbench check`` refuses them naming the
field).

=========== ==================================================================================================
adm         openai/guided-diffusion ``evaluations/evaluator.py``: FID, sFID (layer ``spatial``), IS over splits
            of 5,000, precision and recall with k = 3 against the reference batch's ``arr_0`` images (10,000),
            covariance / (N - 1); Inception with TF's bilinear resize (``tf1-bilinear``). Samples: 50,000.
edm2        NVlabs/edm2 ``calculate_metrics.py``: FID (NVIDIA's Inception pickle, internal bilinear resize) and
            FD_DINOv2 (ViT-L/14, ``F.interpolate`` bicubic antialias to 224, the ``'torch'`` default), / (N - 1);
            50,000 samples. Dataset: ``edm2-center-crop-dhariwal``.
clean-fid   GaParmar/clean-fid ``mode="clean"``: PIL bicubic on float (``pil-bicubic``), FID, / (N - 1).
ttur        bioinf-jku/TTUR ``fid.py``: the TF graph's own bilinear resize (``tf1-bilinear``), FID, / (N - 1).
stylegan    NVlabs/stylegan2-ada-pytorch / stylegan3 ``fid50k_full``: TorchScript Inception with its internal
            bilinear resize (``tf1-bilinear``), covariance **/ N** (``FeatureStats.get_mean_cov``), 50,000 samples.
=========== ==================================================================================================

``genbench score SAMPLES --protocol adm --ref REF`` reads an ADM sample batch (``.npz`` with ``arr_0``, uint8
NHWC) and an ADM reference batch (``arr_0`` plus ``mu``/``sigma``/``mu_s``/``sigma_s``) and prints ADM's table.

The table of protocols and the refusal of contradicting options live in :mod:`genbench.stats.paper_protocols`
(below the engine, which applies them to every run's options); this module drives a run under a protocol
(:func:`score_protocol`) and is re-exported here with them.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from .config import ExtractOptions, MetricOptions
from .errors import ConfigError
from .stats.paper_protocols import (
    PROTOCOLS,
    Protocol,
    apply_extract_protocol,
    apply_metric_protocol,
    apply_metrics,
    get_protocol,
    protocol_of,
    register_protocol,
)

__all__ = ["PROTOCOLS", "Protocol", "apply_extract_protocol", "apply_metric_protocol", "apply_metrics",
           "catalogue_protocol", "get_protocol", "paper_table", "protocol_of", "register_protocol", "score_protocol"]


# ----------------------------------------------------------------------------- scoring under a protocol


def _output_labels(protocol: Protocol, plan: Sequence[tuple[str, str]]) -> dict[str, str]:
    by_kind = dict(zip(protocol.metrics, protocol.labels))
    return {out: by_kind.get(kind, out) for out, kind in plan}


def score_protocol(generated: Any, reference: Any, protocol: Protocol | str,
                   extract_options: ExtractOptions | None = None, metric_options: MetricOptions | None = None,
                   metrics: Sequence[str] | None = None):
    """Score ``generated`` against ``reference`` under ``protocol``; returns a :class:`~genbench.results.records.
    ScoreResult` whose provenance records the protocol (and whose table is the paper's, see :func:`paper_table`).

    ``generated``: an ADM sample batch ``.npz`` (``arr_0``, uint8 NHWC, checked: :func:`genbench.sources.adm.
    open_sample_batch`) or any image input. ``reference``: an ADM reference batch (its ``mu``/``sigma`` for FID,
    ``mu_s``/``sigma_s`` for sFID, ``arr_0`` for precision/recall), an EDM2 ``.pkl`` (edm2), or any reference
    genbench reads. Raises ConfigError/InputError (exit 2) for contradicting options, a bad batch, or fewer
    samples than the protocol's IS split size.
    """
    from .evaluate import Pending, prepare_run
    from .results.records import ScoreResult

    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    xo = apply_extract_protocol(p, extract_options or ExtractOptions())
    mo = apply_metric_protocol(p, metric_options or MetricOptions())
    chosen = apply_metrics(p, metrics)
    gen_in = _open_generated(generated, p)
    ref_in, ref_layers, ref_info = _open_reference(reference, p, xo)
    run = prepare_run({"reference": ref_in, "generated": gen_in}, xo, mo, chosen,
                      specs=[s for s in (reference, generated) if isinstance(s, str)])
    loaded_ref = run.inputs["reference"]
    if "sfid" in chosen and ref_layers is None and not isinstance(loaded_ref, Pending) and (
            "spatial" not in loaded_ref.layers):  # refused before any image is extracted
        raise ConfigError(f"--ref {reference}: sFID (--protocol {p.name}) needs the reference's spatial statistics, "
                          "which this reference has not; give an ADM reference batch (mu_s/sigma_s), a catalogue id "
                          "such as adm/VIRTUAL_imagenet256_labeled, or images")
    gen = run.evaluated("generated")
    _check_sample_count(p, gen.n)
    ref = run.evaluated("reference")
    if ref_layers is not None:  # the batch's own statistics (ADM: the whole data set's), its images for P/R only
        ref.stats, ref.layers = ref_layers["pool3"], {k: v for k, v in ref_layers.items() if k != "pool3"}
        ref.info = {**ref.info, **ref_info}
    values = run.compute({"generated": gen, "reference": ref})
    labels = _output_labels(p, run.plan)
    extra: dict[str, Any] = {"protocol_definition": p.to_dict()}
    if p.second is not None and (metrics is None or "fd_dinov2" in metrics):
        second_values, second_identity = _score_second(generated, reference, p, extract_options, mo)
        values.update(second_values)
        labels.update({name: p.labels[-1] for name in second_values})
        extra["second_feature_space"] = second_identity
    result = ScoreResult(values, run.provenance({"generated": gen, "reference": ref}, extra=extra))
    result.provenance["protocol"] = p.name
    result.provenance["protocol_labels"] = labels
    return result


def paper_table(result: Any) -> str:
    """ADM's (or the protocol's) table from a protocol result: ``Label: value`` lines."""
    from .metrics.values import headline

    labels = result.provenance.get("protocol_labels", {})
    lines = [f"{label}: {headline(result.metrics[name])!r}"
             for name, label in labels.items() if name in result.metrics]
    return "\n".join(lines)


def _check_sample_count(p: Protocol, n: int) -> None:
    if p.num_samples is not None and n != p.num_samples:
        warnings.warn(f"--protocol {p.name} reports numbers on {p.num_samples} generated samples; this input has {n}, "
                      "so its FID/IS are not comparable with the paper's tables (both depend on the sample count)",
                      UserWarning, stacklevel=3)


def _open_generated(generated: Any, p: Protocol) -> Any:
    """An ADM sample batch as a checked image source; anything else as genbench reads it."""
    from pathlib import Path

    from .sources.adm import is_npz_batch, open_sample_batch

    if isinstance(generated, (str, Path)) and is_npz_batch(generated):
        from .evaluate import Pending

        return Pending("generated", open_sample_batch(generated))
    return generated


#: the protocol each catalogue source's files were made under (genbench.stats.catalogue); clean-fid: mode clean only
_CATALOGUE_PROTOCOLS = {"adm": "adm", "mar": "adm", "fractalgen": "adm", "edm2": "edm2", "ttur": "ttur"}


def catalogue_protocol(source: str, preprocessing: str) -> str | None:
    """The protocol a published reference of catalogue ``source`` was made under (None: none of genbench's)."""
    if source == "clean-fid":
        return "clean-fid" if preprocessing == "pil-bicubic" else None
    return _CATALOGUE_PROTOCOLS.get(source)


def _catalogue_hit(reference: Any, p: Protocol) -> Any:
    """The catalogue entry ``reference`` names (None: no catalogue id); ReferenceStatsError when it was made under
    another protocol than ``p``."""
    from pathlib import Path

    from .errors import ReferenceStatsError
    from .stats.catalogue import resolve

    if not isinstance(reference, str) or Path(reference).exists():
        return None
    hit = resolve(reference, p.extractor)
    if hit is None:
        return None
    entry, comp = hit
    made = catalogue_protocol(entry.source, comp.preprocessing)
    if made is not None and made != p.name:
        raise ReferenceStatsError(f"reference {reference} (--ref) was made under protocol={made!r} ({entry.made_by}), "
                                  f"but this run uses protocol={p.name!r} (--protocol); a protocol's numbers are "
                                  "compared only with references made under it")
    return entry


def _open_reference(reference: Any, p: Protocol, xo: ExtractOptions) -> tuple[Any, dict | None, dict]:
    """(the reference input for the run, statistics that replace the extracted ones by layer or None, info)."""
    from pathlib import Path

    from .evaluate import Pending
    from .sources.adm import is_reference_batch
    from .stats.adm_batch import open_reference_batch

    entry = _catalogue_hit(reference, p)
    if entry is not None and entry.format == "adm-npz":  # the batch itself: its images serve precision/recall
        from .stats.fetch import downloads_path, fetch_reference

        fetch_reference(entry, progress=xo.progress)
        reference = downloads_path(entry)
    if isinstance(reference, (str, Path)) and is_reference_batch(reference):
        batch = open_reference_batch(reference)
        if p.pr_reference_size is not None and len(batch.images) > p.pr_reference_size:
            raise ConfigError(f"{reference} (--ref): {len(batch.images)} reference images, but --protocol {p.name} "
                              f"uses at most {p.pr_reference_size} for precision/recall")
        layers = {"pool3": batch.pool3}
        if batch.spatial is not None:
            layers["spatial"] = batch.spatial
        return Pending("reference", batch.images, "--ref"), layers, {"adm_reference_batch": str(reference),
                                                                    "statistics": "the batch's mu/sigma, mu_s/sigma_s"}
    if isinstance(reference, (str, Path)) and str(reference).endswith(".pkl"):
        return _edm2_reference(reference, "fid"), None, {}
    return reference, None, {}


def _edm2_reference(path: Any, key: str):
    from .metrics.inputs import Evaluated
    from .stats.feature_stats import FeatureStats
    from .stats.foreign import read_edm2_pickle

    mu, sigma, n = read_edm2_pickle(path, key)
    stats = FeatureStats.from_mean_cov(mu, sigma, n or 2)
    return Evaluated("reference", f"{path}[{key}]", None, stats, info={"edm2_reference": str(path), "key": key},
                     flag="--ref")


def _score_second(generated: Any, reference: Any, p: Protocol, xo: ExtractOptions | None,
                  mo: MetricOptions) -> tuple[dict[str, dict], dict]:
    """The second feature space (EDM2's FD_DINOv2) against the reference's statistics for it."""
    from .evaluate import prepare_run

    assert p.second is not None
    # the second network's own weights (its environment variable, the cache, its download): --weights is the first's
    base = (xo or ExtractOptions()).replaced(extractor=None, preprocessing=None, layer=None, weights=None,
                                             allow_unverified_weights=False)
    sxo = apply_extract_protocol(p, base, second=True)
    entry = _catalogue_hit(reference, p)
    if entry is not None:  # the store entry of the second component (edm2/img512@fd_dinov2)
        from .stats.catalogue import COMPONENT_SEP

        ref: Any = f"{entry.id}{COMPONENT_SEP}{entry.components[-1].name}"
    else:
        ref = _edm2_reference(reference, "fd_dinov2") if str(reference).endswith(".pkl") else reference
    run = prepare_run({"reference": ref, "generated": _open_generated(generated, p)}, sxo, mo, [p.second[2]],
                      specs=[s for s in (reference, generated) if isinstance(s, str)])
    return run.score().metrics, dict(run.identity or {})
