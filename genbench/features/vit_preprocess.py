"""Named preprocessing policies of the ViT feature spaces (DINOv2, CLIP), each exact to one anchor's code.

These policies live in their own registries, one per network family, apart from the Inception ones in
:mod:`genbench.features.preprocess`: the same short word means different pipelines in different spaces
(Inception's ``pil-bicubic`` is clean-fid's float-mode resize to 299 with ``(x-128)/128``; DINOv2's is a uint8
PIL resize to 224 with ImageNet mean/std). The name recorded with statistics and results is always the
family-prefixed canonical one (``dinov2-pil-bicubic``); the short names are aliases accepted only by that
family's extractors, so a recorded name never reads as another family's policy.

Every policy maps uint8 RGB [B, 3, H, W] to float32 [B, 3, S, S] (S = the network's input size) and, like the
anchors, resizes straight to S x S (aspect ratio not kept, no crop) except ``clip-cmmd``, which centre-crops.
Grey images reach here as RGB (the sources repeat the grey plane), as ``Image.convert('RGB')`` gives them.

DINOv2 (ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)):

``dinov2-pil-bicubic`` (alias ``pil-bicubic``, ``dgm-eval``, ``edm2-pil``; the default)
    dgm-eval's default and EDM2's ``resize_mode='pil'``, which are the same pipeline: the uint8 RGB image as a
    PIL image, ``Image.resize((S, S), BICUBIC)`` (PIL rounds and clamps to uint8 after each of its two passes,
    and antialiases when shrinking), then float32 ``/ 255``, then ``(x - mean) / std`` in float32.
``dinov2-pil-bicubic-float`` (alias ``pil-bicubic-float``, ``dgm-eval-clean``)
    dgm-eval ``--clean_resize``: each channel as a float32 PIL image (mode ``F``) resized bicubic, clipped to
    [0, 255] without rounding, then ``/ 255`` and ``(x - mean) / std``.
``dinov2-torch-bicubic`` (alias ``torch-bicubic``, ``edm2``, ``edm2-torch``)
    EDM2's default: float32 values 0..255, ``F.interpolate(size=S, mode='bicubic', antialias=True)`` (the
    antialiased kernel is used even when upscaling), no clamp, no rounding, then ``/ 255`` and normalise.
``dinov2-tf1-bilinear`` (alias ``tf1-bilinear``, ``torch-fidelity``)
    torch-fidelity 0.4's ``dinov2-vit-*``: TF1 ``resize_bilinear(align_corners=False)`` of float32 0..255
    (bit-exact port, :func:`~genbench.features.preprocess.resize_tf1_bilinear`), then
    ``(x - 255 * mean) / (255 * std)``.

CLIP (OpenAI mean (0.48145466, 0.4578275, 0.40821073), std (0.26862954, 0.26130258, 0.27577711)):

``clip-tf1-bilinear`` (alias ``tf1-bilinear``, ``torch-fidelity``)
    torch-fidelity 0.4's ``clip-vit-*``: TF1 bilinear of float32 0..255 to the model resolution, then
    ``(x - 255 * mean) / (255 * std)``.
``clip-cmmd`` (alias ``cmmd``)
    The CMMD reference (google-research ``cmmd/io_util.py`` and ``embedding.py``): crop the centred square of
    side ``l = min(H, W)`` at offsets ``((H - l) // 2, (W - l) // 2)``, PIL ``resize((S, S), BICUBIC)`` of the
    uint8 RGB image, float32 ``/ 255``; the reference's second ``jax.image.resize`` to S is then an identity
    (the image already has that size); then ``(x - mean) / std``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry
from .preprocess import resize_pil_bicubic, resize_tf1_bilinear

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VitPolicy:
    """A named map uint8 [B, 3, H, W] -> float32 [B, 3, size, size], normalised for the network."""

    name: str
    summary: str
    fn: Callable[[torch.Tensor, int], torch.Tensor]

    def __call__(self, images: torch.Tensor, size: int) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise TypeError(f"preprocessing {self.name!r} expects uint8 [B,3,H,W], got {images.dtype} "
                            f"{tuple(images.shape)}")
        return self.fn(images, size)


#: DINOv2 policies (canonical names ``dinov2-*``; short aliases only in this registry).
DINOV2_PREPROCESSING: Registry[VitPolicy] = Registry("DINOv2 preprocessing", flag="--preprocessing")
#: CLIP policies (canonical names ``clip-*``).
CLIP_PREPROCESSING: Registry[VitPolicy] = Registry("CLIP preprocessing", flag="--preprocessing")

DEFAULT_DINOV2_PREPROCESSING = "dinov2-pil-bicubic"


def _register(registry: Registry[VitPolicy], name: str, summary: str, aliases: tuple[str, ...]):
    def decorate(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable:
        registry.register(name, aliases=aliases)(VitPolicy(name, summary, fn))
        return fn

    return decorate


# --------------------------------------------------------------------------- steps


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean) / std per channel, float32, as torchvision's Normalize and EDM2's code do it."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def pil_resize_uint8(images: torch.Tensor, size: int, crop_square: bool = False) -> torch.Tensor:
    """PIL bicubic resize of each uint8 RGB [3, H, W] image to uint8 [3, size, size] (optionally centre-cropped).

    ``crop_square``: first crop the centred square of side min(H, W), box (left, top) = ((W-l)//2, (H-l)//2),
    as the CMMD reference's ``_center_crop_and_resize``.
    """
    from PIL import Image

    arrays = images.detach().cpu().permute(0, 2, 3, 1).numpy()
    out = np.empty((len(arrays), size, size, 3), dtype=np.uint8)
    for i, array in enumerate(arrays):
        pil = Image.fromarray(np.ascontiguousarray(array), "RGB")
        if crop_square:
            w, h = pil.size
            side = min(w, h)
            top, left = (h - side) // 2, (w - side) // 2
            pil = pil.crop((left, top, left + side, top + side))
        out[i] = np.asarray(pil.resize((size, size), resample=Image.Resampling.BICUBIC))
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(images.device)


def _pil_float(images: torch.Tensor, size: int) -> torch.Tensor:
    arrays = images.detach().cpu().numpy()
    resized = [resize_pil_bicubic(image, (size, size)) for image in arrays]
    stacked = np.stack(resized) if resized else np.zeros((0, 3, size, size), dtype=np.float32)
    return torch.from_numpy(stacked).to(images.device)


def _scaled(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(255 * v for v in values)


# --------------------------------------------------------------------------- DINOv2


@_register(DINOV2_PREPROCESSING, "dinov2-pil-bicubic",
           "PIL bicubic of the uint8 image, /255, ImageNet mean/std; dgm-eval default = EDM2 'pil'",
           ("pil-bicubic", "dgm-eval", "edm2-pil"))
def _dinov2_pil(images: torch.Tensor, size: int) -> torch.Tensor:
    x = pil_resize_uint8(images, size).to(torch.float32) / 255
    return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)


@_register(DINOV2_PREPROCESSING, "dinov2-pil-bicubic-float",
           "PIL float-mode bicubic per channel, clip [0,255], /255, ImageNet mean/std; dgm-eval --clean_resize",
           ("pil-bicubic-float", "dgm-eval-clean"))
def _dinov2_pil_float(images: torch.Tensor, size: int) -> torch.Tensor:
    return _normalise(_pil_float(images, size) / 255, IMAGENET_MEAN, IMAGENET_STD)


@_register(DINOV2_PREPROCESSING, "dinov2-torch-bicubic",
           "float 0..255, F.interpolate bicubic antialias=True, /255, ImageNet mean/std; EDM2 default ('torch')",
           ("torch-bicubic", "edm2", "edm2-torch"))
def _dinov2_torch(images: torch.Tensor, size: int) -> torch.Tensor:
    x = F.interpolate(images.to(torch.float32), size=(size, size), mode="bicubic", antialias=True)
    return _normalise(x / 255, IMAGENET_MEAN, IMAGENET_STD)


@_register(DINOV2_PREPROCESSING, "dinov2-tf1-bilinear",
           "TF1 bilinear on float 0..255, then (x - 255 mean) / (255 std); torch-fidelity 0.4 dinov2-vit-*",
           ("tf1-bilinear", "torch-fidelity"))
def _dinov2_tf1(images: torch.Tensor, size: int) -> torch.Tensor:
    x = resize_tf1_bilinear(images.to(torch.float32), (size, size))
    return _normalise(x, _scaled(IMAGENET_MEAN), _scaled(IMAGENET_STD))


# --------------------------------------------------------------------------- CLIP


@_register(CLIP_PREPROCESSING, "clip-tf1-bilinear",
           "TF1 bilinear on float 0..255, then (x - 255 mean) / (255 std), CLIP mean/std; torch-fidelity clip-vit-*",
           ("tf1-bilinear", "torch-fidelity"))
def _clip_tf1(images: torch.Tensor, size: int) -> torch.Tensor:
    x = resize_tf1_bilinear(images.to(torch.float32), (size, size))
    return _normalise(x, _scaled(CLIP_MEAN), _scaled(CLIP_STD))


@_register(CLIP_PREPROCESSING, "clip-cmmd",
           "centre square crop, PIL bicubic of the uint8 image, /255, CLIP mean/std; the CMMD reference",
           ("cmmd",))
def _clip_cmmd(images: torch.Tensor, size: int) -> torch.Tensor:
    x = pil_resize_uint8(images, size, crop_square=True).to(torch.float32) / 255
    return _normalise(x, CLIP_MEAN, CLIP_STD)
