"""Finding, fetching and checking network weight files.

Resolution order for a :class:`WeightsSpec` (see :func:`resolve_weights`):

1. an explicit path (``weights=PATH``, CLI ``--weights``);
2. the spec's environment variable (``GENBENCH_INCEPTION_WEIGHTS`` for Inception);
3. the cache, ``$GENBENCH_CACHE/weights/<file>`` (default ``~/.cache/genbench``);
4. a download from the canonical URL into the cache with genbench's one downloader
   (:mod:`genbench.util.download`: ``$GENBENCH_DOWNLOAD_MIRROR``, timeouts, a size
   bound, sha256 checked, then renamed into place atomically).

Every file is hashed (sha256) on every resolution. A file whose hash differs from
the published one is refused unless the caller passes ``allow_unverified=True``;
then its actual sha256 is what gets recorded. Loading uses
``torch.load(weights_only=True)``: no pickled code runs.

Some files have no published sha256 (``WeightsSpec.sha256 is None``: the DINOv2
checkpoints). Such a file is accepted as it is and its actual sha256 recorded,
``verified=False``; a user may pin one (``pin=`` / ``--weights-sha256`` or the
spec's ``pin_env_var``), which is then checked like a published hash.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import cache_dir
from ..errors import WeightsError
from ..util.files import sha256_file


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file: where it lives, its full sha256, and how a user can supply it."""

    name: str
    url: str
    sha256: str | None  # None: nobody publishes one (the actual sha256 is recorded, unverified)
    filename: str
    env_var: str
    flag: str = "--weights"
    #: Environment variable holding a user's sha256 pin for a spec without a published one.
    pin_env_var: str | None = None
    #: Largest download accepted (bytes); the largest network genbench fetches, DINOv2 ViT-g/14, is about 4.5 GB.
    max_bytes: int = 8 << 30


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



def how_to_provide(spec: WeightsSpec) -> str:
    """The sentence every 'weights unavailable' error ends with."""
    digest = f"sha256 {spec.sha256}" if spec.sha256 else "no sha256 is published for it"
    return (
        f"Download {spec.url} ({digest}) on a machine with internet access, then pass it with "
        f"weights=PATH ({spec.flag} PATH), set {spec.env_var}=PATH, or copy it to "
        f"{cache_root() / 'weights' / spec.filename}."
    )


def expected_sha256(spec: WeightsSpec, pin: str | None = None) -> tuple[str | None, str]:
    """The sha256 a file must have (None: any) and where that requirement comes from.

    A user's pin (``pin`` argument, else ``$<spec.pin_env_var>``) applies to specs without a published hash;
    ConfigError unless a pin is 64 hex digits, or when it contradicts a published hash.
    """
    where = "--weights-sha256"
    if pin is None and spec.pin_env_var and os.environ.get(spec.pin_env_var):
        pin, where = os.environ[spec.pin_env_var], spec.pin_env_var
    if pin is not None:
        from ..errors import ConfigError

        pin = pin.strip().lower()
        if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
            raise ConfigError(f"weights sha256 pin ({where}) {pin!r}: expected 64 hexadecimal digits")
        if spec.sha256 is not None and pin != spec.sha256:
            raise ConfigError(f"weights sha256 pin ({where}) {pin}: {spec.name} has a published sha256 "
                              f"({spec.sha256}); a pin is for weights without one (use --allow-unverified-weights "
                              "for another file)")
        return pin, f"pinned by {where}"
    return spec.sha256, "published"


def _check(path: Path, spec: WeightsSpec, origin: str, allow_unverified: bool,
           pin: str | None = None) -> ResolvedWeights:
    if not path.is_file():
        raise WeightsError(f"{spec.name} weights: {path} ({origin}) is not a file. {how_to_provide(spec)}")
    expected, source = expected_sha256(spec, pin)
    actual = sha256_file(path)
    if expected is None:  # nothing to check against: accept, record the actual hash, never claim verified
        return ResolvedWeights(path, actual, False, origin)
    if actual == expected:
        return ResolvedWeights(path, actual, True, origin)
    if allow_unverified:
        return ResolvedWeights(path, actual, False, origin)
    raise WeightsError(
        f"{spec.name} weights: {path} ({origin}) has sha256 {actual}, expected {expected} ({source}). "
        "Use that file, or pass allow_unverified=True (--allow-unverified-weights) to use it anyway; "
        "its actual sha256 is then recorded with every result."
    )


def download(spec: WeightsSpec, target: Path, timeout: float = 60.0, pin: str | None = None) -> Path:
    """Fetch ``spec.url`` to ``target`` with genbench's one downloader (:mod:`genbench.util.download`: mirror,
    timeouts, size bound, atomic), refusing it unless its sha256 matches. Raises WeightsError.

    With no published sha256 and no pin the file is kept as downloaded (its hash is recorded by the caller).
    """
    from ..util.download import download as fetch

    expected, _ = expected_sha256(spec, pin)
    fetch(spec.url, target, error=WeightsError, what=f"{spec.name} weights", offline=how_to_provide(spec),
          sha256=expected, max_bytes=spec.max_bytes, timeout=timeout)
    return target


def resolve_weights(
    spec: WeightsSpec,
    weights: str | os.PathLike | None = None,
    *,
    allow_unverified: bool = False,
    allow_download: bool = True,
    pin: str | None = None,
) -> ResolvedWeights:
    """Find (or fetch) the weights file for ``spec`` and check its sha256.

    ``pin``: a sha256 the file must have (CLI ``--weights-sha256``), for specs without a published one.
    Raises WeightsError when no file can be had (the message says how to provide one)
    or when the file's hash differs and ``allow_unverified`` is False.
    """
    if weights is not None:
        return _check(Path(weights).expanduser(), spec, "argument", allow_unverified, pin)
    env = os.environ.get(spec.env_var)
    if env:
        return _check(Path(env).expanduser(), spec, f"environment {spec.env_var}", allow_unverified, pin)
    cached = cache_root() / "weights" / spec.filename
    expected, _ = expected_sha256(spec, pin)
    if cached.is_file():
        resolved = _check(cached, spec, "cache", allow_unverified=True, pin=pin)
        if resolved.verified or expected is None:
            return resolved
        raise WeightsError(
            f"{spec.name} weights: cached file {cached} has sha256 {resolved.sha256}, expected {expected}; "
            f"delete it to download again. {how_to_provide(spec)}"
        )
    if not allow_download:
        raise WeightsError(f"{spec.name} weights are not in the cache and downloads are off. {how_to_provide(spec)}")
    download(spec, cached, pin=pin)
    if expected is None:
        return ResolvedWeights(cached, sha256_file(cached), False, "download")
    return ResolvedWeights(cached, expected, True, "download")


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
