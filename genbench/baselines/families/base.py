"""What a baseline family is: its networks, its losses and its options.

The shared loop (genbench/baselines/train.py) calls, in order::

    family = Family.build(config, device)          # networks + optimisers, seeded
    streams = family.prepare(train, eval)          # named training streams, e.g. {"train": ...}
    for step in 1..steps:
        losses = family.train_step(batches, step)  # batches: {stream name: Batch}
    family.finalize(streams)                       # fits that sampling needs (e.g. GLO's Gaussian)
    metrics = family.evaluate(eval)                # numbers on the held-out split, e.g. flow bits/dim

Sampling is split in two so that it does not depend on the batch size: ``draw`` makes
all the randomness for n samples up front from one CPU ``torch.Generator``; ``decode``
maps any slice of those latents to images. ``sample`` = ``decode(draw(...))``.
"""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from genbench.errors import ConfigError, InputError
from genbench.registry import Registry

from ..data import Arrays, Batch

FAMILIES: Registry[type[Family]] = Registry("baseline family", flag="--family")

NUM_CLASSES = 10
IMAGE_SIZE = 28

Latents = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Options:
    """Base of each family's options; ``validate(where)`` raises ConfigError on bad values."""

    def validate(self, where: str) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if name.endswith(("_dim", "_ch")) and value < 1:
                raise ConfigError(f"{where}: model.{name} must be >= 1, got {value}")
            if (name == "lr" or name.startswith("lr_")) and not value > 0:
                raise ConfigError(f"{where}: model.{name} (a learning rate) must be > 0, got {value}")
            if name.startswith("beta") and not 0.0 <= value < 1.0:
                raise ConfigError(f"{where}: model.{name} (an Adam beta) must be in [0, 1), got {value}")


class Family(ABC):
    """One baseline family. Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]
    options_cls: ClassVar[type[Options]]
    paper: ClassVar[str] = ""
    conditional: ClassVar[bool] = False  # sample() takes class labels
    amp_safe: ClassVar[bool] = True  # may train under bfloat16 autocast
    output_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)  # range of decode()'s float images
    image_size: ClassVar[tuple[int, int]] = (28, 28)  # (H, W) of decode()'s images
    ema_net: ClassVar[str | None] = None  # the net that train.ema_decay averages (None: the family has no EMA)
    # The nets that sample() needs, when fewer than all: a bundled checkpoint may hold only these
    # (``sampling_state``), to keep package data small; such a model samples but does not train.
    sampling_nets: ClassVar[tuple[str, ...]] = ()
    # Set by genbench.baselines.api.load_checkpoint on a loaded family (absent on a freshly built one).
    checkpoint_path: Path
    checkpoint_sha256: str
    info: dict[str, Any]

    def __init__(self, options: Options, seed: int, device: torch.device) -> None:
        self.options = options
        self.seed = seed
        self.run_name = self.name  # the baseline's name: the family's, or a config variant's (set at load)
        self.device = torch.device(device)
        self.amp_dtype: torch.dtype | None = None
        # Noise drawn during training comes from this generator, never from global state.
        self.noise = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def channels(self) -> int:
        """Image channels of ``decode``'s output: ``options.channels`` where the family has it, else 1 (gray)."""
        return int(getattr(self.options, "channels", 1))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, config: Any, device: torch.device | str = "cpu") -> Family:
        """Networks and optimisers for ``config`` (a RunConfig), initialised from its seed."""
        torch.manual_seed(config.seed)  # weight initialisation uses the global generator
        family = cls(config.model, config.seed, torch.device(device))
        family.setup()
        for net in family.nets.values():
            net.to(family.device)
        family.make_optimizers()
        return family

    @abstractmethod
    def setup(self) -> None:
        """Create ``self.nets`` (name -> module)."""

    def make_optimizers(self) -> None:
        """Create ``self.optimizers``; called after the nets moved to the device."""

    # -- training -------------------------------------------------------------------------
    def prepare(self, train: Arrays, held_out: Arrays | None) -> dict[str, Arrays]:
        """Named training streams drawn from the training arrays (default: all of it).

        ``held_out`` is the evaluation split (or None); families that sample from held-out
        data (CycleGAN translates held-out source images) keep what they need of it here.
        """
        return {"train": train}

    batches_per_step: int = 1  # the loop hands train_step this many batches' worth per stream

    @abstractmethod
    def train_step(self, batches: dict[str, Batch], step: int) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached scalar losses by name."""

    def finalize(self, streams: dict[str, Arrays]) -> None:
        """After training (and before each intermediate checkpoint): fits that sampling needs."""

    def evaluate(self, eval_arrays: Arrays | None) -> dict[str, float]:
        """End-of-training metrics on the evaluation split (name -> float), run under no_grad."""
        return {}

    def amp(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes (no-op unless the loop enabled mixed precision)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_mode(self, training: bool) -> None:
        for net in self.nets.values():
            net.train(training)

    # -- sampling ---------------------------------------------------------------------------
    @abstractmethod
    def draw(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        """All randomness for ``n`` samples (CPU tensors with leading dimension n)."""

    @abstractmethod
    def decode(self, latents: Latents) -> torch.Tensor:
        """Images float [B, C, 28, 28] (C = ``channels``) in ``output_range`` for a slice of ``draw``'s latents."""

    def distinct_samples(self) -> int | None:
        """The most distinct images the model can make (a translation model: its source images), None: no limit."""
        return None

    def repeated_samples(self, latents: Latents) -> int:
        """How many of the drawn samples repeat an earlier one (same input, so the same image)."""
        return 0

    def sample_labels(self, latents: Latents) -> torch.Tensor | None:
        """Class label of each drawn sample (conditional and translation models), else None."""
        return latents.get("labels")

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images float [n, C, 28, 28] (C = ``channels``) in ``output_range``, in one batch."""
        self.train_mode(False)
        latents = {k: v.to(self.device) for k, v in self.draw(n, generator, labels).items()}
        return self.decode(latents)

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything sampling needs, as plain tensors and dicts: the nets' state dicts + extras."""
        return {"nets": {name: net.state_dict() for name, net in self.nets.items()}, "extra": self.extra_state()}

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, state: dict[str, Any], where: str) -> None:
        """Load ``state()``'s output; InputError when networks or shapes do not match."""
        nets = state.get("nets")
        sampling_only = bool(self.sampling_nets) and isinstance(nets, dict) and set(nets) == set(self.sampling_nets)
        if not isinstance(nets, dict) or (set(nets) != set(self.nets) and not sampling_only):
            got = sorted(nets) if isinstance(nets, dict) else type(nets).__name__
            also = f" (or only {sorted(self.sampling_nets)}, to sample)" if self.sampling_nets else ""
            raise InputError(f"{where}: {self.name} checkpoint should hold networks {sorted(self.nets)}{also}, got {got}")
        if sampling_only:
            self.nets = {name: self.nets[name] for name in self.sampling_nets}
            self.optimizers = {}
        for name, net in self.nets.items():
            try:
                net.load_state_dict(nets[name])
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[:3]
                raise InputError(f"{where}: network {name!r} does not match the {self.name} options: {' '.join(first)}") from None
        self.load_extra_state(state.get("extra", {}), where)
        self.train_mode(False)

    @classmethod
    def sampling_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """``state()``'s output cut down to the nets that sampling needs (all of them unless ``sampling_nets``)."""
        if not cls.sampling_nets:
            return state
        return {**state, "nets": {name: state["nets"][name] for name in cls.sampling_nets}}

    def load_extra_state(self, extra: dict[str, torch.Tensor], where: str) -> None:
        return None


def check_labels(labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """Validate user class labels: int [n] in [0, 10)."""
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.shape != (n,):
        raise InputError(f"labels: expected {n} integer class labels, got {labels.dtype} {tuple(labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise InputError(f"labels: expected class labels in [0, {NUM_CLASSES}), got {int(labels.min())}..{int(labels.max())}")
    return labels.to(torch.int64).cpu()


def iter_params(nets: dict[str, nn.Module], *names: str) -> Iterator[nn.Parameter]:
    for name in names:
        yield from nets[name].parameters()


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)
