"""Named resize-and-normalise policies for the Inception input (299 x 299, range about [-1, 1]).

The resize filter changes FID by whole points, so each policy has a name that is
recorded with every statistics file and result (``ExtractorIdentity.preprocessing``)
and looked up in :data:`PREPROCESSING` (CLI flag ``--preprocessing``).

Every policy maps uint8 RGB [B, 3, H, W] to float32 [B, 3, S, S] (S = 299 for
Inception), ready for the network's first convolution:

``tf1-bilinear`` (default)
    TensorFlow 1.x ``tf.image.resize_bilinear(align_corners=False)`` as used inside
    the original TTUR / improved-GAN graph: source coordinate ``dst * (in / out)``
    (no half-pixel offset), float32 arithmetic, horizontal then vertical lerp, on
    the [0, 255] values; then ``(x - 128) / 128``. Numerically as torch-fidelity
    (``interpolate_bilinear_2d_like_tensorflow1x`` then ``(x - 128) / 128``).
``torch-bilinear``
    As pytorch-fid: ``x / 255`` (as ``ToTensor``), ``F.interpolate(mode="bilinear",
    align_corners=False, antialias=False)`` to S, then ``2 * x - 1``.
``pil-bicubic``
    As clean-fid's ``mode="clean"``: each channel as a float32 PIL image (mode
    ``F``) resized with PIL bicubic to S (PIL's bicubic antialiases when shrinking),
    clipped to [0, 255] without quantising, then ``(x - 128) / 128`` as clean-fid
    feeds the network. Runs on the CPU, image by image.

clean-fid's mode names are accepted as aliases (:data:`CLEANFID_ALIASES`): ``clean`` =
``pil-bicubic``, ``legacy_tensorflow`` = ``tf1-bilinear``, ``legacy_pytorch`` =
``torch-bilinear``; the canonical name is what gets recorded.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry

#: Default policy name (the TF-compatible one the FID literature reports).
DEFAULT_PREPROCESSING = "tf1-bilinear"


@dataclass(frozen=True)
class PreprocessPolicy:
    """A named map uint8 [B, 3, H, W] -> float32 [B, 3, size, size] in network range."""

    name: str
    summary: str
    fn: Callable[[torch.Tensor, int], torch.Tensor]

    def __call__(self, images: torch.Tensor, size: int = 299) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"preprocessing {self.name!r} expects uint8 [B,3,H,W], got {images.dtype} {tuple(images.shape)}")
        return self.fn(images, size)


#: name -> PreprocessPolicy
PREPROCESSING: Registry[PreprocessPolicy] = Registry("preprocessing", flag="--preprocessing")

#: clean-fid's ``mode`` names -> the policy here that computes the same thing.
CLEANFID_ALIASES = {"clean": "pil-bicubic", "legacy_tensorflow": "tf1-bilinear", "legacy_pytorch": "torch-bilinear"}


def get_preprocessing(name: str | None) -> PreprocessPolicy:
    """Look a policy up by name or alias (None gives the default); ConfigError lists the valid names.

    The policy's ``name`` is always the canonical one (``get_preprocessing("clean").name == "pil-bicubic"``).
    """
    return PREPROCESSING.get(DEFAULT_PREPROCESSING if name is None else name)


def _register(name: str, summary: str) -> Callable[[Callable[[torch.Tensor, int], torch.Tensor]], Callable]:
    def decorate(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable:
        PREPROCESSING.register(name)(PreprocessPolicy(name, summary, fn))
        return fn

    return decorate


# --------------------------------------------------------------------------- resize primitives


def _tf1_axis(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF1 (align_corners=False, no half-pixel centres) sample positions along one axis.

    Returns (lower index, upper index, fraction), each [out_size]; float32 as in TF.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32, device=device)
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    lower = src.floor().long().clamp_max(in_size - 1)
    upper = (lower + 1).clamp_max(in_size - 1)
    frac = src - lower.to(torch.float32)
    return lower, upper, frac


def resize_tf1_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1.x ``resize_bilinear(align_corners=False)`` of float [B, C, H, W] to [B, C, *size]."""
    out_h, out_w = size
    y_lo, y_hi, fy = _tf1_axis(x.shape[2], out_h, x.device)
    x_lo, x_hi, fx = _tf1_axis(x.shape[3], out_w, x.device)
    fx = fx.to(x.dtype)
    fy = fy.to(x.dtype).view(out_h, 1)
    # TF lerps each needed input row horizontally, then lerps the two rows vertically.
    # A row's horizontal lerp does not depend on which output row uses it, so it is done
    # once per input row ([B, C, H, out_w]) and the rows are gathered after: same values,
    # bit for bit, at a fraction of the work when upsampling.
    left = x.index_select(3, x_lo)
    rows = left + (x.index_select(3, x_hi) - left) * fx
    top = rows.index_select(2, y_lo)
    bottom = rows.index_select(2, y_hi)
    return top.add_(bottom.sub_(top).mul_(fy))


def resize_pil_bicubic(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL float-mode bicubic resize of one uint8 [3, H, W] image to float32 [3, *size], clipped to [0, 255]."""
    from PIL import Image

    out_h, out_w = size
    channels = []
    for plane in image:
        pil = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
        if pil.mode != "F":  # pragma: no cover - guards a Pillow behaviour change
            raise RuntimeError(f"Pillow made a {pil.mode!r} image from float32; expected mode 'F'")
        resized = pil.resize((out_w, out_h), resample=Image.Resampling.BICUBIC)
        channels.append(np.asarray(resized, dtype=np.float32).clip(0, 255))
    return np.stack(channels)


# --------------------------------------------------------------------------- policies


@_register("tf1-bilinear", "TF1 bilinear (align_corners=False) on [0,255], then (x-128)/128; as TTUR/torch-fidelity")
def _tf1_bilinear(images: torch.Tensor, size: int) -> torch.Tensor:
    x = resize_tf1_bilinear(images.to(torch.float32), (size, size))
    return x.sub_(128).div_(128)


@_register("torch-bilinear", "x/255, F.interpolate bilinear (align_corners=False), then 2x-1; as pytorch-fid")
def _torch_bilinear(images: torch.Tensor, size: int) -> torch.Tensor:
    x = images.to(torch.float32).div(255)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return 2 * x - 1


@_register("pil-bicubic", "PIL float-mode bicubic per channel, clip [0,255], then (x-128)/128; as clean-fid 'clean'")
def _pil_bicubic(images: torch.Tensor, size: int) -> torch.Tensor:
    arrays = images.detach().cpu().numpy()
    resized = np.stack([resize_pil_bicubic(image, (size, size)) for image in arrays]) if len(arrays) else (
        np.zeros((0, 3, size, size), dtype=np.float32)
    )
    x = torch.from_numpy(resized).to(images.device)
    return (x - 128) / 128


for _alias, _name in CLEANFID_ALIASES.items():
    PREPROCESSING.alias(_alias, _name)
