"""The one place where pixel formats become uint8 RGB.

Every source hands its pixels to one of two functions here:

* :func:`pil_to_rgb_uint8` for a decoded Pillow image -> uint8 [3, H, W];
* :func:`array_to_rgb_uint8_batch` for an array or tensor -> uint8 [N, 3, H, W].

Rules for Pillow images (by ``img.mode``)
-----------------------------------------
* ``RGB``: taken as is.
* ``L`` (8-bit grey) and ``1`` (1-bit, read as 0 or 255): the grey plane is repeated to R, G and B.
* ``LA``: the grey plane is repeated, alpha dropped. ``RGBA``/``RGBX``: alpha (or padding) dropped.
  Alpha is *dropped*, not composited over a background: the stored colour values are kept, as
  ``Image.convert('RGB')`` (which the reference tools call, e.g. pytorch-fid) does.
* ``P`` and ``PA`` (palette): converted through the palette with Pillow (``img.convert('RGB')``);
  transparency is dropped the same way.
* 16-bit grey (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``) and 32-bit integer ``I`` holding values in
  [0, 65535]: scaled to 8 bits with rounding, ``v8 = round(v * 255 / 65535)`` (exactly
  ``(v * 255 + 32767) // 65535``; 0 -> 0, 65535 -> 255, 257*k -> k), then repeated to RGB. An ``I`` image
  with values below 0 or above 65535 raises InputError (there is no agreed range to map from).
  This deliberately differs from ``Image.convert('RGB')``, which clips 16-bit values at 255 (so tools
  that call it see a 16-bit image as almost white).
  Note: Pillow itself reduces 16-bit *colour* PNGs (48-bit RGB, 64-bit RGBA, 32-bit grey+alpha) to 8 bits
  while decoding, by keeping the high byte (``v >> 8``); we only see that result. It differs from the rule
  above by at most one level.
* ``CMYK``, ``YCbCr``, ``HSV``, ``LAB``, ``RGBa``: converted with Pillow's ``convert('RGB')`` (no ICC colour
  management; CMYK uses Pillow's plain formula).
* ``F`` (32-bit float): refused with InputError. A float image has no agreed range ([0, 1], [0, 255] or
  HDR); guessing or clipping would silently change the metric. Convert such images to 8-bit first.
* Any other mode: refused with InputError naming the mode.

Files are decoded by :func:`decode_image` with Pillow restricted to the formats of the accepted extensions
(PNG, JPEG/MPO, WebP, BMP, TIFF), fully (``.load()``), with ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` left at
its default ``False`` so that a truncated file is an error, never a partly grey image. Any decoding failure
becomes InputError naming the file. Decompression bombs: an image whose header declares more than
``PIL.Image.MAX_IMAGE_PIXELS`` pixels (Pillow's default, about 89 million) is refused with InputError before
its pixels are decoded; Pillow's DecompressionBombWarning (above the limit) is treated as an error like its
DecompressionBombError (above twice the limit), so no such image is ever decoded.

EXIF orientation and embedded ICC profiles are not applied: pixels are used as stored, like the reference
implementations do. Multi-frame files (e.g. multi-page TIFF) give their first frame.

Rules for arrays and tensors
----------------------------
Layouts (``N`` images of ``H x W``; ``C`` is 1, 3 or 4):

* ``[N, C, H, W]`` (NCHW) or ``[N, H, W, C]`` (NHWC), chosen by which axis (1 or 3) has size 1, 3 or 4.
  When both do (e.g. ``[N, 3, 4, 4]``) the layout is ambiguous and InputError asks for ``layout=``.
* ``[N, H, W]``: a batch of grey images. Refused as ambiguous when it could be one image, that is when
  ``N`` is 3 or 4 (one CHW image?) or ``W`` is 1, 3 or 4 (one HWC image?); add the missing axis or pass
  ``layout='NHW'``.
* ``C = 1``: repeated to RGB. ``C = 4``: the fourth channel (alpha) is dropped. ``C = 3``: as is.

``layout`` may be given explicitly as ``'NCHW'``, ``'NHWC'`` or ``'NHW'`` to settle an ambiguous shape.

Element types:

* ``uint8``: taken as is.
* ``uint16``: scaled with the 16-bit rule above, ``round(v * 255 / 65535)``.
* floating point (``float16``/``float32``/``float64``, and torch ``bfloat16``): must lie in [0, 1]; mapped
  by ``round(x * 255)`` computed in float64, rounding half to even (``numpy.rint``). NaN, infinities or
  values outside [0, 1] raise InputError giving the count and the range found (nothing is clipped).
* anything else (bool, signed or wider integers, complex, object): InputError; cast to uint8 yourself.

Torch tensors are accepted anywhere an array is (detached and moved to the CPU first).
"""

from __future__ import annotations

import struct
import warnings
import zlib
from typing import IO, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

LAYOUTS = ("NCHW", "NHWC", "NHW")
_CHANNELS = (1, 3, 4)
_16BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_PILLOW_CONVERTED_MODES = ("P", "PA", "CMYK", "YCbCr", "HSV", "LAB", "RGBa")


# ---------------------------------------------------------------------------- scalar rules


def scale_uint16_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map integers in [0, 65535] to uint8 by ``round(v * 255 / 65535)`` (same shape)."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def float01_to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    """Map floats in [0, 1] to uint8 by ``rint(x * 255)``; InputError on NaN/inf or values outside [0, 1]."""
    x = np.asarray(values, dtype=np.float64)
    bad = ~((x >= 0.0) & (x <= 1.0))  # also catches NaN
    if bad.any():
        finite = x[np.isfinite(x)]
        found = f"[{finite.min():.6g}, {finite.max():.6g}]" if finite.size else "no finite values"
        n_nan = int(np.isnan(x).sum())
        n_inf = int(np.isinf(x).sum())
        raise InputError(
            f"{name}: float images must lie in [0, 1] (mapped by round(x*255)); "
            f"{int(bad.sum())} of {x.size} values are outside it (finite range {found}, "
            f"{n_nan} NaN, {n_inf} infinite). Scale or clip them yourself, or pass uint8."
        )
    return np.rint(x * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------- Pillow images

#: Extensions read as images by folder and archive sources (lower case, with the dot).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Pillow formats allowed to decode them (content decides, the extension only selects the file). Pillow
#: versions differ in which of them are separate plugins (MPO, DIB); the absent ones are left out.
PIL_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "DIB", "TIFF")
_pil_formats: tuple[str, ...] | None = None
#: What Pillow raises on a corrupt, truncated or foreign file.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
)


def has_image_extension(name: str) -> bool:
    """True when ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def decode_image(fp: str | IO[bytes], name: str) -> np.ndarray:
    """Decode one image file (a path or a binary file object) fully to uint8 [3, H, W].

    Raises InputError naming ``name`` when the file is missing, corrupt, truncated, not an image in
    one of :data:`PIL_FORMATS`, or larger than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (decompression bomb).
    """
    global _pil_formats
    if _pil_formats is None:
        Image.init()
        _pil_formats = tuple(f for f in PIL_FORMATS if f in Image.OPEN)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp, formats=_pil_formats) as img:
                img.load()
                return pil_to_rgb_uint8(img, name)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{name}: refused as a possible decompression bomb ({exc}); the limit is Pillow's "
            f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS} pixels "
            "(raise it from Python if the image is trusted)"
        ) from None
    except _DECODE_ERRORS as exc:
        if isinstance(exc, UnidentifiedImageError):
            reason = "not a recognised image format"
        else:
            reason = str(exc) or type(exc).__name__
        raise InputError(
            f"{name}: cannot decode image ({reason}); expected a complete PNG, JPEG, WebP, BMP or TIFF file"
        ) from None


def pil_to_rgb_uint8(img: Image.Image, name: str) -> np.ndarray:
    """A decoded Pillow image as uint8 [3, H, W] under the rules in the module docstring.

    ``name`` (file or member name) is used in error messages. Raises InputError for float (``F``) images,
    ``I`` images outside [0, 65535] and modes with no RGB conversion.
    """
    mode = img.mode
    if mode == "RGB":
        hwc = np.asarray(img)
    elif mode in ("RGBA", "RGBX"):
        hwc = np.asarray(img)[..., :3]
    elif mode == "L":
        return _grey_to_rgb(np.asarray(img))
    elif mode == "1":
        return _grey_to_rgb(np.asarray(img.convert("L")))
    elif mode == "LA":
        return _grey_to_rgb(np.asarray(img)[..., 0])
    elif mode in _16BIT_MODES:
        return _grey_to_rgb(scale_uint16_to_uint8(np.asarray(img)))
    elif mode == "I":
        values = np.asarray(img)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(
                f"{name}: 32-bit integer image (mode I) with values in [{values.min()}, {values.max()}]; "
                "expected values in [0, 65535] (treated as 16-bit). Convert it to 8-bit first."
            )
        return _grey_to_rgb(scale_uint16_to_uint8(values))
    elif mode == "F":
        raise InputError(
            f"{name}: 32-bit float image (mode F) refused: a float image has no agreed value range. "
            "Save it as 8-bit (or 16-bit) first."
        )
    elif mode in _PILLOW_CONVERTED_MODES:
        hwc = np.asarray(img.convert("RGB"))
    else:
        raise InputError(f"{name}: unsupported pixel mode {mode!r}; expected an 8-bit or 16-bit image")
    return _owned(hwc.transpose(2, 0, 1), hwc)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """uint8 [H, W] -> uint8 [3, H, W] (copy)."""
    grey = np.asarray(grey, dtype=np.uint8)
    return np.ascontiguousarray(np.broadcast_to(grey, (3,) + grey.shape))


# ---------------------------------------------------------------------------- arrays and tensors


def to_numpy(arr: Any, name: str) -> np.ndarray:
    """A numpy array or torch tensor as a numpy array (tensors detached, on CPU; bfloat16 -> float32)."""
    if isinstance(arr, np.ndarray):
        return arr
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None  # type: ignore[assignment]  # optional-import idiom; the name is a module otherwise
    if torch is not None and isinstance(arr, torch.Tensor):
        t = arr.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        elif t.dtype == torch.uint16:
            t = t.to(torch.int32)  # numpy conversion of torch.uint16 is not universally supported
            return t.numpy().astype(np.uint16)
        return t.numpy()
    raise InputError(f"{name}: expected a numpy array or a torch tensor, got {type(arr).__name__}")


def infer_layout(shape: tuple[int, ...], name: str, layout: str | None = None) -> str:
    """The layout ('NCHW', 'NHWC' or 'NHW') of an image batch with this shape; InputError when unclear."""
    shape = tuple(int(s) for s in shape)
    if layout is not None:
        if layout not in LAYOUTS:
            raise InputError(f"{name}: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        want_ndim = len(layout)
        if len(shape) != want_ndim:
            raise InputError(f"{name}: layout {layout} needs a {want_ndim}-d array, got shape {shape}")
        if layout != "NHW":
            c = shape[layout.index("C")]
            if c not in _CHANNELS:
                raise InputError(f"{name}: layout {layout} needs 1, 3 or 4 channels, got {c} (shape {shape})")
        return layout
    if len(shape) == 3:
        n, _, w = shape
        if n in (3, 4) or w in _CHANNELS:
            raise InputError(
                f"{name}: ambiguous 3-d shape {shape}: read as [N, H, W] grey images it could also be one "
                "[C, H, W] or [H, W, C] image. Add the batch or channel axis (e.g. arr[None] or arr[..., None]) "
                "or pass layout='NHW'."
            )
        return "NHW"
    if len(shape) == 4:
        nchw = shape[1] in _CHANNELS
        nhwc = shape[3] in _CHANNELS
        if nchw and nhwc:
            raise InputError(
                f"{name}: ambiguous shape {shape}: axis 1 and axis 3 both look like a channel axis "
                "(size 1, 3 or 4). Pass layout='NCHW' or layout='NHWC'."
            )
        if nchw:
            return "NCHW"
        if nhwc:
            return "NHWC"
        raise InputError(
            f"{name}: shape {shape} has no channel axis: expected [N, C, H, W] or [N, H, W, C] with C in "
            "1, 3 or 4, or [N, H, W] for grey images"
        )
    raise InputError(
        f"{name}: expected images of shape [N, C, H, W], [N, H, W, C] (C = 1, 3 or 4) or [N, H, W], "
        f"got a {len(shape)}-d array of shape {shape}"
    )


def check_dtype(dtype: np.dtype, name: str) -> None:
    """InputError unless ``dtype`` is uint8, uint16 or a float type."""
    dtype = np.dtype(dtype)
    if dtype in (np.uint8, np.uint16) or np.issubdtype(dtype, np.floating):
        return
    raise InputError(
        f"{name}: images must be uint8, uint16 or float in [0, 1]; got {dtype}. "
        "If the values are 0..255, cast with .astype(np.uint8) (or tensor.to(torch.uint8))."
    )


def array_to_rgb_uint8_batch(arr: Any, name: str, layout: str | None = None) -> np.ndarray:
    """An image batch (numpy array or torch tensor) as contiguous uint8 [N, 3, H, W].

    Accepts NCHW, NHWC (C = 1, 3 or 4) or NHW grey (see the module docstring for how the layout is
    chosen and how uint16 and float values are mapped). Raises InputError naming ``name`` for an
    ambiguous or wrong shape, an unsupported dtype, or float values outside [0, 1].
    """
    src = a = to_numpy(arr, name)
    check_dtype(a.dtype, name)
    layout = infer_layout(a.shape, name, layout)
    if layout == "NHW":
        a = a[:, None, :, :]
    elif layout == "NHWC":
        a = a.transpose(0, 3, 1, 2)
    c = a.shape[1]
    if c == 4:
        a = a[:, :3]
    a = _values_to_uint8(a, name)
    if c == 1:
        a = np.broadcast_to(a, (a.shape[0], 3) + a.shape[2:])
    return _owned(a, src)


def _owned(a: np.ndarray, src: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous, writable array sharing no memory with ``src`` (copies only when needed)."""
    out = np.ascontiguousarray(a)
    if not out.flags.writeable or np.may_share_memory(out, src):
        out = out.copy()
    return out


def _values_to_uint8(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return scale_uint16_to_uint8(a)
    return float01_to_uint8(a, name)
