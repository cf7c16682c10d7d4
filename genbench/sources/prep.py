"""Dataset preparations of the published protocols (``--prep NAME --resolution R``), each exact to its source.

A preparation maps one uint8 RGB image to an R x R uint8 RGB image, the way a paper's tool made its training set
and reference statistics. The images reach it as every genbench source decodes them (``PIL.Image.open(...)
.convert("RGB")``, as ADM's ``ImageDataset`` and EDM2's ``dataset_tool.py`` read files).

=========================== ==========================================================================================
``adm-center-crop``         openai/guided-diffusion ``guided_diffusion/image_datasets.py::center_crop_arr``: halve
                            with ``Image.BOX`` while the short side is >= 2R, resize so the short side is R with
                            ``Image.BICUBIC`` (sizes ``round(x * R / short)``), crop ``(h - R) // 2``,
                            ``(w - R) // 2``.
``edm2-center-crop-dhariwal`` NVlabs/edm2 ``dataset_tool.py`` ``--transform=center-crop-dhariwal``
                            (``center_crop_imagenet``): the same algorithm as ADM's, copied there.
``edm-center-crop``         NVlabs/edm ``dataset_tool.py`` ``--transform=center-crop``: the central square of side
                            ``min(h, w)`` (rows ``(h - c) // 2 : (h + c) // 2``), then ``LANCZOS`` to R x R.
``edm-lanczos``             NVlabs/edm ``dataset_tool.py`` without ``--transform`` (``scale``): ``LANCZOS`` to R x R
                            whatever the aspect ratio; an image already R x R is kept as it is.
=========================== ==========================================================================================

:class:`PreparedSource` applies one to every image of a source; :func:`write_prepared` writes the result as a
``.zip`` of PNGs (the layout of EDM's dataset tool) or an ``.npz`` with ``arr_0`` (uint8 NHWC, ADM's batch layout).
"""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..registry import Registry
from .base import ImageSource
from .derived import DerivedSource


@dataclass(frozen=True)
class Prep:
    name: str
    source: str
    apply: Callable[[np.ndarray, int], np.ndarray]  # uint8 [H, W, 3], resolution -> uint8 [R, R, 3]


PREPS: Registry[Prep] = Registry("dataset preparation", flag="--prep")


def _register(name: str, source: str):
    def decorate(fn: Callable[[np.ndarray, int], np.ndarray]) -> Callable[[np.ndarray, int], np.ndarray]:
        PREPS.register(name)(Prep(name, source, fn))
        return fn

    return decorate


def _center_crop_arr(arr: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(arr)
    while min(*image.size) >= 2 * size:
        image = image.resize((image.size[0] // 2, image.size[1] // 2), resample=Image.Resampling.BOX)
    scale = size / min(*image.size)
    image = image.resize((round(image.size[0] * scale), round(image.size[1] * scale)),
                         resample=Image.Resampling.BICUBIC)
    out = np.asarray(image)
    top, left = (out.shape[0] - size) // 2, (out.shape[1] - size) // 2
    return np.ascontiguousarray(out[top:top + size, left:left + size])


@_register("adm-center-crop", "openai/guided-diffusion guided_diffusion/image_datasets.py center_crop_arr")
def _adm(arr: np.ndarray, size: int) -> np.ndarray:
    return _center_crop_arr(arr, size)


@_register("edm2-center-crop-dhariwal", "NVlabs/edm2 dataset_tool.py --transform=center-crop-dhariwal")
def _edm2(arr: np.ndarray, size: int) -> np.ndarray:
    return _center_crop_arr(arr, size)


@_register("edm-center-crop", "NVlabs/edm dataset_tool.py --transform=center-crop")
def _edm_center(arr: np.ndarray, size: int) -> np.ndarray:
    crop = int(np.min(arr.shape[:2]))
    h, w = arr.shape[:2]
    square = arr[(h - crop) // 2:(h + crop) // 2, (w - crop) // 2:(w + crop) // 2]
    return np.asarray(Image.fromarray(np.ascontiguousarray(square), "RGB").resize((size, size),
                                                                                  Image.Resampling.LANCZOS))


@_register("edm-lanczos", "NVlabs/edm dataset_tool.py --resolution=RxR (no --transform)")
def _edm_scale(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS))


def check_prep(prep: str | None, resolution: int | None) -> tuple[Prep, int] | None:
    """(the preparation, R) for ``--prep``/``--resolution``; None when neither is given; ConfigError for one
    without the other, an unknown name (listing the known ones) or a resolution < 1."""
    if prep is None and resolution is None:
        return None
    if prep is None or resolution is None:
        raise ConfigError("--prep and --resolution go together: name a preparation (" + ", ".join(PREPS.names())
                          + ") and the side R of the square images it makes")
    if resolution < 1:
        raise ConfigError(f"--resolution must be >= 1, got {resolution}")
    return PREPS.get(prep), int(resolution)


class PreparedSource(DerivedSource):
    """Every image of ``base`` through one preparation at resolution R: uint8 [3, R, R] images."""

    kind = "prepared"
    keeps_repeats = True  # a repeated base image is prepared to the same image

    def __init__(self, base: ImageSource, prep: str, resolution: int) -> None:
        checked = check_prep(prep, resolution)
        assert checked is not None
        self.prep, self.resolution = checked
        super().__init__(base, f"{self.prep.name}@{self.resolution}")

    def derive(self, image: np.ndarray, index: int) -> np.ndarray:
        out = self.prep.apply(np.ascontiguousarray(image.transpose(1, 2, 0)), self.resolution)
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def read_batch(self, start: int, stop: int) -> np.ndarray:
        """One array even when the base's images differ in size: every prepared image is [3, R, R]."""
        batch = self.base.read_batch(start, stop)
        if len(batch) == 0:
            return np.zeros((0, 3, self.resolution, self.resolution), dtype=np.uint8)
        return np.stack([self.derive(im, start + i) for i, im in enumerate(batch)])

    def fingerprint_part(self) -> str:
        return f"prep={self.prep.name}|resolution={self.resolution}"

    def provenance(self) -> dict:
        """What statistics of these images record: ``{"prep": name, "resolution": R}``."""
        return {"prep": self.prep.name, "resolution": self.resolution}


def write_prepared(source: ImageSource, output: str | Path, overwrite: bool = False, batch: int = 256) -> int:
    """Write every image of ``source`` to ``output`` atomically: ``.zip`` (``00000/img00000000.png`` ... and a
    ``dataset.json`` with the labels where the source has them, as EDM's dataset tool writes) or ``.npz``
    (``arr_0`` uint8 [N, R, R, 3], and ``arr_1`` int64 labels where present). Returns the image count."""
    from ..util.atomic import atomic_path

    out = Path(output)
    suffix = out.suffix.lower()
    if suffix not in (".zip", ".npz"):
        raise ConfigError(f"-o {out}: expected a .zip (PNG images) or .npz (arr_0) output")
    n = len(source)
    with atomic_path(out, overwrite=overwrite) as tmp:
        if suffix == ".npz":
            first = np.asarray(source.read_batch(0, min(n, batch)))
            images = np.empty((n, first.shape[2], first.shape[3], 3), dtype=np.uint8)
            for start in range(0, n, batch):
                part = np.asarray(source.read_batch(start, min(n, start + batch)))
                images[start:start + len(part)] = part.transpose(0, 2, 3, 1)
            arrays: dict[str, np.ndarray] = {"arr_0": images}
            labels = source.labels()
            if labels is not None:
                arrays["arr_1"] = labels
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        else:
            labels_list = []
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                for start in range(0, n, batch):
                    part = np.asarray(source.read_batch(start, min(n, start + batch)))
                    for offset, image in enumerate(part):
                        i = start + offset
                        name = f"{i // 1000:05d}/img{i:08d}.png"
                        buf = io.BytesIO()
                        Image.fromarray(image.transpose(1, 2, 0)).save(buf, format="png", compress_level=0,
                                                                      optimize=False)
                        zf.writestr(name, buf.getvalue())
                        if source.has_labels:
                            labels_list.append([name, source.label(i)])
                zf.writestr("dataset.json", json.dumps({"labels": labels_list if source.has_labels else None}))
    return n
