"""The Fashion-MNIST leaderboard: bundled baselines and reference rows, scored and rendered.

Every row is an image source of ``n`` samples (seeded). Metrics, all with the
bundled ``fmnist-cnn`` network:

- ``fd_fmnist``: Frechet distance to the bundled statistics of the full training split (60k);
- ``is_fmnist``: classifier score of the samples (10 splits);
- ``kid_fmnist``, ``precision``, ``recall``, ``density``, ``coverage``: against the features of a
  seeded 10k subset of the training split (the same subset for every row).

CycleGAN translates held-out sneakers into sandals (its classes are in its config): its row
holds each held-out source translated once (n = the number of held-out sources, never a repeat),
is scored against the target class of the held-out split, and reports the cycle reconstruction
error. The flow row reports bits per dimension on the test split. Every baseline row carries its
training budget (steps, device, wall time) and, with ``bootstrap`` replicates, the seeded 95%
interval of each FD and KID. A row whose images repeat (``ImageSource.repeats``) is refused.
Reference rows show what the metrics can and cannot see: the real test split (the best
a model can hope for), copies of training images, lightly transformed copies, a
mode-collapsed generator (the conditional GAN asked for one class) and noise.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .config import ExtractOptions, MetricOptions
from .errors import ConfigError, InputError, WeightsError
from .evaluate import Evaluated, extract_source, repeats_message
from .features import build_extractor
from .metrics.registry import METRICS, resolve_metrics
from .results.pictures import image_grid, save_png
from .sources.arrays import ArraySource
from .sources.base import ImageSource, check_uint8_batch
from .sources.datasets import open_dataset
from .sources.resolve import open_source
from .sources.subset import SubsetSource
from .sources.transforms import TransformedSource
from .stats.reference import ManifestEntry, lookup_reference
from .util.atomic import write_text_atomic
from .util.progress import enabled as progress_enabled

EXTRACTOR = "fmnist-cnn"
METRIC_KINDS = ("fd", "is", "kid", "precision", "recall", "density", "coverage")
REFERENCE_SUBSET = 10_000
LIGHT_TRANSFORMS = [("hflip", 0.5), ("shift", 1.0), ("gaussian-noise", 4.0)]


@dataclass
class Row:
    """One leaderboard line."""

    name: str
    kind: str  # "baseline" or "reference"
    metrics: dict[str, dict]
    extra: dict = field(default_factory=dict)
    n: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class RowSpec:
    name: str
    kind: str
    make: Callable[[int, int], ImageSource]  # (n, seed) -> source
    target_class: int | None = None  # score against this class of ``target_split`` only
    extra: dict = field(default_factory=dict)
    #: (n, seed) -> None: cheap checks (image count, a first small sample) run before any row is scored.
    preflight: Callable[[int, int], None] | None = None
    n: int | None = None  # this row's sample count when fixed by the model (CycleGAN: its held-out sources)
    target_split: str = "fashion-mnist:train"  # with target_class: the split whose class is the reference


# ----------------------------------------------------------------------------- rows


class NoiseSource(ImageSource):
    """Uniform random uint8 images [3, 28, 28], seeded per index."""

    kind = "noise"

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.location = n, seed, f"uniform noise (seed {seed})"

    def __len__(self) -> int:
        return self.n

    def read(self, index: int) -> np.ndarray:
        gray = np.random.default_rng([self.seed, index]).integers(0, 256, (28, 28), dtype=np.uint8)
        return np.repeat(gray[None], 3, axis=0)

    def key(self, index: int) -> str:
        return f"noise-{index:06d}"


def reference_row_specs(data_dir: str | None) -> list[RowSpec]:
    def test_split(n: int, seed: int) -> ImageSource:
        test = open_dataset("fashion-mnist:test", data_dir)
        if n > len(test):
            raise InputError(f"reference row 'real test split' has {len(test)} images; {n} were asked for (--n)")
        return SubsetSource(test, np.arange(n), f"first {n}")

    def copies(n: int, seed: int) -> ImageSource:
        return SubsetSource.seeded(open_dataset("fashion-mnist:train", data_dir), n, seed + 1, "reference row 'train copies'")

    def light(n: int, seed: int) -> ImageSource:
        return TransformedSource(copies(n, seed), LIGHT_TRANSFORMS, seed=seed)

    def collapsed(n: int, seed: int) -> ImageSource:
        from genbench.baselines.api import GeneratorSource

        return GeneratorSource("cgan", n, seed=seed, labels=np.zeros(n, dtype=np.int64))

    return [
        RowSpec("real test split", "reference", test_split),
        RowSpec("train copies", "reference", copies),
        RowSpec("train copies, flip/shift/noise", "reference", light),
        RowSpec("mode collapse (cgan, class 0 only)", "reference", collapsed),
        RowSpec("uniform noise", "reference", lambda n, seed: NoiseSource(n, seed)),
    ]


def baseline_row_specs(families: list[str] | None) -> list[RowSpec]:
    from genbench.baselines.api import list_families, load_checkpoint
    from genbench.baselines.checkpoint import read_manifest

    manifest = read_manifest()["checkpoints"]
    specs = []
    for info in list_families(dataset="fashion-mnist:train"):  # not dcgan-stacked (colour)
        name = info["name"]
        if (families and name not in families) or info["checkpoint"] is None:
            continue
        model = load_checkpoint(name)
        entry = manifest.get(name, {})
        extra = {k: round(float(v), 4) for k, v in entry.get("metrics", {}).items()}
        extra.update(_training_budget(entry))
        specs.append(generator_row_spec(name, model, extra))
    return specs


def generator_row_spec(name: str, model, extra: dict | None = None) -> RowSpec:
    """A baseline row for a loaded model: n and the reference follow the model (a translation model: each of
    its held-out sources once, against the held-out target class)."""
    from genbench.baselines.api import GeneratorSource

    distinct = model.distinct_samples()
    target = getattr(model.options, "domain_b", None) if distinct is not None else None
    return RowSpec(name, "baseline", lambda n, seed: GeneratorSource(model, n, seed=seed), target_class=target,
                   extra=dict(extra or {}), n=distinct,
                   target_split="fashion-mnist:test" if distinct is not None else "fashion-mnist:train")


def _training_budget(entry: dict) -> dict:
    """Steps, device and wall time of a bundled checkpoint's training run (its manifest ``entry``)."""
    device = str(entry.get("device", "?"))
    if device == "cpu" and entry.get("threads"):
        device = f"cpu x{entry['threads']}"
    return {"train_steps": entry.get("steps"), "train_device": device, "train_seconds": entry.get("wall_time_s")}


# ----------------------------------------------------------------------------- the user's own rows


def added_row_spec(entry: str, data_dir: str | None = None) -> RowSpec:
    """``NAME=SPEC`` (CLI ``--add``) as a leaderboard row of kind ``added``.

    SPEC is a checkpoint of a bundled family (``*.pt``), a Python callable ``py:MODULE:FUNCTION``
    or ``py:FILE.py:FUNCTION`` called as ``fn(n, seed)`` and returning uint8 images
    ([n, H, W], [n, H, W, C] or [n, C, H, W]) or an ImageSource, or anything ``genbench score``
    accepts (a folder, an archive, a ``.npz``/``.npy``, ``NAME:SPLIT``). Sources with more than
    ``n`` images contribute a seeded subset of ``n``; fewer is an InputError.
    """
    name, sep, spec = entry.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ConfigError(f"--add {entry!r}: expected NAME=SPEC, e.g. mymodel=samples/ or mymodel=ckpt.pt")
    preflight: Callable[[int, int], None] | None = None
    if spec.startswith("py:"):
        make = _callable_maker(spec, name)

        def preflight(n: int, seed: int) -> None:  # a first small call checks dtype, range and shape
            try:
                small = make(min(n, 2), seed)
                batch = small.read_batch(0, len(small))
            except InputError as exc:
                message = str(exc) if str(exc).startswith(f"--add {name}") else f"--add {name}: {exc}"
                raise InputError(message) from None
            for image in batch:
                check_uint8_batch(np.asarray(image)[None], f"--add {name} ({spec}), a first call with n={len(small)}")
    elif spec.lower().endswith(".pt"):
        if not Path(spec).is_file():
            raise InputError(f"--add {name}: checkpoint {spec} does not exist")
        from genbench.baselines.api import GeneratorSource, load_checkpoint

        model = load_checkpoint(spec)
        def make(n: int, seed: int) -> ImageSource:
            return GeneratorSource(model, n, seed=seed)
    else:
        source = open_source(spec, data_dir=data_dir)
        def make(n: int, seed: int) -> ImageSource:
            return _take(source, n, seed, f"--add {name} ({spec})")

        def preflight(n: int, seed: int) -> None:
            if len(source) < n:
                raise InputError(f"--add {name}: {spec} has {len(source)} images, fewer than -n {n}; "
                                 f"pass -n {len(source)} or add images")
            repeated = repeats_message(source)
            if repeated:
                raise InputError(f"--add {name}: {repeated}")
    return RowSpec(name, "added", make, extra={"source": spec}, preflight=preflight)


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _take(source: ImageSource, n: int, seed: int, what: str) -> ImageSource:
    if len(source) == n:
        return source
    return SubsetSource.seeded(source, n, seed, what)


def _callable_maker(spec: str, name: str) -> Callable[[int, int], ImageSource]:
    target, _, func_name = spec[3:].rpartition(":")
    if not target or not func_name:
        raise ConfigError(f"--add {name}={spec}: expected py:MODULE:FUNCTION or py:FILE.py:FUNCTION")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise InputError(f"--add {name}: Python file {target} does not exist")
            module_spec = importlib.util.spec_from_file_location(f"genbench_added_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            with _cwd_on_path():  # as `python -m` would: modules of the folder the command runs in
                module = importlib.import_module(target)
    except ImportError as exc:
        raise ConfigError(f"--add {name}: cannot import {target!r}: {exc}") from exc
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ConfigError(f"--add {name}: {target} has no callable {func_name!r}")

    def make(n: int, seed: int) -> ImageSource:
        try:
            made = fn(n, seed)
        except Exception as exc:  # noqa: BLE001  the user's code: report it as theirs, with the option
            raise InputError(f"--add {name}: {spec} raised {type(exc).__name__}: {exc} when called as "
                             f"{func_name}(n={n}, seed={seed})") from exc
        source = made if isinstance(made, ImageSource) else ArraySource(made, name=f"{spec}(n={n}, seed={seed})")
        if len(source) != n:
            raise InputError(f"--add {name}: {spec} returned {len(source)} images for n={n}")
        return source

    return make


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class MetricPlan:
    """An extractor and the metric kinds computed with it on every row."""

    extractor: str
    kinds: tuple[str, ...]
    weights: str | None = None
    allow_unverified: bool = False


FMNIST_PLAN = MetricPlan(EXTRACTOR, METRIC_KINDS)
INCEPTION_KINDS = ("fd", "is")


def inception_plan(mode: str, weights: str | None = None, allow_unverified: bool = False) -> MetricPlan | None:
    """FID and IS with Inception-v3, or None.

    ``mode``: ``off``; ``on`` (weights required: ``weights``, ``$GENBENCH_INCEPTION_WEIGHTS``, the
    cache, or a download); ``auto`` (on when a file is at hand without downloading, else off).
    """
    if mode == "off":
        return None
    if mode == "auto" and weights is None:
        from .features.inception import INCEPTION_V3_WEIGHTS
        from .features.weights import resolve_weights

        try:
            resolve_weights(INCEPTION_V3_WEIGHTS, allow_unverified=allow_unverified, allow_download=False)
        except WeightsError:
            return None
    return MetricPlan("inception-v3", INCEPTION_KINDS, weights, allow_unverified)


def _bundled_statistics(extractor) -> ManifestEntry | None:
    """The bundled training-split statistics built with exactly this extractor, if any."""
    identity = extractor.identity()
    entry = lookup_reference("fashion-mnist:train", identity.extractor)
    if entry is None or entry.weights_sha256 != identity.weights_sha256 or entry.preprocessing != identity.preprocessing:
        return None
    return entry


def _reference_for(extractor, xo: ExtractOptions, seed: int, data_dir: str | None, target: tuple[str, int] | None,
                   reference_n: int = REFERENCE_SUBSET) -> Evaluated:
    """Training-split reference: bundled 60k statistics (when built with this extractor) + features of a
    seeded ``reference_n`` subset; or every image of one class of a split (``target`` = (split, class))."""
    if target is None:
        train = open_dataset("fashion-mnist:train", data_dir)
        subset = SubsetSource.seeded(train, min(reference_n, len(train)), seed, "fashion-mnist:train")
    else:
        split = open_dataset(target[0], data_dir)
        subset = SubsetSource(split, np.flatnonzero(split.labels() == target[1]), f"class {target[1]}")
    target_class = None if target is None else target[1]
    ref = extract_source(subset, extractor, xo, role="reference", keep_features=True, keep_logits=False)
    entry = _bundled_statistics(extractor) if target_class is None else None
    if entry is not None:
        ref.stats = entry.load().stats
        ref.info = {"kind": "statistics+subset", "reference_id": entry.id, "sha256": entry.sha256,
                    "feature_subset": subset.location}
    return ref


def score_rows(specs: list[RowSpec], n: int, seed: int, data_dir: str | None = None, batch_size: int = 500,
               progress: bool = False, log: Callable[[str], None] = lambda s: None,
               plans: list[MetricPlan] | None = None, reference_n: int = REFERENCE_SUBSET,
               bootstrap: int = 0) -> tuple[list[Row], dict]:
    """Extract and score every row under every plan (default: the fmnist-cnn metrics only).

    ``n``: samples per row (a row whose model fixes its count, ``RowSpec.n``, keeps its own);
    ``reference_n``: size of the seeded training subset whose features serve KID, precision/recall/
    density/coverage, and FD where no bundled statistics match the extractor; ``bootstrap``: replicates
    for the seeded 95% intervals of FD and KID (0: none). A row whose images repeat is an InputError.

    Returns the rows and the sample images kept for pictures.
    """
    plans = plans or [FMNIST_PLAN]
    extractors = [build_extractor(p.extractor, weights=p.weights, allow_unverified=p.allow_unverified) for p in plans]
    options = [ExtractOptions(extractor=p.extractor, weights=p.weights, allow_unverified_weights=p.allow_unverified,
                              batch_size=batch_size, data_dir=data_dir, progress=progress) for p in plans]
    references: list[dict[tuple[str, int] | None, Evaluated]] = [{} for _ in plans]
    rows, samples = [], {}
    for spec in specs:
        started = time.perf_counter()
        source = spec.make(spec.n or n, seed)
        repeated = repeats_message(source)
        if repeated:
            raise InputError(f"leaderboard row {spec.name!r}: {repeated}")
        target = None if spec.target_class is None else (spec.target_split, spec.target_class)
        metrics = {}
        for plan, extractor, xo, refs in zip(plans, extractors, options, references):
            if target not in refs:
                refs[target] = _reference_for(extractor, xo, seed, data_dir, target, reference_n)
            ref = refs[target]
            gen = extract_source(source, extractor, xo, role="generated", keep_features=True, keep_logits=True)
            # Intervals on the fmnist-cnn metrics (d=128, cheap); at Inception's d=2048 each bootstrap replicate
            # costs a matrix square root, so the optional fid/is columns go without.
            replicates = bootstrap if plan.extractor == EXTRACTOR else 0
            mo = MetricOptions(seed=seed, kid_subset_size=min(1000, gen.n, ref.features.shape[0]), bootstrap=replicates)
            with progress_enabled(progress):
                for out_name, kind in resolve_metrics(list(plan.kinds), extractor.metric_names, plan.extractor):
                    metrics[out_name] = METRICS.get(kind).compute(gen, ref, mo)
        extra = dict(spec.extra)
        if target is not None:
            extra["scored_against"] = f"{target[0]} class {target[1]} ({refs[target].n} images)"
        rows.append(Row(spec.name, spec.kind, metrics, extra, gen.n, time.perf_counter() - started))
        samples[spec.name] = source.read_batch(0, min(64, len(source)))
        shown = "  ".join(f"{k}={_headline(metrics[k]):.3f}" for k in ("fd_fmnist", "fid") if k in metrics)
        log(f"{spec.name:<36} {shown}  ({rows[-1].seconds:.1f} s)")
    provenance = {
        "genbench_version": __version__, "extractor": extractors[0].identity().to_dict(),
        "extractors": [e.identity().to_dict() for e in extractors], "n": n, "seed": seed, "reference_n": reference_n,
        "references": {f"{p.extractor}/{_target_name(k)}": v.info for p, refs in zip(plans, references)
                       for k, v in refs.items()},
    }
    return rows, {"samples": samples, "provenance": provenance}


def _target_name(target: tuple[str, int] | None) -> str:
    return "fashion-mnist:train" if target is None else f"{target[0]} class {target[1]}"


# ----------------------------------------------------------------------------- rendering

COLUMNS = ("fd_fmnist", "is_fmnist", "kid_fmnist", "precision", "recall", "density", "coverage", "fid", "is")
WITH_STD = ("is_fmnist", "kid_fmnist", "is")  # columns whose std also goes into the CSV
RANKED_KINDS = ("baseline", "added")  # ranked by fd_fmnist; reference rows follow in their own order


def _headline(entry: dict) -> float:
    return float(entry["value"] if "value" in entry else entry["mean"])


def table_rows(rows: list[Row]) -> list[dict]:
    """Flat dicts for CSV/Markdown: baselines and added models sorted by fd_fmnist, then reference rows."""
    ordered = sorted([r for r in rows if r.kind in RANKED_KINDS], key=lambda r: _headline(r.metrics["fd_fmnist"]))
    ordered += [r for r in rows if r.kind not in RANKED_KINDS]
    out = []
    for r in ordered:
        flat = {"model": r.name, "kind": r.kind, "n": r.n}
        flat.update({c: _headline(r.metrics[c]) for c in COLUMNS if c in r.metrics})
        flat.update({f"{c}_std": r.metrics[c]["std"] for c in WITH_STD if c in r.metrics})
        for c in COLUMNS:  # seeded bootstrap 95% intervals, where the row was scored with them
            if c in r.metrics and "ci95" in r.metrics[c]:
                flat[f"{c}_ci95_lo"], flat[f"{c}_ci95_hi"] = (float(v) for v in r.metrics[c]["ci95"])
        flat["notes"] = ", ".join(f"{k}={v}" for k, v in r.extra.items())
        flat["seconds"] = round(r.seconds, 1)
        out.append(flat)
    return out


def to_markdown(rows: list[dict], provenance: dict, command: str) -> str:
    """leaderboard.md from the rows of results.json: the ranked table (see :mod:`genbench.results.pages.leaderboard_page`)."""
    from .results.pages.leaderboard_page import columns_of, markdown_table, ordered_rows

    columns = columns_of(ordered_rows(rows))
    lines = [
        "# Fashion-MNIST leaderboard", "",
        (f"Extractor `{EXTRACTOR}` (weights sha256 `{provenance['extractor']['weights_sha256'][:12]}…`), "
         f"n = {provenance['n']} samples per row, seed {provenance['seed']}, genbench {provenance['genbench_version']}."),
        ("fd_fmnist is against the full training split's statistics; KID and precision/recall/density/coverage "
         f"against a seeded {provenance.get('reference_n', REFERENCE_SUBSET)} image subset of it. "
         "These are domain-network numbers, not FID/IS."),
    ]
    if "fid" in columns:
        inception = next(e for e in provenance["extractors"] if e["extractor"] == "inception-v3")
        lines.append(f"fid and is: Inception-v3 (weights sha256 `{inception['weights_sha256'][:12]}…`, "
                     f"{inception['preprocessing']}); fid against the bundled training statistics built with these "
                     "weights when present, else the same image subset.")
    lines += ["", f"Reproduce: `{command}`", "", *markdown_table(rows), "",
              "↓ lower is better, ↑ higher is better; [lo, hi]: seeded 95% bootstrap interval; ± std over IS splits."]
    return "\n".join(lines) + "\n"


def to_csv(flat: list[dict]) -> str:
    buffer = io.StringIO()
    fieldnames = list(dict.fromkeys(key for f in flat for key in f))
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def to_html(rows: list[dict], pictures: dict[str, Path], provenance: dict, command: str) -> str:
    """index.html from the rows of results.json (see :mod:`genbench.results.pages.leaderboard_page`)."""
    from .results.pages.leaderboard_page import render_page

    return render_page(rows, provenance, pictures, command)


def render(rows: list[Row], artifacts: dict, out_dir: Path, command: str, extra_pictures: dict[str, Path]) -> dict[str, Path]:
    """Write leaderboard.md, leaderboard.csv, index.html, results.json and a grid PNG per row into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures: dict[str, Path] = {}
    for name, images in artifacts["samples"].items():
        slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        pictures[f"samples: {name}"] = save_png(image_grid(images, columns=8, scale=2), out_dir / f"grid-{slug}.png")
    pictures.update(extra_pictures)
    flat = table_rows(rows)
    provenance = artifacts["provenance"]
    doc = {"rows": [{"name": r.name, "kind": r.kind, "n": r.n, "metrics": r.metrics, "extra": r.extra,
                     "seconds": r.seconds} for r in rows],
           "provenance": {**provenance, "command": command},
           "artifacts": {k: str(v.relative_to(out_dir)) for k, v in pictures.items()}}
    write_text_atomic(out_dir / "leaderboard.md", to_markdown(doc["rows"], provenance, command))
    write_text_atomic(out_dir / "leaderboard.csv", to_csv(flat))
    write_text_atomic(out_dir / "index.html", to_html(doc["rows"], pictures, doc["provenance"], command))
    write_text_atomic(out_dir / "results.json", json.dumps(doc, indent=2) + "\n")
    return pictures


def row_documents(rows: list[Row], provenance: dict, command: str) -> list[dict]:
    """One result document per row (for a results history): its metrics and the board's provenance."""
    from .results.history import run_stamp

    stamp = run_stamp()
    return [{"metrics": r.metrics,
             "provenance": {**provenance, **provenance["extractor"], **stamp, "name": r.name, "row_kind": r.kind,
                            "extra": r.extra, "command": command}}  # identity fields at the top, as in scores
            for r in rows]


# ----------------------------------------------------------------------------- model pictures


def conditional_grid(out_dir: Path, seed: int) -> dict[str, Path]:
    """cgan samples by class: one row per class."""
    from genbench.baselines.api import sample_images

    labels = np.repeat(np.arange(10), 10)
    images = sample_images("cgan", len(labels), seed=seed, labels=labels)
    classes = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    grid = image_grid(images, columns=10, scale=2, row_labels=classes)
    return {"cgan: samples by class": save_png(grid, out_dir / "cgan-by-class.png")}


def glo_pictures(out_dir: Path, seed: int, data_dir: str | None) -> dict[str, Path]:
    """GLO: interpolations between learned codes, and class-mean latent arithmetic."""
    import torch

    from genbench.baselines.api import load_checkpoint, quantize

    from .sources.datasets import load_dataset_arrays

    glo = load_checkpoint("glo")
    codes = glo.nets["codes"]
    z = codes.z.weight.detach()
    _, labels = load_dataset_arrays("fashion-mnist:train", data_dir)
    code_labels = torch.from_numpy(labels[codes.image_index.cpu().numpy()])
    rng = np.random.default_rng(seed)
    decode = lambda latents: quantize(glo.nets["generator"](latents), glo.output_range)  # noqa: E731
    steps = torch.linspace(0, 1, 10)[:, None]
    rows = []
    with torch.no_grad():
        for a, b in rng.choice(len(z), size=(6, 2), replace=False):
            rows.append(decode(glo.project((1 - steps) * z[a] + steps * z[b])))
        interp = np.concatenate(rows)
        means = torch.stack([z[code_labels == c].mean(0) for c in range(10)])
        arithmetic = []
        for src, dst in ((7, 5), (5, 7), (0, 3), (3, 0), (9, 7)):  # sneaker<->sandal, T-shirt<->dress, boot->sneaker
            picks = rng.choice(np.flatnonzero(code_labels.numpy() == src), size=5, replace=False)
            base = z[picks]
            moved = glo.project(base - means[src] + means[dst])
            arithmetic.append(np.concatenate([decode(base), decode(moved)]))
        arith = np.concatenate(arithmetic)
    return {
        "glo: interpolations between learned codes": save_png(image_grid(interp, columns=10, scale=2), out_dir / "glo-interpolation.png"),
        "glo: code - mean(class A) + mean(class B) (left: codes, right: moved)":
            save_png(image_grid(arith, columns=10, scale=2), out_dir / "glo-arithmetic.png"),
    }
