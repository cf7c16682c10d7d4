"""Public API of the bundled baselines: list, train, load, sample.

    from genbench.baselines.api import FAMILIES, load_checkpoint, sample_images, train
    from genbench.sources.models import GeneratorSource
    model = load_checkpoint("dcgan")                    # bundled, sha256-checked
    images = sample_images(model, 1000, seed=0)         # uint8 [1000, 28, 28]
    source = GeneratorSource(load_checkpoint("cgan"), n=10000, seed=0)  # an ImageSource of uint8 RGB [3, 28, 28]
    colour = sample_images("dcgan-stacked", 1000, seed=0)  # uint8 [1000, 28, 28, 3] (Stacked Fashion-MNIST)

Names: a family ("dcgan") or a config variant of one ("dcgan-stacked": configs/dcgan-stacked.toml,
family dcgan, trained on stacked-fashion-mnist:train). Gray models give [n, 28, 28], colour models
(``model.channels = 3``) [n, 28, 28, 3]; a ``GeneratorSource`` always reads [3, 28, 28] (gray repeated).

Determinism and quantisation are those of :mod:`genbench.sources.models` (every family is an
``ImageGenerator``): all randomness is drawn up front from one CPU ``torch.Generator`` seeded with
``seed``, so the images do not depend on ``batch_size``; the float output is quantised exactly as a
saved PNG holds it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench.errors import ConfigError, InputError
from genbench.sources.models import check_request, decode_range, sample_shape

from .checkpoint import CHECKPOINT_DIR, bundled_checkpoint, read_checkpoint, read_manifest, sha256_file
from .config import default_config_path, resolve
from .families import FAMILIES
from .families.base import Family
from .train import baseline_names, family_of, load_run_config, train

__all__ = [
    "FAMILIES", "Family", "list_families", "load_checkpoint", "repeated_samples", "repeats_refusal", "sample_images",
    "sample_images_and_labels", "train",
]


def list_families(dataset: str | None = None) -> list[dict[str, Any]]:
    """One row per baseline name, sorted: the families and their config variants such as dcgan-stacked.

    Keys: name, family, paper, conditional, dataset (training data set: the bundled checkpoint's,
    else the config's), channels (1 gray, 3 colour), config path, checkpoint path (or None), steps
    and wall_time_s of the bundled checkpoint. ``dataset``: only the baselines trained on it (the
    Fashion-MNIST leaderboard asks for "fashion-mnist:train").
    """
    bundled = read_manifest()["checkpoints"]
    rows = []
    for name in baseline_names():
        family = family_of(name)
        cls = FAMILIES.get(family)
        entry = bundled.get(name)
        if entry is not None:
            data, model = entry["config"]["data"], entry["config"]["model"]
            trained_on, channels = data["dataset"], int(model.get("channels", 1))
        else:
            run = load_run_config(name)
            trained_on, channels = run.data.dataset, int(getattr(run.model, "channels", 1))
        if dataset is not None and trained_on != dataset:
            continue
        rows.append({
            "name": name,
            "family": family,
            "paper": cls.paper,
            "conditional": cls.conditional,
            "dataset": trained_on,
            "channels": channels,
            "config": str(default_config_path(name)),
            "checkpoint": str(CHECKPOINT_DIR / entry["file"]) if entry else None,
            "steps": entry["steps"] if entry else None,
            "wall_time_s": entry["wall_time_s"] if entry else None,
        })
    return rows


def load_checkpoint(name_or_path: str | Path, device: str | torch.device = "cpu") -> Family:
    """A trained family ready to sample (networks in eval mode on ``device``).

    ``name_or_path``: a baseline name, i.e. a family or a config variant such as "dcgan-stacked"
    (loads baselines/checkpoints/NAME.pt after checking its sha256 against manifest.json;
    WeightsError when missing or altered), or a checkpoint path.
    Raises InputError for a missing, truncated or foreign file, a newer format version, an
    unknown family, or networks that do not match the stored options. The loaded object carries
    ``checkpoint_path``, ``checkpoint_sha256``, ``info`` (the checkpoint minus its tensors) and
    ``run_name`` (the checkpoint's baseline name, e.g. "dcgan-stacked"; its family for older files).
    """
    if (isinstance(name_or_path, str) and not Path(name_or_path).exists()
            and (name_or_path in baseline_names() or name_or_path in read_manifest()["checkpoints"])):
        path = bundled_checkpoint(name_or_path)
    else:
        path = Path(name_or_path)
    ckpt = read_checkpoint(path)
    name = ckpt["family"]
    if not isinstance(name, str) or name not in FAMILIES:
        raise InputError(f"{path}: checkpoint of unknown family {name!r}; expected one of: {', '.join(FAMILIES.names())}")
    cls = FAMILIES.get(name)
    try:
        run = resolve(ckpt["config"], name, cls.options_cls, str(path))
    except ConfigError as exc:
        raise InputError(f"{path}: its stored config does not fit this genbench: {exc}") from None
    with torch.random.fork_rng(devices=[]):  # building seeds the global generator; keep the caller's state
        family = cls.build(run, device)
    if not isinstance(ckpt["state"], dict):
        raise InputError(f"{path}: checkpoint 'state' should be a dict, got {type(ckpt['state']).__name__}")
    family.load_state(ckpt["state"], str(path))
    family.checkpoint_path = path
    family.checkpoint_sha256 = sha256_file(path)
    family.info = {k: v for k, v in ckpt.items() if k != "state"}
    run_name = ckpt.get("name", name)
    family.run_name = run_name if isinstance(run_name, str) and run_name else name
    return family


def _as_family(model: Family | str | Path, device: str | torch.device = "cpu") -> Family:
    return model if isinstance(model, Family) else load_checkpoint(model, device)


def repeated_samples(model: Family | str | Path, n: int, seed: int, labels: Any = None) -> int:
    """How many of the ``n`` samples ``sample_images(model, n, seed, labels=labels)`` draws repeat an earlier one
    (a translation model asked for more than its held-out sources); only the latents are drawn."""
    family = _as_family(model)
    check_request(family, n, 1, labels)
    return family.repeated_samples(family.draw(int(n), torch.Generator().manual_seed(int(seed)), labels))


def repeats_refusal(family: Family, n: int, repeated: int) -> str:
    """Why ``n`` samples of ``family`` are refused when ``repeated`` of them would repeat earlier ones."""
    distinct = family.distinct_samples()
    limit = distinct if distinct is not None else n - repeated
    what = (f"it translates {distinct} distinct held-out source images" if distinct is not None
            else f"its draw for this seed gives {n - repeated} distinct samples")
    return (f"{family.run_name}: -n {n} asks for more samples than the model makes distinct: {what}, so {repeated} "
            f"of the {n} samples would repeat earlier ones (repeats bias FD and KID and hide diversity); "
            f"ask for -n {limit} or less, or pass --allow-repeats (Python: allow_repeats=True) to write them anyway")


def sample_images_and_labels(
    model: Family | str | Path, n: int, seed: int, batch_size: int = 256, labels: Any = None,
    allow_repeats: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 [n, 28, 28] or [n, 28, 28, 3], int64 [n] class labels or None). See ``sample_images``."""
    family = _as_family(model)
    check_request(family, n, batch_size, labels)
    family.train_mode(False)
    latents = family.draw(int(n), torch.Generator().manual_seed(int(seed)), labels)
    repeated = family.repeated_samples(latents)
    if repeated and not allow_repeats:  # checked on the latents, before any image is decoded
        raise ConfigError(repeats_refusal(family, int(n), repeated))
    out = np.empty((n, *sample_shape(family)), dtype=np.uint8)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = decode_range(family, latents, start, stop)
    drawn = family.sample_labels(latents)
    return out, (drawn.numpy().astype(np.int64) if drawn is not None else None)


def sample_images(
    model: Family | str | Path, n: int, seed: int, batch_size: int = 256, labels: Any = None,
    allow_repeats: bool = False,
) -> np.ndarray:
    """``n`` samples as uint8 [n, 28, 28] (gray models) or [n, 28, 28, 3] (colour models such as
    dcgan-stacked), deterministic in ``seed`` and independent of ``batch_size``.

    model: a loaded family, a family name (bundled checkpoint) or a checkpoint path. labels: for
    cgan, int [n] classes in 0..9 (default: drawn uniformly from the seed, after the latents);
    InputError for other families. CycleGAN's samples translate its held-out source-domain test
    images (class domain_a) in a seeded order, each once: more than it has (``distinct_samples()``) would
    repeat some, which is an InputError naming that number unless ``allow_repeats`` is True.
    """
    return sample_images_and_labels(model, n, seed, batch_size, labels, allow_repeats)[0]
