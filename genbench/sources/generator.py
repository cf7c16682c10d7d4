"""A Python callable as an image source: ``py:MODULE:FUNCTION``, ``py:FILE.py:FUNCTION`` or a function object.

The samples go from the callable to the extractor batch by batch, with no file in between (no PNG
quantisation, no JPEG). Two forms, told apart by the function's parameters:

- ``fn(n, seed)``: all ``n`` images in one call (the form the leaderboard's ``--add`` has always used; memory
  grows with ``n``);
- ``fn(n, seed, start)`` (a parameter named ``start``): the streamed form. It returns images
  ``start .. start + n - 1`` of the sample stream of ``seed``; genbench calls it once per block of
  ``batch_size`` images (``--generator-batch-size``), in order. The images must depend on (seed, index) alone,
  not on how the stream is cut; seeding a generator with ``(seed, start)`` per block meets that for one block
  size, and the block size is part of the cache key.

Either form may take a keyword ``checkpoint``: a spec ``py:gen.py:sample@runs/ckpt-1000.pt`` passes
``checkpoint="runs/ckpt-1000.pt"`` (how a sweep scores one generator at many checkpoints).

A call returns images as a numpy array or torch tensor ([n, H, W], [n, H, W, C] or [n, C, H, W]; C = 1, 3 or 4),
or ``(images, labels)``, or ``{"images": ..., "labels": ...}`` with integer class labels [n]. uint8 images are
taken as they are; float images must lie in ``value_range`` (default (0, 1); ``--value-range -1,1`` for a tanh
output), mapped linearly to [0, 1] and rounded as ``round(x * 255)``.

The cache key (:meth:`CallableSource.fingerprint`) covers the file's sha256 (a module's file for
``py:MODULE:FUNCTION``), the function's name, the form, ``n``, the seed, the block size, the value range
and the checkpoint file's fingerprint. What else the function reads (another file it opens itself) is not
covered: pass it as the checkpoint, or run with ``--no-cache``. A function object passed through the
Python API has no file to hash and is never cached.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from .base import ImageSource, SourceInfo

#: images per call of a streamed generator unless --generator-batch-size says otherwise
DEFAULT_GENERATOR_BATCH = 256


@dataclass(frozen=True)
class GeneratorOptions:
    """How a callable is asked for samples: ``num_samples`` images (required), ``seed``, ``batch_size`` images per
    call of the streamed form, ``value_range`` of float output."""

    num_samples: int | None = None
    seed: int = 0
    batch_size: int = DEFAULT_GENERATOR_BATCH
    value_range: tuple[float, float] = (0.0, 1.0)


def generator_options(options: Any, seed: int | None = None) -> GeneratorOptions:
    """The GeneratorOptions of ExtractOptions ``options`` (its ``num_samples``, ``generator_seed``,
    ``generator_batch_size``, ``value_range``); ``seed`` (the run's --seed) is used where no generator seed is given."""
    chosen = options.generator_seed if options.generator_seed is not None else (seed if seed is not None else 0)
    return GeneratorOptions(options.num_samples, int(chosen), int(options.generator_batch_size),
                            parse_value_range(options.value_range))


def parse_value_range(text: str | tuple[float, float] | None, flag: str = "--value-range") -> tuple[float, float]:
    """``"LO,HI"`` (or a pair) -> (LO, HI) with LO < HI; None -> (0, 1). ConfigError naming ``flag`` otherwise."""
    if text is None:
        return (0.0, 1.0)
    try:
        lo, hi = (float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {text!r}: expected LO,HI, e.g. -1,1") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"{flag} {text!r}: expected finite LO < HI")
    return (lo, hi)


@dataclass(frozen=True)
class CallableIdentity:
    """What names a callable: its spec, the sha256 of the file it came from (None: not from a file), its name."""

    spec: str
    file: str | None
    file_sha256: str | None
    function: str
    checkpoint: str | None = None
    checkpoint_fingerprint: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"spec": self.spec, "file": self.file, "file_sha256": self.file_sha256, "function": self.function}
        if self.checkpoint is not None:
            out.update(checkpoint=self.checkpoint, checkpoint_fingerprint=self.checkpoint_fingerprint)
        return out


def is_callable_spec(spec: Any) -> bool:
    return isinstance(spec, str) and spec.startswith("py:")


def _sha256(path: Path) -> str:
    from ..util.files import sha256_file

    return sha256_file(path)


def load_callable(spec: str, what: str = "") -> tuple[Callable[..., Any], CallableIdentity]:
    """The function a ``py:MODULE:FUNCTION[@CHECKPOINT]`` / ``py:FILE.py:FUNCTION[@CHECKPOINT]`` spec names, and its
    identity. ConfigError for a malformed spec or a module that does not import, InputError for a missing file."""
    label = what or spec
    body, _, checkpoint = spec[3:].partition("@")
    target, _, func_name = body.rpartition(":")
    if not spec.startswith("py:") or not target or not func_name:
        raise ConfigError(f"{label}: expected py:MODULE:FUNCTION or py:FILE.py:FUNCTION (optionally @CHECKPOINT)")
    file: Path | None = None
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise InputError(f"{label}: Python file {target} does not exist")
            digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
            module_spec = importlib.util.spec_from_file_location(f"genbench_callable_{file.stem}_{digest}", file)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"{label}: {target} cannot be loaded as a Python module")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            cwd = os.getcwd()
            added = cwd not in sys.path
            if added:
                sys.path.insert(0, cwd)  # as `python -m` would: modules of the folder the command runs in
            try:
                module = importlib.import_module(target)
            finally:
                if added and cwd in sys.path:
                    sys.path.remove(cwd)
            where = getattr(module, "__file__", None)
            file = Path(where) if where else None
    except ImportError as exc:
        raise ConfigError(f"{label}: cannot import {target!r}: {exc}") from exc
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ConfigError(f"{label}: {target} has no callable {func_name!r}")
    ckpt_fp = None
    if checkpoint:
        ckpt = Path(checkpoint)
        if not ckpt.exists():
            raise InputError(f"{label}: checkpoint {checkpoint} does not exist")
        from .hashing import file_fingerprint

        ckpt_fp = file_fingerprint(ckpt) if ckpt.is_file() else _folder_stamp(ckpt)
    identity = CallableIdentity(spec, None if file is None else str(file),
                                None if file is None or not file.is_file() else _sha256(file), func_name,
                                checkpoint or None, ckpt_fp)
    return fn, identity


def _folder_stamp(folder: Path) -> str:
    """A checkpoint that is a folder: sha256 over (relative name, size, mtime_ns) of its files."""
    h = hashlib.sha256(b"genbench-checkpoint-folder-v1\n")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return "folder:" + h.hexdigest()


def is_streamed(fn: Callable[..., Any]) -> bool:
    """True for the streamed form: a parameter named ``start``."""
    try:
        return "start" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: the plain form
        return False


def _takes_checkpoint(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "checkpoint" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class GeneratorInfo(SourceInfo):
    """SourceInfo plus what names the callable and its draws (recorded in provenance)."""

    def __init__(self, kind: str, location: str, n: int, extra: dict) -> None:
        super().__init__(kind, location, n)
        object.__setattr__(self, "extra", extra)

    def to_dict(self) -> dict:
        return {**super().to_dict(), **self.extra}  # type: ignore[attr-defined]  # set in __init__


class CallableSource(ImageSource):
    """``options.num_samples`` images from a callable (see the module docstring), uint8 [3, H, W] each.

    ``fn`` is a spec string (``py:...``) or a function. Construction makes the first call (the first block, or all
    images in the one-call form), so a wrong dtype, shape, count or range fails before any extraction.
    Raises ConfigError without ``num_samples``; InputError for what the function returns or raises.
    """

    kind = "callable"

    def __init__(self, fn: str | Callable[..., Any], options: GeneratorOptions, what: str = "") -> None:
        if options.num_samples is None:
            raise ConfigError(f"{what or fn}: a generator needs the number of images to draw: "
                              "--num-samples N (num_samples=N)")
        if isinstance(options.num_samples, bool) or not isinstance(options.num_samples, int) or options.num_samples < 1:
            raise ConfigError(f"num_samples (--num-samples) must be an integer >= 1, got {options.num_samples!r}")
        if not isinstance(options.batch_size, int) or options.batch_size < 1:
            raise ConfigError(f"generator_batch_size (--generator-batch-size) must be an integer >= 1, "
                              f"got {options.batch_size!r}")
        if isinstance(fn, str):
            self.fn, self.identity = load_callable(fn, what)
        elif callable(fn):
            name = getattr(fn, "__qualname__", type(fn).__name__)
            self.fn, self.identity = fn, CallableIdentity(f"<callable {name}>", None, None, name)
        else:
            raise InputError(f"{what or 'generator'}: expected a py: spec or a callable, got {type(fn).__name__}")
        if self.identity.checkpoint and not _takes_checkpoint(self.fn):
            raise ConfigError(f"{self.identity.spec}: @{self.identity.checkpoint} is passed as checkpoint=, but "
                              f"{self.identity.function}() has no parameter 'checkpoint'")
        self.options = options
        self.n, self.seed = int(options.num_samples), int(options.seed)
        self.streamed = is_streamed(self.fn)
        self.block = int(options.batch_size) if self.streamed else self.n
        self.lo, self.hi = parse_value_range(options.value_range)
        self.location = f"{self.identity.spec}(n={self.n}, seed={self.seed})"
        self._cached: tuple[int, np.ndarray, np.ndarray | None] | None = None
        images, labels = self._block(0)  # the first call: fails early, and is kept for the first batch
        self._has_labels = labels is not None
        self._shape = images.shape[1:]

    # ------------------------------------------------------------------------- calling

    def _call(self, count: int, start: int) -> Any:
        kwargs: dict[str, Any] = {}
        if self.identity.checkpoint:
            kwargs["checkpoint"] = self.identity.checkpoint
        call = (f"{self.identity.function}(n={count}, seed={self.seed}" + (f", start={start}" if self.streamed else "")
                + (f", checkpoint={self.identity.checkpoint!r}" if kwargs else "") + ")")
        try:
            out = self.fn(count, self.seed, start, **kwargs) if self.streamed else self.fn(count, self.seed, **kwargs)
        except Exception as exc:  # noqa: BLE001  the user's code: report it as theirs
            raise InputError(f"{self.identity.spec} raised {type(exc).__name__}: {exc} when called as {call}") from exc
        return out, call

    def _block(self, start: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Images (uint8 [B, 3, H, W]) and labels (int64 [B] or None) of the block starting at ``start``."""
        if self._cached is not None and self._cached[0] == start:
            return self._cached[1], self._cached[2]
        count = min(self.block, self.n - start)
        out, call = self._call(count, start)
        images, labels = _split(out, f"{self.identity.spec}, {call}")
        images = self._to_uint8(images, f"{self.identity.spec}, {call}")
        if len(images) != count:
            raise InputError(f"{self.identity.spec} returned {len(images)} images when called as {call}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (count,) or labels.dtype.kind not in "iu":
                raise InputError(f"{self.identity.spec}, {call}: labels must be integers [{count}], got "
                                 f"{labels.dtype} {labels.shape}")
            labels = labels.astype(np.int64)
        if self._cached is not None:
            first = self._cached[1]
            if images.shape[1:] != first.shape[1:] or (labels is None) != (self._cached[2] is None):
                raise InputError(f"{self.identity.spec}, {call}: images {images.shape[1:]} (labels: "
                                 f"{labels is not None}) differ from the first call's {first.shape[1:]}")
        self._cached = (start, images, labels)
        return images, labels

    def _to_uint8(self, images: Any, where: str) -> np.ndarray:
        from .convert import array_to_rgb_uint8_batch, infer_layout, to_numpy

        array = to_numpy(images, where)
        if array.dtype.kind == "f" and (self.lo, self.hi) != (0.0, 1.0):
            x = np.asarray(array, np.float64)
            bad = ~((x >= self.lo) & (x <= self.hi))
            if bad.any():
                finite = x[np.isfinite(x)]
                found = f"[{finite.min():.6g}, {finite.max():.6g}]" if finite.size else "no finite values"
                raise InputError(f"{where}: float images must lie in the declared --value-range "
                                 f"[{self.lo:g}, {self.hi:g}]; {int(bad.sum())} of {x.size} values are outside it "
                                 f"(finite range {found})")
            array = np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        return array_to_rgb_uint8_batch(array, where, infer_layout(array.shape, where, None))

    # ------------------------------------------------------------------------- ImageSource

    def __len__(self) -> int:
        return self.n

    def read_batch(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"{self.location}: range {start}:{stop} outside 0:{self.n}")
        parts = []
        at = start
        while at < stop:
            first = at - at % self.block
            images, _ = self._block(first)
            take = min(stop, first + len(images)) - at
            parts.append(images[at - first: at - first + take])
            at += take
        return np.concatenate(parts) if parts else np.zeros((0, 3, *self._shape[1:]), np.uint8)

    def read(self, index: int) -> np.ndarray:
        return self.read_batch(index, index + 1)[0]

    def key(self, index: int) -> str:
        return f"{self.identity.function}-seed{self.seed}-{index:06d}"

    @property
    def has_labels(self) -> bool:
        return self._has_labels

    def label(self, index: int) -> int | None:
        if not self._has_labels:
            return None
        first = index - index % self.block
        _, labels = self._block(first)
        assert labels is not None  # every block has labels when the first one had
        return int(labels[index - first])

    def labels(self) -> np.ndarray | None:
        if not self._has_labels:
            return None
        return np.concatenate([self._block(s)[1] for s in range(0, self.n, self.block)])

    def describe(self) -> dict:
        """The callable's identity and its draws, as provenance records them."""
        return {"callable": self.identity.to_dict(), "seed": self.seed, "form": "streamed" if self.streamed else "one call",
                "generator_batch_size": self.block if self.streamed else None,
                "value_range": [self.lo, self.hi]}

    def info(self) -> SourceInfo:
        return GeneratorInfo(self.kind, self.location, self.n, self.describe())

    def fingerprint(self) -> str:
        """sha256 of the callable's identity (file sha256, function, checkpoint) and its draws; '' for a function
        object (no file to hash: never cached)."""
        ident = self.identity
        if ident.file_sha256 is None:
            return ""
        text = (f"genbench-callable-v1\n{ident.file_sha256}\t{ident.function}\t{ident.checkpoint_fingerprint}\t"
                f"{self.streamed}\t{self.n}\t{self.seed}\t{self.block}\t{self.lo!r}\t{self.hi!r}")
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------------- worker processes

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cached"] = None
        if self.identity.spec.startswith("py:"):
            state["fn"] = None  # re-imported from the spec in the worker: a module loaded from a file cannot pickle
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.fn is None:
            self.fn, _ = load_callable(self.identity.spec)


def _split(out: Any, where: str) -> tuple[Any, Any]:
    """(images, labels or None) from what a generator returned."""
    if isinstance(out, dict):
        if "images" not in out:
            raise InputError(f"{where}: a returned dict needs the key 'images' (and optionally 'labels'), got "
                             f"{sorted(out)}")
        return out["images"], out.get("labels")
    if isinstance(out, tuple):
        if len(out) != 2:
            raise InputError(f"{where}: a returned tuple must be (images, labels), got {len(out)} items")
        return out
    if isinstance(out, ImageSource):  # the leaderboard's form may return a source: read it whole
        images = out.read_batch(0, len(out))
        if isinstance(images, list):
            raise InputError(f"{where}: returned images of different sizes")
        return images, out.labels()
    return out, None
