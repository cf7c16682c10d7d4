"""Finding, fetching and checking network weight files.

Resolution order for a :class:`WeightsSpec` (see :func:`resolve_weights`):

1. an explicit path (``weights=PATH``, CLI ``--weights``);
2. the spec's environment variable (``GENBENCH_INCEPTION_WEIGHTS`` for Inception);
3. the cache, ``$GENBENCH_CACHE/weights/<file>`` (default ``~/.cache/genbench``);
4. a download from the canonical URL into the cache (urllib, streamed, sha256
   checked, then renamed into place atomically).

Every file is hashed (sha256) on every resolution. A file whose hash differs from
the published one is refused unless the caller passes ``allow_unverified=True``;
then its actual sha256 is what gets recorded. Loading uses
``torch.load(weights_only=True)``: no pickled code runs.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..config import cache_dir
from ..errors import WeightsError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file: where it lives, its full sha256, and how a user can supply it."""

    name: str
    url: str
    sha256: str
    filename: str
    env_var: str
    flag: str = "--weights"


@dataclass(frozen=True)
class ResolvedWeights:
    """A local weights file and its actual sha256; ``verified`` means it equals the published hash."""

    path: Path
    sha256: str
    verified: bool
    origin: str  # "argument", "environment", "cache" or "download"


#: The TF "inception-2015-12-05" graph ported to PyTorch by pytorch-fid (95,628,359 bytes).
#: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` is the same file (same sha256).
INCEPTION_V3_WEIGHTS = WeightsSpec(
    name="inception-v3 (FID, inception-2015-12-05)",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    filename="pt_inception-2015-12-05-6726825d.pth",
    env_var="GENBENCH_INCEPTION_WEIGHTS",
)


def cache_root() -> Path:
    """genbench's cache folder: ``$GENBENCH_CACHE`` or ``~/.cache/genbench`` (see genbench.config.cache_dir)."""
    return cache_dir().expanduser()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def how_to_provide(spec: WeightsSpec) -> str:
    """The sentence every 'weights unavailable' error ends with."""
    return (
        f"Download {spec.url} (sha256 {spec.sha256}) on a machine with internet access, then pass it with "
        f"weights=PATH ({spec.flag} PATH), set {spec.env_var}=PATH, or copy it to "
        f"{cache_root() / 'weights' / spec.filename}."
    )


def _check(path: Path, spec: WeightsSpec, origin: str, allow_unverified: bool) -> ResolvedWeights:
    if not path.is_file():
        raise WeightsError(f"{spec.name} weights: {path} ({origin}) is not a file. {how_to_provide(spec)}")
    actual = sha256_file(path)
    if actual == spec.sha256:
        return ResolvedWeights(path, actual, True, origin)
    if allow_unverified:
        return ResolvedWeights(path, actual, False, origin)
    raise WeightsError(
        f"{spec.name} weights: {path} ({origin}) has sha256 {actual}, expected {spec.sha256}. "
        "Use the published file, or pass allow_unverified=True (--allow-unverified-weights) to use it anyway; "
        "its actual sha256 is then recorded with every result."
    )


def download(spec: WeightsSpec, target: Path, timeout: float = 60.0) -> Path:
    """Stream ``spec.url`` to ``target`` (atomic), refusing it unless its sha256 matches. Raises WeightsError."""
    digest = hashlib.sha256()
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(spec.url, timeout=timeout) as response, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != spec.sha256:
                raise WeightsError(
                    f"{spec.name} weights downloaded from {spec.url} have sha256 {digest.hexdigest()}, "
                    f"expected {spec.sha256}; nothing was cached. {how_to_provide(spec)}"
                )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WeightsError(
            f"{spec.name} weights are not in the cache and could not be downloaded from {spec.url} ({exc}). "
            f"{how_to_provide(spec)}"
        ) from exc
    return target


def resolve_weights(
    spec: WeightsSpec,
    weights: str | os.PathLike | None = None,
    *,
    allow_unverified: bool = False,
    allow_download: bool = True,
) -> ResolvedWeights:
    """Find (or fetch) the weights file for ``spec`` and check its sha256.

    Raises WeightsError when no file can be had (the message says how to provide one)
    or when the file's hash differs and ``allow_unverified`` is False.
    """
    if weights is not None:
        return _check(Path(weights).expanduser(), spec, "argument", allow_unverified)
    env = os.environ.get(spec.env_var)
    if env:
        return _check(Path(env).expanduser(), spec, f"environment {spec.env_var}", allow_unverified)
    cached = cache_root() / "weights" / spec.filename
    if cached.is_file():
        resolved = _check(cached, spec, "cache", allow_unverified=True)
        if resolved.verified:
            return resolved
        raise WeightsError(
            f"{spec.name} weights: cached file {cached} has sha256 {resolved.sha256}, expected {spec.sha256}; "
            f"delete it to download again. {how_to_provide(spec)}"
        )
    if not allow_download:
        raise WeightsError(f"{spec.name} weights are not in the cache and downloads are off. {how_to_provide(spec)}")
    download(spec, cached)
    return ResolvedWeights(cached, spec.sha256, True, "download")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a tensor-only state dict (``torch.load(weights_only=True)``, on CPU). Raises WeightsError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"cannot read weights file {path} as a PyTorch state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} is not a state dict of tensors (got {type(state).__name__})")
    return dict(state)
