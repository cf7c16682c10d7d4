"""Public API of the bundled baselines: list, train, load, sample.

    from genbench.baselines.api import FAMILIES, load_checkpoint, sample_images, GeneratorSource, train
    model = load_checkpoint("dcgan")                    # bundled, sha256-checked
    images = sample_images(model, 1000, seed=0)         # uint8 [1000, 28, 28]
    source = GeneratorSource("cgan", n=10000, seed=0)   # an ImageSource of uint8 RGB [3, 28, 28]
    colour = sample_images("dcgan-stacked", 1000, seed=0)  # uint8 [1000, 28, 28, 3] (Stacked Fashion-MNIST)

Names: a family ("dcgan") or a config variant of one ("dcgan-stacked": configs/dcgan-stacked.toml,
family dcgan, trained on stacked-fashion-mnist:train). Gray models give [n, 28, 28], colour models
(``model.channels = 3``) [n, 28, 28, 3]; ``GeneratorSource`` always reads [3, 28, 28] (gray repeated).

Determinism: every sample's randomness is drawn up front, for all n samples, from one CPU
``torch.Generator`` seeded with ``seed``; batches only slice those latents, so the images do
not depend on ``batch_size`` (the networks have no cross-sample operations at inference).

Quantisation (the same as ``torchvision.utils.save_image``, i.e. what a saved PNG holds):
the network output is clamped to the family's output range [lo, hi], mapped to [0, 1] by
(x - lo) / (hi - lo), then ``uint8(floor(255 * v + 0.5))`` (round half up), in float32.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench.errors import ConfigError, InputError
from genbench.sources.base import ImageSource

from .checkpoint import CHECKPOINT_DIR, bundled_checkpoint, read_checkpoint, read_manifest, sha256_file
from .config import default_config_path, resolve
from .families import FAMILIES
from .families.base import Family
from .train import baseline_names, family_of, load_run_config, train

__all__ = [
    "FAMILIES", "Family", "GeneratorSource", "list_families", "load_checkpoint", "quantize", "repeated_samples",
    "repeats_refusal", "sample_images", "sample_images_and_labels", "train",
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
    (loads genbench/baselines/checkpoints/NAME.pt after checking its sha256 against manifest.json;
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


def quantize(images: torch.Tensor, output_range: tuple[float, float]) -> np.ndarray:
    """float [B, C, H, W] in ``output_range`` -> uint8 exactly as a saved PNG would hold it.

    C = 1 gives gray [B, H, W]; C = 3 gives channels-last RGB [B, H, W, 3] (as PIL and .npz files hold it).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"quantize: expected float images [B, 1 or 3, H, W], got {tuple(images.shape)}")
    lo, hi = output_range
    x = images.detach().float().clamp(lo, hi).sub(lo).div(hi - lo)
    x = x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return (x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)).cpu().numpy()


def _image_shape(family: Family) -> tuple[int, ...]:
    """One sample as ``sample_images`` returns it: (28, 28) gray, (28, 28, C) colour."""
    return (28, 28) if family.channels == 1 else (28, 28, family.channels)


def _check_request(family: Family, n: int, batch_size: int, labels: Any) -> None:
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n (--n) must be a non-negative integer, got {n!r}")
    if batch_size < 1:
        raise InputError(f"batch_size (--batch-size) must be >= 1, got {batch_size}")
    if labels is not None and not family.conditional:
        raise InputError(f"labels (--labels) given, but {family.name} is not class-conditional; only cgan takes labels")


def _decode_range(family: Family, latents: dict[str, torch.Tensor], start: int, stop: int) -> np.ndarray:
    part = {k: v[start:stop].to(family.device) for k, v in latents.items()}
    with torch.no_grad():
        return quantize(family.decode(part), family.output_range)


def repeated_samples(model: Family | str | Path, n: int, seed: int, labels: Any = None) -> int:
    """How many of the ``n`` samples ``sample_images(model, n, seed, labels=labels)`` draws repeat an earlier one
    (a translation model asked for more than its held-out sources); only the latents are drawn."""
    family = _as_family(model)
    _check_request(family, n, 1, labels)
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
    _check_request(family, n, batch_size, labels)
    family.train_mode(False)
    latents = family.draw(int(n), torch.Generator().manual_seed(int(seed)), labels)
    repeated = family.repeated_samples(latents)
    if repeated and not allow_repeats:  # checked on the latents, before any image is decoded
        raise ConfigError(repeats_refusal(family, int(n), repeated))
    out = np.empty((n, *_image_shape(family)), dtype=np.uint8)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = _decode_range(family, latents, start, stop)
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


class GeneratorSource(ImageSource):
    """An ImageSource of a baseline's samples: uint8 RGB [3, 28, 28], identical to ``sample_images``.

    Gray models' images are repeated into the three channels; colour models' [28, 28, 3] samples are
    read channels-first, as every ImageSource reads (``read_batch(...).transpose(0, 2, 3, 1)`` gives
    ``sample_images``'s array back).

    Latents for all ``n`` images are drawn at construction; images are generated lazily, one
    batch of ``batch_size`` at a time (the last batch is cached for sequential ``read``).
    ``label(i)`` is the class asked of a conditional model, CycleGAN's target class, else None.
    """

    kind = "generator"

    def __init__(
        self, model: Family | str | Path, n: int, seed: int = 0, batch_size: int = 256, labels: Any = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.family = _as_family(model, device)
        _check_request(self.family, n, batch_size, labels)
        self.family.train_mode(False)
        self.n, self.seed, self.batch_size = int(n), int(seed), int(batch_size)
        self._latents = self.family.draw(self.n, torch.Generator().manual_seed(self.seed), labels)
        drawn = self.family.sample_labels(self._latents)
        self._labels = drawn.numpy().astype(np.int64) if drawn is not None else None
        path = getattr(self.family, "checkpoint_path", None)
        self.name = self.family.run_name
        self.location = str(path) if path is not None else f"<in-memory {self.name}>"
        self._block: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"GeneratorSource: range {start}:{stop} outside 0:{self.n}")

    def read_batch(self, start: int, stop: int) -> np.ndarray:
        """uint8 [stop - start, 3, 28, 28]."""
        self._check_range(start, stop)
        parts = [_decode_range(self.family, self._latents, s, min(s + self.batch_size, stop))
                 for s in range(start, stop, self.batch_size)]
        images = np.concatenate(parts) if parts else np.zeros((0, *_image_shape(self.family)), dtype=np.uint8)
        if images.ndim == 3:  # gray [B, H, W] -> [B, 3, H, W]
            return np.repeat(images[:, None], 3, axis=1)
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def read(self, index: int) -> np.ndarray:
        self._check_range(index, index + 1)
        start = index - index % self.batch_size
        if self._block is None or self._block[0] != start:
            self._block = (start, self.read_batch(start, min(start + self.batch_size, self.n)))
        return self._block[1][index - start]

    def key(self, index: int) -> str:
        return f"{self.name}-seed{self.seed}-{index:06d}"

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    def repeats(self) -> int:
        return self.family.repeated_samples(self._latents)

    def label(self, index: int) -> int | None:
        return None if self._labels is None else int(self._labels[index])

    def labels(self) -> np.ndarray | None:
        return None if self._labels is None else self._labels.copy()

    def fingerprint(self) -> str:
        """Hash of what the images are made of: the weights and extra state as they are in memory now (not
        the file they came from, so a model changed after loading never hits a stale cache entry), the
        options and every drawn latent (which covers n, seed and labels)."""
        h = hashlib.sha256(f"genbench-generator-v2|{type(self.family).__name__}|{self.family.options!r}|".encode())
        state = self.family.state()
        tensors = [(f"nets.{net}.{key}", value) for net, sd in sorted(state["nets"].items()) for key, value in sd.items()]
        tensors += [(f"extra.{key}", value) for key, value in sorted(state["extra"].items())]
        tensors += [(f"latent.{key}", value) for key, value in sorted(self._latents.items())]
        for name, value in tensors:
            if isinstance(value, torch.Tensor):
                h.update(name.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()
