"""The transform-sensitivity probe: metrics of degraded real images, strength by strength.

    report = run_sensitivity_probe("fashion-mnist:test", "fashion-mnist:train",
                                   SensitivityOptions(transforms=("gaussian-blur", "jpeg"), metrics=("fd", "kid")))
    report.curves["gaussian-blur"]["fd_fmnist"]   # [[strength, value], ...]
    report.monotone["gaussian-blur"]["fd_fmnist"]  # True when the metric moves one way only

Held-out real images (default ``fashion-mnist:test``, a seeded subsample of ``max_samples``) are
degraded by each named transform of :data:`genbench.sources.transforms.TRANSFORMS` at increasing strengths
(the transform's default ladder, or the given one) and scored against the reference (default
``fashion-mnist:train``) with the chosen metrics. This is Heusel et al.'s (2017) disturbance design;
a metric worth its name should move one way as the damage grows.

Work done once: the reference is extracted once and its Evaluated reused for every point; the
untransformed samples are extracted once and reused for every strength 0. Each other point costs
one extraction of the transformed samples (transforms are seeded per image index, so a point does
not depend on batching).

Levels: strengths are taken in the order given, from weakest to strongest (``jpeg``'s ladder
``0, 90, 70, ...`` gets stronger as the quality falls). ``monotone`` is True when the values never
go up and never go down along the levels (not all equal); ``direction`` says which; ``spearman_rho``
is Spearman's rank correlation between level index and value (NaN for a constant curve).

Preprocessing comparison (``compare_preprocessing``): the same samples and reference extracted under
each named resize policy of the extractor (for Inception: tf1-bilinear, torch-bilinear, pil-bicubic);
reports the Frechet distance between the samples under each policy and under the first one (the
shift caused by the filter alone, clean-fid's "real vs real" table), and each policy's Frechet
distance to the reference extracted under that same policy.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ..config import ExtractOptions, MetricOptions
from ..errors import ConfigError
from ..evaluate import Evaluated, Run, build_run_extractor
from ..metrics.fid import frechet_distance_from_stats
from ..metrics.values import headline
from ..sources.transforms import TRANSFORMS, TransformedSource
from ..util import progress
from ..util.atomic import write_text_atomic
from .inputs import ProbeInput, open_probe_input, prepare_probe, provenance_inputs

DEFAULT_SAMPLES = "fashion-mnist:test"
DEFAULT_REFERENCE = "fashion-mnist:train"
DEFAULT_METRICS = ("fd", "kid")
#: Held-out images degraded per point by default (a seeded subsample).
DEFAULT_MAX_SAMPLES = 2000


@dataclass(frozen=True)
class SensitivityOptions:
    """What to degrade, how hard, and which metrics to follow.

    ``transforms``: names in TRANSFORMS (None = all). ``strengths``: transform name -> ladder
    overriding its default; the key ``"*"`` applies to every transform without its own entry.
    ``max_samples`` / ``max_reference``: seeded subsample sizes (None = all).
    """

    transforms: tuple[str, ...] | None = None
    strengths: dict[str, tuple[float, ...]] = field(default_factory=dict)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    max_samples: int | None = DEFAULT_MAX_SAMPLES
    max_reference: int | None = None
    seed: int = 0
    compare_preprocessing: tuple[str, ...] = ()

    def ladders(self) -> dict[str, tuple[float, ...]]:
        """transform -> its strengths, weakest first; unknown names raise ConfigError listing the valid ones."""
        names = list(self.transforms) if self.transforms is not None else TRANSFORMS.names()
        for key in self.strengths:
            if key != "*":
                TRANSFORMS.get(key)
                if key not in names:
                    raise ConfigError(f"--strengths gives a ladder for {key!r}, which is not among --transforms "
                                      f"({', '.join(names) or 'none'})")
        out = {}
        for name in names:
            spec = TRANSFORMS.get(name)
            ladder = tuple(float(s) for s in self.strengths.get(name, self.strengths.get("*", spec.strengths)))
            if len(ladder) < 2:
                raise ConfigError(f"transform {name}: a sensitivity curve needs at least 2 strengths, got {list(ladder)}")
            if any(not math.isfinite(s) or s < 0 for s in ladder):
                raise ConfigError(f"transform {name}: strengths must be finite and non-negative, got {list(ladder)}")
            out[name] = ladder
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strengths"] = {k: list(v) for k, v in self.strengths.items()}
        return d


def parse_strengths(texts: list[str] | tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """``["0,1,2"]`` -> {"*": (0, 1, 2)}; ``["jpeg=0,90,50"]`` -> {"jpeg": (0, 90, 50)}. ConfigError on bad numbers."""
    out: dict[str, tuple[float, ...]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        key, values = (name.strip(), values) if sep else ("*", text)
        try:
            ladder = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--strengths {text!r}: expected numbers separated by commas, optionally after "
                              "NAME=, e.g. 0,0.5,1 or gaussian-blur=0,1,2") from None
        if key in out:
            raise ConfigError(f"--strengths gives two ladders for {'every transform' if key == '*' else key}")
        out[key] = ladder
    return out


# ----------------------------------------------------------------------------- pure helpers


def monotonicity(values: list[float]) -> tuple[bool, str]:
    """(monotone, direction) of values along increasing levels.

    direction is "increasing" (never goes down, goes up at least once), "decreasing", "constant"
    (all equal; not counted as monotone) or "none"; NaN anywhere gives (False, "none").
    """
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2 or not np.isfinite(v).all():
        return False, "none"
    d = np.diff(v)
    if np.all(d == 0):
        return False, "constant"
    if np.all(d >= 0):
        return True, "increasing"
    if np.all(d <= 0):
        return True, "decreasing"
    return False, "none"


def spearman_rho(values: list[float]) -> float:
    """Spearman's rho between level index 0..L-1 and the values; NaN for a constant or non-finite curve."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2 or not np.isfinite(v).all() or np.all(v == v[0]):
        return float("nan")
    return float(spearmanr(np.arange(len(v)), v).statistic)


def scalar(entry: dict) -> float:
    """The headline number of a metric output: ``value`` or ``mean`` (genbench.metrics.values.headline)."""
    return headline(entry)


# ----------------------------------------------------------------------------- report


@dataclass
class SensitivityReport:
    """Curves per transform and metric, their monotonicity, the preprocessing comparison, provenance.

    ``points``: one dict per (transform, level, metric) with strength, unit and the metric's output.
    """

    points: list[dict]
    ladders: dict[str, tuple[float, ...]]
    metrics: list[str]
    preprocessing: list[dict] | None
    provenance: dict

    def values(self, transform: str, metric: str) -> list[float]:
        return [p["value"] for p in self.points if p["transform"] == transform and p["metric"] == metric]

    @property
    def curves(self) -> dict[str, dict[str, list[list[float]]]]:
        """transform -> metric -> [[strength, value], ...] in level order."""
        return {t: {m: [[s, v] for s, v in zip(ladder, self.values(t, m))] for m in self.metrics}
                for t, ladder in self.ladders.items()}

    @property
    def monotone(self) -> dict[str, dict[str, bool]]:
        return {t: {m: monotonicity(self.values(t, m))[0] for m in self.metrics} for t in self.ladders}

    @property
    def direction(self) -> dict[str, dict[str, str]]:
        return {t: {m: monotonicity(self.values(t, m))[1] for m in self.metrics} for t in self.ladders}

    @property
    def spearman(self) -> dict[str, dict[str, float]]:
        return {t: {m: spearman_rho(self.values(t, m)) for m in self.metrics} for t in self.ladders}

    def to_dict(self) -> dict:
        return {
            "probe": "sensitivity",
            "metrics": self.metrics,
            "transforms": {t: {"strengths": list(ladder), "unit": TRANSFORMS.get(t).unit}
                           for t, ladder in self.ladders.items()},
            "curves": self.curves,
            "monotone": self.monotone,
            "direction": self.direction,
            "spearman_rho": self.spearman,
            "points": self.points,
            "preprocessing": self.preprocessing,
            "provenance": self.provenance,
        }

    def to_csv(self) -> str:
        """Long format: transform, level, strength, unit, metric, value, std, ci95_lo, ci95_hi (empty when none)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["transform", "level", "strength", "unit", "metric", "value", "std", "ci95_lo", "ci95_hi"])
        for p in self.points:
            ci = p.get("ci95") or ("", "")
            writer.writerow([p["transform"], p["level"], f"{p['strength']:g}", p["unit"], p["metric"],
                             repr(p["value"]), "" if p.get("std") is None else repr(p["std"]),
                             *(repr(float(v)) if v != "" else "" for v in ci)])
        return buf.getvalue()

    def preprocessing_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if self.preprocessing:
            keys = list(self.preprocessing[0])
            writer.writerow(keys)
            for row in self.preprocessing:
                writer.writerow([row[k] for k in keys])
        return buf.getvalue()

    def write_outputs(self, folder: str | Path) -> list[Path]:
        """``sensitivity.csv``, one ``sensitivity_<metric>.png`` per metric
        (:func:`genbench.results.probe_figures.render_sensitivity_figure`), and ``preprocessing.csv`` when compared."""
        from ..results.plots import _save
        from ..results.probe_figures import render_sensitivity_figure

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "sensitivity.csv"]
        write_text_atomic(written[0], self.to_csv())
        doc = self.to_dict()
        for metric in self.metrics:
            image = render_sensitivity_figure(doc["points"], doc["transforms"], metric)
            written.append(_save(image, folder / f"sensitivity_{metric}.png"))
        if self.preprocessing:
            path = folder / "preprocessing.csv"
            write_text_atomic(path, self.preprocessing_csv())
            written.append(path)
        return written

    def format_text(self) -> str:
        lines = []
        rho, direction = self.spearman, self.direction
        for t, ladder in self.ladders.items():
            lines.append(f"{t} ({TRANSFORMS.get(t).unit}): strengths {', '.join(f'{s:g}' for s in ladder)}")
            for m in self.metrics:
                vals = "  ".join(f"{v:.4g}" for v in self.values(t, m))
                r = rho[t][m]
                lines.append(f"  {m:<14} {vals}   {direction[t][m]}, rho {r:+.2f}" if math.isfinite(r)
                             else f"  {m:<14} {vals}   {direction[t][m]}")
        for row in self.preprocessing or []:
            lines.append("preprocessing " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in row.items()))
        p = self.provenance
        lines.append(f"(extractor {p.get('extractor')}, n samples {p['inputs']['samples']['n']}, "
                     f"n reference {p['inputs']['reference']['n']}, seed {p.get('seed')}, {p.get('wall_time_s')} s)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the probe


def run_sensitivity_probe(
    samples: Any = DEFAULT_SAMPLES,
    reference: Any = DEFAULT_REFERENCE,
    options: SensitivityOptions = SensitivityOptions(),
    extract_options: ExtractOptions | None = None,
    metric_options: MetricOptions | None = None,
) -> SensitivityReport:
    """Score transformed copies of ``samples`` against ``reference``; see the module docstring.

    ``samples`` must be images (a folder, array, data set, ...); ``reference`` may also be a feature
    file, or a statistics file when every metric needs statistics only. Raises ConfigError for
    unknown transforms or metrics and for inputs lacking what a metric needs, ReferenceStatsError
    for a reference built with another extractor. ``metric_options.bootstrap`` > 0 adds seeded 95%
    intervals of FD and KID at every point (the plots' error bars). Progress
    (``extract_options.progress``): each extraction, with the metrics of its point, is a numbered step.
    """
    xo = extract_options or ExtractOptions()
    with progress.enabled(xo.progress):
        return _run_sensitivity_probe(samples, reference, options, xo, metric_options or MetricOptions(seed=options.seed))


def _run_sensitivity_probe(samples: Any, reference: Any, options: SensitivityOptions, xo: ExtractOptions,
                           mo: MetricOptions) -> SensitivityReport:
    started = time.perf_counter()
    ladders = options.ladders()
    if not ladders and not options.compare_preprocessing:
        raise ConfigError("nothing to do: no transforms (--transforms none) and no --compare-preprocessing")
    samples_in = open_probe_input(samples, "samples", "--samples", data_dir=xo.data_dir, max_n=options.max_samples,
                                  seed=options.seed, stream=0)
    if samples_in.source is None:
        raise ConfigError(f"--samples {samples_in.description}: the sensitivity probe transforms images, so it needs "
                          "images, not a feature or statistics file")
    ref_in = open_probe_input(reference, "reference", "--ref", data_dir=xo.data_dir, max_n=options.max_reference,
                              seed=options.seed, stream=1, allow_stats=True)
    # The plan (none when only the preprocessing comparison is asked for), its needs and the compatibility policy.
    run = prepare_probe({"generated": samples_in, "reference": ref_in}, xo, [samples, reference], needed=True,
                        metric_options=mo, metrics=list(options.metrics) if ladders else None)
    xo, plan = run.options, run.plan
    assert run.extractor is not None
    extractor = run.extractor
    if options.compare_preprocessing and ref_in.source is None:
        raise ConfigError("--compare-preprocessing re-extracts the reference under each policy, so --ref must be "
                          f"images, not {ref_in.description}")

    # FD's bootstrap resamples the generated features, so they are kept when intervals are asked for.
    keep_feat, keep_logits = run.keeps("generated")
    extract_ref = ref_in.evaluated is None and (bool(plan) or not options.compare_preprocessing)
    n_points = sum(1 for ladder in ladders.values() for s in ladder if s != 0) if plan else 0
    own = extractor.preprocessing  # its samples and reference statistics are reused by the comparison
    n_compare = sum(int(not (p == own and plan)) + int(not (p == own and extract_ref))
                    for p in options.compare_preprocessing)
    steps = progress.Steps(int(extract_ref) + int(bool(plan)) + n_points + n_compare)
    if extract_ref:
        assert ref_in.source is not None  # open_probe_input gives an input a source or loaded features
        with steps.step():
            ref_in.evaluated = run.evaluated("reference")
        ref_in.info = dict(ref_in.evaluated.info)
    base: Evaluated | None = None
    base_outputs: dict[str, dict] = {}
    if plan:
        with steps.step():  # the untransformed samples and their metrics: once for every transform's strength 0
            base = run.extract(samples_in.source, "samples", keep_feat, keep_logits)
            if any(0 in ladder for ladder in ladders.values()):
                assert ref_in.evaluated is not None  # loaded, or extracted above whenever there is a plan
                base_outputs = run.compute({"generated": base, "reference": ref_in.evaluated})
        samples_in.info = dict(base.info)

    points: list[dict] = []
    for transform, ladder in ladders.items():
        unit = TRANSFORMS.get(transform).unit
        for level, strength in enumerate(ladder):
            if not plan:
                break
            if strength == 0:
                outputs = base_outputs
            else:
                with steps.step():
                    src = TransformedSource(samples_in.source, [(transform, strength)], seed=options.seed)
                    ev = run.extract(src, f"{transform}={strength:g}", keep_feat, keep_logits)
                    assert ref_in.evaluated is not None  # loaded, or extracted above whenever there is a plan
                    # every metric of the plan at this level in one pass (one k-NN sweep for PRDC)
                    outputs = run.compute({"generated": ev, "reference": ref_in.evaluated})
            for out_name, _ in plan:
                entry = outputs[out_name]
                points.append({"transform": transform, "level": level, "strength": strength, "unit": unit,
                               "metric": out_name, "value": scalar(entry), "std": entry.get("std"),
                               "ci95": entry.get("ci95"), "output": entry})

    comparison = None
    if options.compare_preprocessing:
        ref_stats = ref_in.evaluated.stats if ref_in.evaluated is not None else None  # extracted above from images
        reuse = {extractor.preprocessing: (base.stats if base is not None else None, ref_stats)}
        comparison = compare_preprocessing(samples_in, ref_in, run, options.compare_preprocessing, reuse, steps)

    run.started = started
    provenance = run.provenance(
        {}, inputs=provenance_inputs([samples_in, ref_in]),
        options={"options": options.to_dict(), "metric_options": mo.to_dict()}, seed=options.seed,
        extra={"metric_names": [n for n, _ in plan], "transform_seed": options.seed},
    )
    return SensitivityReport(points, ladders, [n for n, _ in plan], comparison, provenance)


def compare_preprocessing(
    samples_in: ProbeInput,
    ref_in: ProbeInput,
    run: Run,
    policies: tuple[str, ...],
    reuse: dict | None = None,
    steps: progress.Steps | None = None,
) -> list[dict]:
    """One row per policy: FD of the samples under it to the samples under the first policy, and FD to
    the reference extracted under the same policy. ``reuse``: policy -> (samples stats, reference stats)
    already extracted with that policy (either may be None). ``steps``: each extraction is its next step."""
    if len(policies) < 2:
        raise ConfigError(f"--compare-preprocessing needs at least two policies, got {list(policies)}")
    if len(set(policies)) != len(policies):
        raise ConfigError(f"--compare-preprocessing lists a policy twice: {list(policies)}")
    reuse = reuse or {}
    extracted = {}
    for policy in policies:
        # the run's network under another policy (ConfigError for an unknown one)
        net = build_run_extractor(run.name, dataclasses.replace(run.options, preprocessing=policy))
        have_s, have_r = reuse.get(policy, (None, None))
        s, r = have_s, have_r
        if s is None:
            assert samples_in.source is not None  # the probe refuses --samples that are not images
            with steps.step() if steps is not None else contextlib.nullcontext():
                s = run.extract(samples_in.source, f"samples[{policy}]", False, False, extractor=net).stats
        if r is None:
            assert ref_in.source is not None  # --compare-preprocessing refuses a --ref that is not images
            with steps.step() if steps is not None else contextlib.nullcontext():
                r = run.extract(ref_in.source, f"reference[{policy}]", False, False, extractor=net).stats
        extracted[policy] = (s, r, net.metric_names.fd)
    first = policies[0]
    fd_name = extracted[first][2]
    rows: list[dict[str, Any]] = []
    for policy in policies:
        s, r, _ = extracted[policy]
        rows.append({
            "preprocessing": policy,
            f"{fd_name}_same_images_vs_{first}": frechet_distance_from_stats(s, extracted[first][0]),
            f"{fd_name}_to_reference": frechet_distance_from_stats(s, r),
        })
    base_fd = rows[0][f"{fd_name}_to_reference"]
    for row in rows:
        row[f"{fd_name}_shift_vs_{first}"] = row[f"{fd_name}_to_reference"] - base_fd
    return rows
