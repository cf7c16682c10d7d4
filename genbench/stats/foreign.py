"""Reading other tools' reference statistics safely: EDM2 ``.pkl`` files and ADM ``.npz`` reference batches.

EDM2 (``calculate_metrics.py ref``) pickles ``{"num_images": N, "fid": {"mu", "sigma"}, "fd_dinov2": {"mu",
"sigma"}}``. A pickle can run code, so it is read with a restricted unpickler that admits only what such a
file needs: numpy arrays (``numpy.core.multiarray._reconstruct`` / ``numpy._core...``, ``numpy.ndarray``,
``numpy.dtype``, numpy scalars) and plain containers, numbers and strings; any other global is refused with an
error naming the file. Arrays must be numeric (no object arrays).

ADM (openai/guided-diffusion ``evaluations/``) reference batches are ``.npz`` files with ``arr_0`` (the images),
``mu``/``sigma`` (Inception ``pool_3``) and ``mu_s``/``sigma_s`` (the spatial features of sFID). Only ``mu``
and ``sigma`` are read (bounded, ``allow_pickle=False``); the sample count is taken from ``arr_0``'s header
without reading the images.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ReferenceStatsError

#: The globals an EDM2 statistics pickle may name (module, name).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 (Python >= 3.14's default)
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
}
#: Largest EDM2 pickle read (its mu/sigma for two feature spaces are about 42 MB).
MAX_PICKLE_BYTES = 1 << 30


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(data))
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise ReferenceStatsError(
                f"{self._path}: the pickle names {module}.{name}, which genbench refuses to load; a statistics "
                "pickle may hold only numpy arrays, numbers, strings, lists and dicts"
            )
        return super().find_class(module, name)

    def persistent_load(self, pid):  # pragma: no cover - EDM2 files have no persistent ids
        raise ReferenceStatsError(f"{self._path}: the pickle uses persistent ids; not a statistics file")


def _plain(obj: object, path: Path, where: str) -> None:
    """ReferenceStatsError unless ``obj`` is built only of numeric arrays, numbers, strings, lists and dicts."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise ReferenceStatsError(f"{path}: {where} has a key of type {type(key).__name__}")
            _plain(value, path, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _plain(value, path, f"{where}[{i}]")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise ReferenceStatsError(f"{path}: {where} is a {obj.dtype} array; expected numbers")
    elif not isinstance(obj, (str, int, float, bool, np.generic, type(None))):
        raise ReferenceStatsError(f"{path}: {where} is a {type(obj).__name__}")


def load_stats_pickle(path: str | Path) -> dict:
    """The dict an EDM2 statistics pickle holds, read with the restricted unpickler (no pickled code runs).

    ReferenceStatsError naming the file for a pickle that names any other global, for anything but numeric
    arrays, numbers, strings, lists and dicts, and for a file over :data:`MAX_PICKLE_BYTES`.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise ReferenceStatsError(f"{path}: {size} bytes, more than the {MAX_PICKLE_BYTES} a statistics pickle "
                                  "may have")
    try:
        doc = _RestrictedUnpickler(path.read_bytes(), path).load()
    except ReferenceStatsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError) as exc:
        raise ReferenceStatsError(f"{path}: not a readable statistics pickle ({type(exc).__name__}: {exc})") from None
    _plain(doc, path, "the pickle")
    if not isinstance(doc, dict):
        raise ReferenceStatsError(f"{path}: expected a dict of statistics, got {type(doc).__name__}")
    return doc


def edm2_count(doc: dict, path: str | Path) -> int | None:
    """``num_images`` of an EDM2 statistics dict (None when absent); ReferenceStatsError unless a count >= 2."""
    n = doc.get("num_images")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2):
        raise ReferenceStatsError(f"{path}: num_images must be a whole number >= 2, got {n!r}")
    return None if n is None else int(n)


def edm2_space(doc: dict, key: str, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of feature space ``key`` ('fid', 'fd_dinov2') of an EDM2 statistics dict."""
    spaces = sorted(k for k, v in doc.items() if isinstance(v, dict) and "mu" in v and "sigma" in v)
    if key not in spaces:
        raise ReferenceStatsError(f"{path}: no statistics {key!r} (--key); the file has: {', '.join(spaces) or 'none'}")
    return np.asarray(doc[key]["mu"]), np.asarray(doc[key]["sigma"])


def read_edm2_pickle(path: str | Path, key: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(mu [d], sigma [d, d], num_images or None) of feature space ``key`` ('fid', 'fd_dinov2') in an EDM2 pickle.

    ReferenceStatsError naming the file for anything but a plain statistics pickle.
    """
    doc = load_stats_pickle(path)
    mu, sigma = edm2_space(doc, key, path)
    return mu, sigma, edm2_count(doc, path)


def read_npz_arrays(path: str | Path, keys: tuple[str, ...] | list[str], what: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz``, and nothing else (a batch's images stay unread); bounded, no pickles.

    ReferenceStatsError naming the file and ``what`` it should be for a missing key, a pickled or oversized
    array, or a file that is no readable ``.npz``.
    """
    from ..errors import InputError
    from ..sources.arrays import _npz_members, _open_zip, read_npz_array
    from ..sources.limits import max_array_bytes

    path = Path(path)
    try:
        with _open_zip(path) as zf:
            members = _npz_members(zf)
            missing = [k for k in keys if k not in members]
            if missing:
                raise ReferenceStatsError(f"{path}: {what} has arrays {list(keys)}; missing {missing}, found "
                                          f"{sorted(members)}")
            limit = max_array_bytes()
            return {k: read_npz_array(zf, members[k], path, limit) for k in keys}
    except (InputError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ReferenceStatsError(f"{path}: not a readable {what} ({exc})") from None


def npz_array_header(path: str | Path, key: str, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) that array ``key`` of an ``.npz`` declares, read from its header only."""
    from ..errors import InputError
    from ..sources.arrays import _npz_members, _open_zip, read_npy_header

    path = Path(path)
    try:
        with _open_zip(path) as zf:
            members = _npz_members(zf)
            if key not in members:
                raise ReferenceStatsError(f"{path}: {what} has an array {key!r}; found {sorted(members)}")
            with zf.open(members[key]) as fh:
                shape, _, dtype, _ = read_npy_header(fh, f"{path}:{key}")
    except (InputError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ReferenceStatsError(f"{path}: not a readable {what} ({exc})") from None
    return tuple(int(s) for s in shape), np.dtype(dtype)


def read_adm_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(mu, sigma, number of images in ``arr_0`` or None) of an ADM reference batch; nothing else is read."""
    from ..errors import InputError
    from ..sources.arrays import _npz_members, _open_zip, read_npy_header, read_npz_array
    from ..sources.limits import max_array_bytes

    path = Path(path)
    try:
        with _open_zip(path) as zf:
            members = _npz_members(zf)
            missing = [k for k in ("mu", "sigma") if k not in members]
            if missing:
                raise ReferenceStatsError(f"{path}: an ADM reference batch has arrays 'mu' and 'sigma'; missing "
                                          f"{missing}, found {sorted(members)}")
            limit = max_array_bytes()
            mu = read_npz_array(zf, members["mu"], path, limit)
            sigma = read_npz_array(zf, members["sigma"], path, limit)
            n = None
            if "arr_0" in members:
                with zf.open(members["arr_0"]) as fh:
                    shape = read_npy_header(fh, f"{path}:arr_0")[0]
                n = int(shape[0]) if shape else None
    except (InputError, zipfile.BadZipFile, OSError) as exc:
        raise ReferenceStatsError(f"{path}: not a readable ADM reference batch ({exc})") from None
    return mu, sigma, n


def detect_format(path: str | Path) -> str:
    """'edm2' for a pickle, 'adm' for an .npz with ``arr_0`` and ``mu_s`` (an ADM reference batch), else 'npz'."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":  # pickle protocol >= 2
        return "edm2"
    if path.suffix == ".npz":
        from ..sources.arrays import npz_keys

        keys = set(npz_keys(path))
        if "arr_0" in keys and "mu" in keys and "meta" not in keys:
            return "adm"
    return "npz"
