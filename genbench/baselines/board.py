"""The Fashion-MNIST board: the bundled baselines' rows, the reference rows, their reference set and pictures.

What is specific to Fashion-MNIST lives here, with the baselines; :mod:`genbench.leaderboard` scores and
renders any board's rows. Every row is an image source of ``n`` samples (seeded). Metrics, all with the
bundled ``fmnist-cnn`` network:

- ``fd_fmnist``: Frechet distance to the bundled statistics of the full training split (60k);
- ``is_fmnist``: classifier score of the samples (10 splits);
- ``kid_fmnist``, ``precision``, ``recall``, ``density``, ``coverage``: against the features of a
  seeded 10k subset of the training split (the same subset for every row).

CycleGAN translates held-out sneakers into sandals (its classes are in its config): its row
holds each held-out source translated once (n = the number of held-out sources, never a repeat),
is scored against the target class of the held-out split, and reports the cycle reconstruction
error. The flow row reports bits per dimension on the test split. Every baseline row carries its
training budget (steps, device, wall time). Reference rows show what the metrics can and cannot
see: the real test split (the best a model can hope for), copies of training images, lightly
transformed copies, a mode-collapsed generator (the conditional GAN asked for one class) and noise.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ExtractOptions
from ..errors import InputError
from ..evaluate import Evaluated, extract_source
from ..features.base import FeatureExtractor
from ..leaderboard import Board, MetricPlan, RowSpec
from ..results.pictures import image_grid, save_png
from ..sources.base import ImageSource
from ..sources.datasets import open_dataset
from ..sources.subset import SubsetSource
from ..sources.transforms import TransformedSource
from ..stats.compatibility import same_identity
from ..stats.lookup import lookup_reference
from ..stats.reference import ManifestEntry

if TYPE_CHECKING:
    from ..sources.models import ImageGenerator

EXTRACTOR = "fmnist-cnn"
METRIC_KINDS = ("fd", "is", "kid", "precision", "recall", "density", "coverage")
REFERENCE_SUBSET = 10_000
LIGHT_TRANSFORMS = [("hflip", 0.5), ("shift", 1.0), ("gaussian-noise", 4.0)]
FMNIST_PLAN = MetricPlan(EXTRACTOR, METRIC_KINDS)
COLUMNS = ("fd_fmnist", "is_fmnist", "kid_fmnist", "precision", "recall", "density", "coverage", "fid", "is")
WITH_STD = ("is_fmnist", "kid_fmnist", "is")  # columns whose std also goes into the CSV


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
        from ..sources.models import GeneratorSource
        from .api import load_checkpoint

        return GeneratorSource(load_checkpoint("cgan"), n, seed=seed, labels=np.zeros(n, dtype=np.int64))

    return [
        RowSpec("real test split", "reference", test_split),
        RowSpec("train copies", "reference", copies),
        RowSpec("train copies, flip/shift/noise", "reference", light),
        RowSpec("mode collapse (cgan, class 0 only)", "reference", collapsed),
        RowSpec("uniform noise", "reference", lambda n, seed: NoiseSource(n, seed)),
    ]


def baseline_row_specs(families: list[str] | None) -> list[RowSpec]:
    from .api import list_families, load_checkpoint
    from .checkpoint import read_manifest

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


def generator_row_spec(name: str, model: Any, extra: dict | None = None) -> RowSpec:
    """A baseline row for a loaded model: n and the reference follow the model (a translation model: each of
    its held-out sources once, against the held-out target class)."""
    from ..sources.models import GeneratorSource

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


# ----------------------------------------------------------------------------- the reference set


def _bundled_statistics(extractor: FeatureExtractor) -> ManifestEntry | None:
    """The bundled training-split statistics built with exactly this extractor, if any."""
    identity = extractor.identity().to_dict()
    entry = lookup_reference("fashion-mnist:train", str(identity["extractor"]), str(identity["preprocessing"]))
    if entry is None or not same_identity(entry.load().meta, identity):  # every identity field, by the one policy
        return None
    return entry


def reference_for(extractor: FeatureExtractor, xo: ExtractOptions, seed: int, data_dir: str | None,
                  target: tuple[str, int] | None, reference_n: int = REFERENCE_SUBSET) -> Evaluated:
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


def target_name(target: tuple[str, int] | None) -> str:
    return "fashion-mnist:train" if target is None else f"{target[0]} class {target[1]}"


def markdown_notes(provenance: dict) -> list[str]:
    """The lines under leaderboard.md's title: extractor, sample count, what each metric is against."""
    lines = [
        (f"Extractor `{EXTRACTOR}` (weights sha256 `{provenance['extractor']['weights_sha256'][:12]}…`), "
         f"n = {provenance['n']} samples per row, seed {provenance['seed']}, genbench {provenance['genbench_version']}."),
        ("fd_fmnist is against the full training split's statistics; KID and precision/recall/density/coverage "
         f"against a seeded {provenance.get('reference_n', REFERENCE_SUBSET)} image subset of it. "
         "These are domain-network numbers, not FID/IS."),
    ]
    inception = next((e for e in provenance.get("extractors", []) if e["extractor"] == "inception-v3"), None)
    if inception is not None:
        lines.append(f"fid and is: Inception-v3 (weights sha256 `{inception['weights_sha256'][:12]}…`, "
                     f"{inception['preprocessing']}); fid against the bundled training statistics built with these "
                     "weights when present, else the same image subset.")
    return lines


def _load_generator(path: str) -> ImageGenerator:
    """A baseline checkpoint file as a model to sample (``genbench leaderboard --add NAME=FILE.pt``)."""
    from .api import load_checkpoint

    return load_checkpoint(path)


BOARD = Board(
    title="Fashion-MNIST leaderboard",
    plan=FMNIST_PLAN,
    reference=reference_for,
    reference_name=target_name,
    columns=COLUMNS,
    with_std=WITH_STD,
    rank_by="fd_fmnist",
    notes=markdown_notes,
    reference_n=REFERENCE_SUBSET,
    load_generator=_load_generator,
)


# ----------------------------------------------------------------------------- model pictures


def conditional_grid(out_dir: Path, seed: int) -> dict[str, Path]:
    """cgan samples by class: one row per class."""
    from .api import sample_images

    labels = np.repeat(np.arange(10), 10)
    images = sample_images("cgan", len(labels), seed=seed, labels=labels)
    classes = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    grid = image_grid(images, columns=10, scale=2, row_labels=classes)
    return {"cgan: samples by class": save_png(grid, out_dir / "cgan-by-class.png")}


def glo_pictures(out_dir: Path, seed: int, data_dir: str | None) -> dict[str, Path]:
    """GLO: interpolations between learned codes, and class-mean latent arithmetic."""
    import torch

    from ..sources.datasets import load_dataset_arrays
    from ..sources.models import quantize
    from .api import load_checkpoint
    from .families.glo import GLO, Codes

    glo = load_checkpoint("glo")
    assert isinstance(glo, GLO)  # the bundled "glo" checkpoint is of the GLO family
    codes = glo.nets["codes"]
    assert isinstance(codes, Codes)
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
