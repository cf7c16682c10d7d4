"""Mode coverage on Stacked Fashion-MNIST, and per-class scores of class-conditional generators.

Stacked (``run_modes_probe``, ``channels=3``): each channel of a sample is classified on its own by
the Fashion-MNIST classifier (``fmnist-cnn``'s logits, the channel given as a gray image); the mode
of a sample is ``100 * class(R) + 10 * class(G) + class(B)``, one of 1000. Reported, as in the
Stacked MNIST protocol (Metz et al. 2017; VEEGAN; PacGAN):

- ``modes_covered``: distinct modes with at least one sample (max 1000);
- ``kl_to_uniform``: ``KL(p_gen || U_1000) = sum_m p(m) log(p(m) * 1000)`` (natural log) of the
  empirical mode histogram; 0 for a perfectly balanced sample set, ``log 1000 = 6.91`` for one mode.

A Fashion-MNIST classifier is far from perfect, so the real stacked data (default
``stacked-fashion-mnist:test``) is scored the same way as a reference row; it also gives the
classifier's accuracy on whole triples. ``min_confidence`` counts only samples whose three channel
predictions all have a softmax probability of at least that (0 = count every sample, the protocol's
choice); ``n_counted`` says how many were counted.

``channels=1``: the plain 10-mode version, the class histogram of gray images (reference
``fashion-mnist:test``).

Class-conditional generators (``conditional_scores``): for samples generated for intended labels,
the classifier's accuracy (how often the predicted class is the intended one) and, per class, the
Frechet distance between the features of the samples made for that class and the reference images
of that class.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import ExtractOptions
from ..errors import ConfigError, InputError
from ..evaluate import Run
from ..metrics.fid import frechet_distance_from_stats
from ..sources.derived import ChannelSource
from ..stats.feature_stats import FeatureStats
from ..util import progress
from .inputs import ProbeInput, extract_inputs, open_probe_input, prepare_probe, provenance_inputs

N_CLASSES = 10
DEFAULT_STACKED_REFERENCE = "stacked-fashion-mnist:test"
DEFAULT_SINGLE_REFERENCE = "fashion-mnist:test"
DEFAULT_CONDITIONAL_REFERENCE = "fashion-mnist:train"


# ----------------------------------------------------------------------------- pure math


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float [N, K] in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def kl_to_uniform(histogram: np.ndarray) -> float:
    """KL(p || uniform over len(histogram) bins) in nats, p = histogram / sum; 0 * log 0 = 0.

    Raises ConfigError for an empty histogram (no samples counted).
    """
    h = np.asarray(histogram, dtype=np.float64)
    total = h.sum()
    if total <= 0:
        raise ConfigError("the mode histogram is empty: no sample was counted (lower min_confidence / --min-confidence)")
    p = h[h > 0] / total
    return float(np.sum(p * np.log(p * len(h))))


def modes_of(channel_classes: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Per-channel classes int [N, C] -> mode index int64 [N] in [0, n_classes**C), first channel most significant."""
    c = np.asarray(channel_classes, dtype=np.int64)
    if c.ndim != 2 or (c.size and (c.min() < 0 or c.max() >= n_classes)):
        raise InputError(f"channel classes must be integers in [0, {n_classes}) of shape [N, C], got shape {c.shape}")
    weights = n_classes ** np.arange(c.shape[1] - 1, -1, -1, dtype=np.int64)
    return c @ weights


@dataclass(frozen=True, eq=False)
class ModeStats:
    """Mode coverage of one sample set; ``histogram`` [n_modes] counts the counted samples per mode."""

    n: int
    n_counted: int
    n_modes: int
    modes_covered: int
    kl_to_uniform: float
    histogram: np.ndarray
    accuracy: float | None = None  # share of samples whose predicted mode equals the true one, where known

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "histogram"}
        d["max_mode_share"] = float(self.histogram.max() / max(self.n_counted, 1))
        d["histogram"] = self.histogram.tolist()
        return d


def mode_statistics(
    channel_classes: np.ndarray,
    n_classes: int = N_CLASSES,
    confident: np.ndarray | None = None,
    true_modes: np.ndarray | None = None,
) -> ModeStats:
    """Modes covered and KL to uniform from per-channel predicted classes int [N, C].

    ``confident`` bool [N]: count only those samples (None = all). ``true_modes`` int [N]: the real
    modes, for the classifier's accuracy on whole samples.
    """
    c = np.asarray(channel_classes, dtype=np.int64)
    modes = modes_of(c, n_classes)
    n_modes = n_classes ** c.shape[1]
    keep = np.ones(len(modes), dtype=bool) if confident is None else np.asarray(confident, dtype=bool)
    hist = np.bincount(modes[keep], minlength=n_modes)
    accuracy = None
    if true_modes is not None:
        accuracy = float(np.mean(modes == np.asarray(true_modes, dtype=np.int64)))
    return ModeStats(len(modes), int(keep.sum()), n_modes, int((hist > 0).sum()), kl_to_uniform(hist), hist, accuracy)


# ----------------------------------------------------------------------------- the probe


@dataclass
class ModesReport:
    """Mode statistics of the generated set and of the real reference set, with provenance."""

    channels: int
    min_confidence: float
    generated: ModeStats
    reference: ModeStats | None
    provenance: dict

    def to_dict(self) -> dict:
        return {
            "probe": "modes",
            "channels": self.channels,
            "n_modes": self.generated.n_modes,
            "min_confidence": self.min_confidence,
            "modes_covered": self.generated.modes_covered,
            "kl_to_uniform": self.generated.kl_to_uniform,
            "generated": self.generated.to_dict(),
            "reference": self.reference.to_dict() if self.reference is not None else None,
            "provenance": self.provenance,
        }

    def format_text(self) -> str:
        rows = [("set", "n", "counted", "modes covered", "KL to uniform", "triple accuracy")]
        for name, s in (("generated", self.generated), ("reference (real)", self.reference)):
            if s is None:
                continue
            acc = "-" if s.accuracy is None else f"{s.accuracy:.4f}"
            rows.append((name, str(s.n), str(s.n_counted), f"{s.modes_covered} / {s.n_modes}", f"{s.kl_to_uniform:.4f}", acc))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        p = self.provenance
        lines.append(f"(extractor {p.get('extractor')}, channels {self.channels}, min confidence {self.min_confidence:g}, "
                     f"{p.get('wall_time_s')} s)")
        return "\n".join(lines)


def _channel_predictions(item: ProbeInput, run: Run, channels: int,
                         steps: progress.Steps | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(classes int [N, C], confidence float [N, C]) of each channel of an image input; each channel's
    extraction is the next of ``steps`` when given."""
    if item.source is None:
        raise ConfigError(f"{item.flag} {item.description}: mode counting classifies images, not feature files")
    classes, confidence = [], []
    sources = [item.source] if channels == 1 else [ChannelSource(item.source, c) for c in range(channels)]
    for c, src in enumerate(sources):
        with steps.step() if steps is not None else contextlib.nullcontext():
            ev = run.extract(src, f"{item.role}[channel {c}]" if channels > 1 else item.role,
                             keep_features=False, keep_logits=True)
        extractor = run.extractor
        assert extractor is not None  # run.extract refuses a run without one
        if ev.logits is None:
            raise ConfigError(f"extractor {extractor.name} has no classifier head (logits); mode counting needs one, "
                              "e.g. --extractor fmnist-cnn")
        if ev.logits.shape[1] != N_CLASSES:
            raise ConfigError(f"extractor {extractor.name} gives {ev.logits.shape[1]} classes; mode counting needs a "
                              f"{N_CLASSES}-class classifier such as fmnist-cnn")
        prob = softmax(ev.logits)
        classes.append(prob.argmax(axis=1))
        confidence.append(prob.max(axis=1))
        item.info = {k: v for k, v in ev.info.items() if k in ("kind", "location", "cache")}
    return np.stack(classes, axis=1), np.stack(confidence, axis=1)


def run_modes_probe(
    samples: Any,
    reference: Any | None = "default",
    *,
    channels: int = 3,
    min_confidence: float = 0.0,
    max_samples: int | None = None,
    seed: int = 0,
    extract_options: ExtractOptions | None = None,
) -> ModesReport:
    """Count the modes ``samples`` cover (``channels=3``: Stacked Fashion-MNIST, 1000 modes; ``1``: 10 classes).

    ``reference``: real images scored the same way ("default": ``stacked-fashion-mnist:test`` or
    ``fashion-mnist:test``; None: no reference row). Raises ConfigError for an extractor without a
    10-class head, a bad ``min_confidence`` or ``channels``.
    """
    started = time.perf_counter()
    xo = extract_options or ExtractOptions()
    if channels not in (1, 3):
        raise ConfigError(f"channels (--channels) must be 3 (stacked) or 1 (plain classes), got {channels}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"min_confidence (--min-confidence) must lie in [0, 1], got {min_confidence}")
    if isinstance(reference, str) and reference == "default":
        reference = DEFAULT_STACKED_REFERENCE if channels == 3 else DEFAULT_SINGLE_REFERENCE
    gen_in = open_probe_input(samples, "generated", "SAMPLES", data_dir=xo.data_dir, max_n=max_samples, seed=seed)
    ref_in = (open_probe_input(reference, "reference", "--ref", data_dir=xo.data_dir, max_n=max_samples, seed=seed,
                               stream=1) if reference is not None else None)
    inputs = [gen_in] + ([ref_in] if ref_in is not None else [])
    specs = [samples, reference, "fashion-mnist:test"]  # the classifier is the Fashion-MNIST one by default
    run = prepare_probe({x.role: x for x in inputs}, xo, specs, needed=True)
    steps = progress.Steps(len(inputs) * channels)  # one extraction per channel of each input

    def stats_of(item: ProbeInput, with_truth: bool) -> ModeStats:
        classes, conf = _channel_predictions(item, run, channels, steps)
        assert item.source is not None  # _channel_predictions refuses feature files
        confident = np.all(conf >= min_confidence, axis=1)
        truth = None
        if with_truth and item.source.has_labels:
            labels = item.source.labels()
            if labels is not None and labels.min() >= 0 and labels.max() < N_CLASSES**channels:
                truth = labels
        return mode_statistics(classes, N_CLASSES, confident, truth)

    gen_stats = stats_of(gen_in, with_truth=False)
    ref_stats = stats_of(ref_in, with_truth=True) if ref_in is not None else None
    run.started = started
    provenance = run.provenance({}, inputs=provenance_inputs(inputs), seed=seed, extra={"max_samples": max_samples})
    return ModesReport(channels, float(min_confidence), gen_stats, ref_stats, provenance)


# ----------------------------------------------------------------------------- class-conditional


@dataclass
class ConditionalReport:
    """Per-class Frechet distance and classifier accuracy of class-conditional samples."""

    accuracy: float
    per_class: list[dict]
    mean_class_fd: float
    fd_name: str
    provenance: dict

    def to_dict(self) -> dict:
        return {"probe": "conditional", "accuracy": self.accuracy, f"mean_class_{self.fd_name}": self.mean_class_fd,
                "per_class": self.per_class, "provenance": self.provenance}

    def format_text(self) -> str:
        lines = [f"{'class':<6}{'n':>7}{'n ref':>8}{'accuracy':>10}{self.fd_name:>14}"]
        for row in self.per_class:
            fd = row[self.fd_name]
            lines.append(f"{row['class']:<6}{row['n']:>7}{row['n_reference']:>8}{row['accuracy']:>10.4f}"
                         f"{f'{fd:.4f}' if fd is not None else '-':>14}")
        lines.append(f"accuracy {self.accuracy:.4f}, mean per-class {self.fd_name} {self.mean_class_fd:.4f} "
                     f"(extractor {self.provenance.get('extractor')}, {self.provenance.get('wall_time_s')} s)")
        return "\n".join(lines)


def conditional_scores(
    samples: Any,
    intended_labels: Any = None,
    reference: Any = DEFAULT_CONDITIONAL_REFERENCE,
    *,
    max_reference: int | None = None,
    seed: int = 0,
    extract_options: ExtractOptions | None = None,
) -> ConditionalReport:
    """Accuracy and per-class FD of ``samples`` generated for ``intended_labels`` int [N] (default: the
    source's own labels, e.g. a baseline's GeneratorSource or an .npz with ``labels``).

    ``reference`` must carry labels (a data set such as ``fashion-mnist:train``, or an .npz / feature
    file with labels). A class with fewer than 2 samples on either side gets FD None. Raises
    InputError when labels are missing or out of range.
    """
    started = time.perf_counter()
    xo = extract_options or ExtractOptions()
    gen_in = open_probe_input(samples, "generated", "SAMPLES", data_dir=xo.data_dir)
    ref_in = open_probe_input(reference, "reference", "--ref", data_dir=xo.data_dir, max_n=max_reference,
                              seed=seed, stream=1)
    pending = [i for i in (gen_in, ref_in) if i.evaluated is None]
    run = prepare_probe({"reference": ref_in, "generated": gen_in}, xo, [samples, reference, "fashion-mnist:test"])
    run.started, name, extractor = started, run.name, run.extractor
    steps = progress.Steps(len(pending))
    extract_inputs(run, {"generated": gen_in}, keep_features=True, keep_logits=True, steps=steps)
    extract_inputs(run, {"reference": ref_in}, keep_features=True, keep_logits=False, steps=steps)
    gen, ref = gen_in.evaluated, ref_in.evaluated
    # Both evaluated above, with features: extracted with keep_features, or feature files (no statistics files here).
    assert gen is not None and ref is not None and gen.features is not None and ref.features is not None
    if intended_labels is None:
        intended = gen.labels
        if intended is None:
            raise InputError(f"samples {gen_in.description}: no intended labels given and the samples carry none; "
                             "pass labels (an .npz with a 'labels' array, or intended_labels=...)")
    else:
        intended = np.asarray(intended_labels)
    intended = np.asarray(intended, dtype=np.int64)
    if intended.shape != (gen.n,) or (len(intended) and (intended.min() < 0 or intended.max() >= N_CLASSES)):
        raise InputError(f"intended labels must be {gen.n} integers in [0, {N_CLASSES}), got shape {intended.shape}")
    if gen.logits is None or gen.logits.shape[1] != N_CLASSES:
        raise ConfigError(f"extractor {name} has no {N_CLASSES}-class head; the conditional probe needs one (fmnist-cnn)")
    if ref.labels is None:
        raise InputError(f"reference {ref_in.description} (--ref) has no labels; per-class FD needs labelled real images")
    ref_labels = np.asarray(ref.labels, dtype=np.int64)
    predicted = gen.logits.argmax(axis=1)
    fd_name = (extractor.metric_names.fd if extractor is not None else "fd")
    rows, fds = [], []
    for c in range(N_CLASSES):
        g, r = gen.features[intended == c], ref.features[ref_labels == c]
        fd = None
        if len(g) >= 2 and len(r) >= 2:
            fd = frechet_distance_from_stats(FeatureStats.from_features(g), FeatureStats.from_features(r))
            fds.append(fd)
        acc = float(np.mean(predicted[intended == c] == c)) if (intended == c).any() else float("nan")
        rows.append({"class": c, "n": len(g), "n_reference": len(r), "accuracy": acc, fd_name: fd})
    provenance = run.provenance({}, inputs=provenance_inputs([gen_in, ref_in]), seed=seed)
    return ConditionalReport(float(np.mean(predicted == intended)), rows,
                             float(np.mean(fds)) if fds else float("nan"), fd_name, provenance)
