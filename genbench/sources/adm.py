"""ADM's batch files (openai/guided-diffusion ``evaluations/``): sample batches and reference batches.

* A **sample batch** is an ``.npz`` holding ``arr_0``: uint8 images [N, H, W, 3] (NHWC), as DiT's
  ``sample_ddp.py`` writes them (``np.savez(path, arr_0=samples)``) and ADM's evaluator reads them (``open_npz_array
  (path, "arr_0")``, batches ``.astype(np.float32)`` in [0, 255]).
* A **reference batch** adds ``mu``/``sigma`` (``pool_3``, 2048-d) and ``mu_s``/``sigma_s`` (the spatial features
  of sFID, 2023-d), computed over the whole data set, while its ``arr_0`` (10,000 images; 1,000 for ImageNet 512)
  serves precision and recall.

``arr_0`` is read without pickles. An uncompressed member (``np.savez``) is memory-mapped at its offset inside the
zip, so a 50,000-image batch of 256 x 256 (9.8 GB) is paged in batch by batch, as ADM streams it; a compressed one
(``np.savez_compressed``) is read whole, bounded by ``$GENBENCH_MAX_ARRAY_BYTES``. Anything else is an InputError
naming the file: another key than ``arr_0``, another dtype than uint8, another layout than NHWC with 3 channels.

A reference batch's statistics are read by :func:`genbench.stats.adm_batch.open_reference_batch` (statistics are
a layer above sources).
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .arrays import ArraySource, _npz_members, _open_zip, npz_keys, read_npy_header, read_npz_array
from .limits import max_array_bytes

SAMPLES_KEY = "arr_0"
#: genbench's own .npz kinds, never read as ADM batches
_GENBENCH_KEYS = ("images", "features", "meta")


def is_npz_batch(path: str | Path) -> bool:
    """True for an existing ``.npz`` that is not one of genbench's own files (images, features, statistics):
    under a protocol such a file is read as an ADM sample batch (and refused unless it is one)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    keys = set(npz_keys(path))
    return not keys & set(_GENBENCH_KEYS) and "mu" not in keys


def is_reference_batch(path: str | Path) -> bool:
    """True for an ``.npz`` with ``arr_0``, ``mu`` and ``sigma`` and no genbench metadata (an ADM reference batch)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    keys = set(npz_keys(path))
    return {SAMPLES_KEY, "mu", "sigma"} <= keys and "meta" not in keys


def _stored_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Byte offset of an uncompressed member's data in the zip file (after its local header)."""
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise InputError(f"{path}: member {info.filename} has no valid local header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def batch_images(path: Path, what: str) -> np.ndarray:
    """``arr_0`` of ``path`` checked as uint8 NHWC with 3 channels (memory-mapped when stored uncompressed)."""
    with _open_zip(path) as zf:
        members = _npz_members(zf)
        if SAMPLES_KEY not in members:
            raise InputError(f"{path}: an ADM {what} holds its images as 'arr_0' (uint8 NHWC); keys found: "
                             f"{', '.join(members) or 'none'}")
        info = zf.getinfo(members[SAMPLES_KEY])
        with zf.open(info) as fh:
            shape, fortran, dtype, nbytes = read_npy_header(fh, f"{path}:arr_0")
            header_len = fh.tell()
        if dtype != np.uint8:
            raise InputError(f"{path}: arr_0 has dtype {dtype}; an ADM {what} holds uint8 images in [0, 255]")
        if len(shape) != 4 or shape[-1] != 3 or fortran:
            raise InputError(f"{path}: arr_0 has shape {shape}{' (Fortran order)' if fortran else ''}; an ADM {what} "
                             "holds images as [N, H, W, 3] (NHWC, RGB)")
        if shape[0] == 0:
            raise InputError(f"{path}: arr_0 holds no images")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size < header_len + nbytes:
                raise InputError(f"{path}: arr_0 is truncated ({info.file_size} bytes, its header declares "
                                 f"{header_len + nbytes})")
            return np.memmap(path, dtype=np.uint8, mode="r", offset=_stored_offset(path, info) + header_len,
                             shape=tuple(shape))
        return read_npz_array(zf, members[SAMPLES_KEY], path, max_array_bytes())


def open_sample_batch(path: str | Path) -> ArraySource:
    """An ADM sample batch as an image source (NHWC uint8); InputError naming the file for anything else."""
    path = Path(path)
    images = batch_images(path, "sample batch")
    source = ArraySource(images, name=str(path), layout="NHWC")
    return source
