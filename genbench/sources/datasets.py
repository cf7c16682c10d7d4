"""Standard image data sets as ImageSources: Fashion-MNIST, MNIST, CIFAR-10, CIFAR-100 and STL-10.

A data set is named by a spec ``NAME:SPLIT`` (``fashion-mnist:train``, ``cifar10:test``, ...);
``DATASETS.names()`` lists them. Files are read from their usual on-disk formats:

- Fashion-MNIST / MNIST: the four IDX files (``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``), read with :func:`genbench.sources.idx.read_idx`.
- CIFAR-10 / CIFAR-100: the "binary version" (``cifar-10-batches-bin/data_batch_1.bin`` ... ``test_batch.bin``,
  ``cifar-100-binary/train.bin``, ``test.bin``: fixed-size records, no pickles), else the "python version"
  batches (``cifar-10-batches-py/``, ``cifar-100-python/``), Python pickles read with a restricted unpickler
  that only builds dicts, lists, strings and numpy arrays and refuses every other global with an InputError.
- STL-10 (``stl10:train|test|unlabeled``): the binary version (``stl10_binary/train_X.bin``, ``train_y.bin``,
  ``test_X.bin``, ``test_y.bin``, ``unlabeled_X.bin``); the unlabeled split has no labels.

Lookup order for a data set's files (first match wins):

1. ``data_dir`` (the CLI's ``--data-dir``),
2. the ``GENBENCH_DATA`` environment variable,
3. system folders (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``, from the Debian package
   ``dataset-fashion-mnist``),
4. the download cache (``$GENBENCH_CACHE/data``, default ``~/.cache/genbench/data``), into which a
   missing data set is downloaded when the machine is online (skipped when ``download=False`` or
   ``GENBENCH_OFFLINE=1``): CIFAR-10/100 and STL-10 as their binary archives from the canonical URLs
   through genbench's one downloader (``$GENBENCH_DOWNLOAD_MIRROR`` honoured, size-bounded, atomic, sha256
   recorded at the first download) and unpacked with bounded, checked extraction
   (:mod:`genbench.sources.archives`); Fashion-MNIST and MNIST with torchvision's md5-checked helpers.

Within each folder ROOT the accepted layouts are: Fashion-MNIST ``ROOT/``, ``ROOT/fashion-mnist/``,
``ROOT/FashionMNIST/raw/``; MNIST ``ROOT/mnist/``, ``ROOT/MNIST/raw/`` (never plain ``ROOT/``, whose IDX
files are taken to be Fashion-MNIST, since the two use the same file names); CIFAR
``ROOT/cifar-10-batches-py/`` and ``ROOT/cifar-100-python/``.

Arrays are decoded once per process (cached on resolved path, size, mtime_ns, inode and ctime_ns, so a
file rewritten in place is decoded again even when its size and mtime were restored) and kept read-only.
Grayscale images stay [N, 28, 28] in memory and are repeated to RGB [3, 28, 28] when read.

The feature-cache fingerprint of a data set is the sha256 of every file's content (the files are tens of
MB), computed when the arrays are decoded and kept with them, so it always describes the arrays served.
"""

from __future__ import annotations

import functools
import os
import pickle
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import cache_dir
from ..errors import InputError
from ..registry import Registry
from .base import ImageSource
from .hashing import file_digest
from .idx import read_idx

#: Folder with the Debian package ``dataset-fashion-mnist``.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
_CIFAR100_FILES = {"train": ("train",), "test": ("test",)}


def data_cache_dir() -> Path:
    """Folder that downloads go to: ``$GENBENCH_CACHE/data`` or ``~/.cache/genbench/data``."""
    return cache_dir() / "data"


@dataclass(frozen=True)
class DatasetDef:
    """How to find, read and download one split of one data set."""

    name: str
    split: str
    num_classes: int
    image_shape: tuple[int, ...]  # one image as stored: (H, W) or (H, W, 3)
    subdirs: tuple[str, ...]  # candidate folders relative to each search root ("" = the root)
    filenames: tuple[str, ...]  # files that must all be present (IDX: without .gz)
    reader: Callable[[tuple[Path, ...]], tuple[np.ndarray, np.ndarray]]
    downloader: Callable[[Path], None] | None = None
    system_dirs: tuple[Path, ...] = ()
    how_to_get: str = ""
    gz_optional: bool = False  # IDX files may be plain or gzipped
    #: further (subdirs, filenames) layouts, tried in each folder after the first (CIFAR: the python version)
    layouts: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    labelled: bool = True  # False: a split without labels (STL-10 unlabeled)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.split}"


#: spec ("fashion-mnist:train", ...) -> DatasetDef
DATASETS: Registry[DatasetDef] = Registry("dataset", flag="--dataset")


# ----------------------------------------------------------------------------- the source


class DatasetSource(ImageSource):
    """A data set split held in memory as uint8 [N, H, W] (gray) or [N, H, W, 3] (colour), with labels."""

    kind = "dataset"

    def __init__(
        self,
        spec: str,
        images: np.ndarray,
        labels: np.ndarray | None,
        files: tuple[Path, ...],
        digests: tuple[str, ...] | None = None,
    ) -> None:
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
            raise InputError(f"{spec}: expected uint8 images [N,H,W] or [N,H,W,3], got {images.dtype} {images.shape}")
        if labels is not None and labels.shape != (len(images),):
            raise InputError(f"{spec}: {len(images)} images but labels of shape {labels.shape}")
        self.location = spec
        self.spec = spec
        self.files = files
        self._digests = digests  # "size:sha256" of each file as decoded; None: hashed when first asked
        self._images = images
        self._labels = None if labels is None else labels.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return len(self._images)

    def _check_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.spec}: index {index} out of range [0, {len(self)})")
        return int(index)

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8 [3, H, W]."""
        i = self._check_index(index)
        return _to_nchw(self._images[i : i + 1])[0]

    def read_batch(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` (stop clipped to len) as uint8 [B, 3, H, W]."""
        if start < 0 or stop < start:
            raise IndexError(f"{self.spec}: bad batch range {start}:{stop}")
        return _to_nchw(self._images[start:stop])

    def key(self, index: int) -> str:
        return f"{self.spec}#{self._check_index(index)}"

    def label(self, index: int) -> int | None:
        i = self._check_index(index)
        return None if self._labels is None else int(self._labels[i])

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    def labels(self) -> np.ndarray | None:
        """All labels as int64 [N] (a copy), None for a split without labels."""
        return None if self._labels is None else self._labels.copy()

    def fingerprint(self) -> str:
        """``SPEC|name:size:sha256|...`` over the data set's files: their content, not just their names."""
        if self._digests is None:
            self._digests = tuple(f"{_stamp(p)[1]}:{file_digest(p)}" for p in self.files)
        parts = "|".join(f"{p.name}:{d}" for p, d in zip(self.files, self._digests))
        return f"{self.spec}|{parts}"


def _to_nchw(images: np.ndarray) -> np.ndarray:
    """[B,H,W] gray -> [B,3,H,W] (channel repeated); [B,H,W,3] -> [B,3,H,W]; always a fresh contiguous array."""
    if images.ndim == 3:
        return np.repeat(images[:, None], 3, axis=1)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- public API


def open_dataset(
    spec: str, data_dir: str | os.PathLike | None = None, *, download: bool | None = None
) -> DatasetSource:
    """Open data set ``spec`` (e.g. ``"fashion-mnist:train"``) as a labelled ImageSource.

    ``data_dir`` (CLI ``--data-dir``) is searched first; see the module docstring for the rest of
    the lookup order. ``download`` None means "download when online unless GENBENCH_OFFLINE=1".
    Raises ConfigError for an unknown spec and InputError when the files are missing or malformed.
    """
    definition = DATASETS.get(spec)
    files = _locate(definition, data_dir, download)
    images, labels, digests = _read_cached(definition.spec, files)
    return DatasetSource(definition.spec, images, labels if definition.labelled else None, files, digests)


def load_dataset_arrays(
    spec: str, data_dir: str | os.PathLike | None = None, *, download: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, H, W] (gray) or [N, H, W, 3] (colour) and labels int64 [N] of data set ``spec``.

    The arrays are shared with the per-process cache and read-only; copy them before changing them.
    """
    definition = DATASETS.get(spec)
    files = _locate(definition, data_dir, download)
    images, labels, _ = _read_cached(definition.spec, files)
    return images, labels


def dataset_info(spec: str) -> DatasetDef:
    """The definition of ``spec`` (num_classes, image_shape, ...) without touching any file."""
    return DATASETS.get(spec)


# ----------------------------------------------------------------------------- locating files


def _search_roots(definition: DatasetDef, data_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    roots: list[tuple[Path, str]] = []
    if data_dir is not None:
        roots.append((Path(data_dir), "data_dir / --data-dir"))
    env = os.environ.get("GENBENCH_DATA")
    if env:
        roots.append((Path(env), "GENBENCH_DATA"))
    roots.extend((d, "system package") for d in definition.system_dirs)
    roots.append((data_cache_dir(), "download cache"))
    return roots


def _layouts(definition: DatasetDef) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return [(definition.subdirs, definition.filenames), *definition.layouts]


def _find_in(folder: Path, definition: DatasetDef, filenames: tuple[str, ...] | None = None) -> tuple[Path, ...] | None:
    found = []
    for name in definition.filenames if filenames is None else filenames:
        candidates = [folder / name, folder / f"{name}.gz"] if definition.gz_optional else [folder / name]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return tuple(found)


def _locate(definition: DatasetDef, data_dir: str | os.PathLike | None, download: bool | None) -> tuple[Path, ...]:
    looked: list[str] = []
    for root, why in _search_roots(definition, data_dir):
        for subdirs, filenames in _layouts(definition):
            for sub in subdirs:
                folder = root / sub if sub else root
                files = _find_in(folder, definition, filenames)
                if files is not None:
                    return tuple(f.resolve() for f in files)
                looked.append(f"{folder} ({why})")
    outcome = _try_download(definition, download)
    if outcome is None:
        cache = data_cache_dir()
        for subdirs, filenames in _layouts(definition):
            for sub in subdirs:
                files = _find_in(cache / sub if sub else cache, definition, filenames)
                if files is not None:
                    return tuple(f.resolve() for f in files)
        outcome = f"download finished but the files are not in {cache}"
    wanted = ", ".join(f"{n}[.gz]" if definition.gz_optional else n for n in definition.filenames)
    raise InputError(
        f"data set {definition.spec!r}: files not found ({wanted}). Looked in: {'; '.join(looked)}. "
        f"Download: {outcome}. To get the data: {definition.how_to_get}"
    )


def _try_download(definition: DatasetDef, download: bool | None) -> str | None:
    """Download into the cache; None on success, else why not (one phrase)."""
    if definition.downloader is None:
        return "not available for this data set"
    if download is False:
        return "not attempted (download=False)"
    if download is None and os.environ.get("GENBENCH_OFFLINE", "") not in ("", "0"):
        return "not attempted (GENBENCH_OFFLINE is set)"
    try:
        definition.downloader(data_cache_dir())
    except InputError as exc:
        return f"failed ({exc})"
    except (OSError, RuntimeError, ValueError) as exc:
        return f"failed ({type(exc).__name__}: {exc})"
    return None


def _check_online(url: str, timeout_s: float = 5.0) -> None:
    """Fail fast (OSError) when ``url``'s host cannot be reached, instead of hanging in urllib."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=timeout_s):
        pass


# ----------------------------------------------------------------------------- reading (cached)


def _stamp(path: Path) -> tuple[str, int, int, int, int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot stat data set file ({exc.strerror or exc})") from None
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _read_cached(spec: str, files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images, labels and each file's ``size:sha256``, decoded once per (path, size, mtime_ns, inode, ctime_ns)."""
    return _read_uncached_once(spec, tuple(_stamp(p) for p in files))


@functools.lru_cache(maxsize=8)
def _read_uncached_once(
    spec: str, stamps: tuple[tuple[str, int, int, int, int], ...]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    definition = DATASETS.get(spec)
    paths = tuple(Path(s[0]) for s in stamps)
    digests = tuple(f"{s[1]}:{file_digest(p)}" for s, p in zip(stamps, paths))
    images, labels = definition.reader(paths)
    if tuple(_stamp(p) for p in paths) != stamps:  # digests and arrays must describe the same bytes
        raise InputError(f"{spec}: its files changed while being read ({', '.join(map(str, paths))}); run again")
    if images.shape[1:] != definition.image_shape:
        raise InputError(
            f"{stamps[0][0]}: expected {spec} images of shape {definition.image_shape}, got {images.shape[1:]}"
        )
    if definition.labelled and len(labels) and (labels.min() < 0 or labels.max() >= definition.num_classes):
        raise InputError(
            f"{stamps[-1][0]}: labels must lie in [0, {definition.num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels, digests


def clear_cache() -> None:
    """Forget decoded arrays (tests, or to free memory)."""
    _read_uncached_once.cache_clear()


def _read_idx_pair(files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = files
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise InputError(f"{images_path}: expected uint8 IDX images [N, H, W], got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise InputError(f"{labels_path}: expected uint8 IDX labels [N], got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise InputError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    return images, labels.astype(np.int64)


# --- CIFAR pickles, read without running arbitrary code

_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's ndarray reconstruction function
_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only plain containers, strings, numbers and numpy arrays; any other global is refused."""

    def __init__(self, fh, path: Path) -> None:
        super().__init__(fh, encoding="latin1")  # the CIFAR files were written by Python 2
        self._path = path

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise InputError(
                f"{self._path}: refusing to load {module}.{name} from a pickle; "
                "a CIFAR batch holds only dicts, lists, strings and numpy arrays"
            ) from None


def read_cifar_batch(path: Path) -> dict[str, object]:
    """One CIFAR "python version" batch file as a dict with str keys (``data``, ``labels``, ...)."""
    try:
        with open(path, "rb") as fh:
            obj = _RestrictedUnpickler(fh, path).load()
    except OSError as exc:
        raise InputError(f"{path}: cannot read CIFAR batch ({exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(f"{path}: not a valid CIFAR batch pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _cifar_reader(label_key: str) -> Callable[[tuple[Path, ...]], tuple[np.ndarray, np.ndarray]]:
    def read(files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for path in files:
            batch = read_cifar_batch(path)
            data, lab = batch.get("data"), batch.get(label_key)
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
                raise InputError(f"{path}: expected 'data' as uint8 [N, 3072], got {got}")
            if not isinstance(lab, (list, np.ndarray)) or len(lab) != len(data):
                raise InputError(f"{path}: expected {len(data)} entries under {label_key!r}")
            try:
                lab_arr = np.asarray(lab, dtype=np.int64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{path}: {label_key!r} are not integers ({exc})") from None
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(lab_arr)
        return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)

    return read


def _read_bytes(path: Path, record: int, what: str) -> np.ndarray:
    """The whole file as uint8, checked to hold a whole number (>= 1) of ``record``-byte records."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if data.size == 0 or data.size % record:
        raise InputError(f"{path}: {data.size} bytes is not a whole number of {record}-byte {what} records")
    return data


def _cifar_binary(files: tuple[Path, ...], label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR "binary version" files: records of ``label_bytes`` label bytes (CIFAR-100: coarse, fine; the last
    is kept) then 3072 bytes, the 1024 red, 1024 green and 1024 blue values of a 32 x 32 image in row-major order."""
    images, labels = [], []
    for path in files:
        rec = _read_bytes(path, label_bytes + 3072, "CIFAR").reshape(-1, label_bytes + 3072)
        labels.append(rec[:, label_bytes - 1].astype(np.int64))
        images.append(rec[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _cifar_any(label_key: str, label_bytes: int) -> Callable[[tuple[Path, ...]], tuple[np.ndarray, np.ndarray]]:
    """The binary version's reader for ``.bin`` files, else the python version's (restricted unpickler)."""
    pickled = _cifar_reader(label_key)

    def read(files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
        if all(p.suffix == ".bin" for p in files):
            return _cifar_binary(files, label_bytes)
        return pickled(files)

    return read


def _stl10_reader(files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
    """STL-10 binary: ``*_X.bin`` uint8 images of 3 x 96 x 96 stored column-major (per channel, column by column),
    ``*_y.bin`` one uint8 label 1..10 per image (returned 0..9); the unlabeled split has no ``_y`` file."""
    x = _read_bytes(files[0], 3 * 96 * 96, "STL-10 image")
    images = np.ascontiguousarray(x.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1))  # (c, w, h) -> (h, w, c)
    if len(files) == 1:
        return images, np.zeros(0, dtype=np.int64)
    y = _read_bytes(files[1], 1, "STL-10 label").astype(np.int64)
    if len(y) != len(images):
        raise InputError(f"{files[1]}: {len(y)} labels for the {len(images)} images of {files[0]}")
    if y.min() < 1 or y.max() > 10:
        raise InputError(f"{files[1]}: STL-10 labels are 1..10, got {y.min()}..{y.max()}")
    return images, y - 1


# ----------------------------------------------------------------------------- downloads (online only)


# Hosts probed (5 s timeout) before torchvision is even imported, so an offline machine fails at once.
# They mirror the URLs in torchvision's dataset classes, which do the actual (md5-checked) download.
_PROBE_URLS = {
    "FashionMNIST": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "MNIST": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
}


def _probe(torchvision_class: str) -> None:
    errors = []
    for url in _PROBE_URLS[torchvision_class]:
        try:
            _check_online(url)
            return
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    raise OSError("offline? " + "; ".join(errors))


def _idx_downloader(torchvision_class: str, layout: str, split: str) -> Callable[[Path], None]:
    def download(cache: Path) -> None:
        _probe(torchvision_class)
        import torchvision.datasets as tvd
        from torchvision.datasets.utils import download_and_extract_archive

        cls = getattr(tvd, torchvision_class)
        wanted = {f"{n}.gz" for n in _IDX_FILES[split]}
        resources = [(f, md5) for f, md5 in cls.resources if f in wanted]
        errors = []
        for mirror in cls.mirrors:
            try:
                for filename, md5 in resources:
                    download_and_extract_archive(
                        mirror + filename, download_root=str(cache / layout), filename=filename, md5=md5
                    )
                return
            except (OSError, RuntimeError) as exc:
                errors.append(f"{mirror}: {exc}")
        raise OSError("; ".join(errors))

    return download


#: The binary archives, fetched with genbench's downloader (:mod:`genbench.sources.archives`): URL, top-level
#: folder, most bytes downloaded, most bytes unpacked. None publishes a sha256 (the first download's is recorded).
_ARCHIVES = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "cifar-10-batches-bin",
                200_000_000, 250_000_000),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "cifar-100-binary",
                 200_000_000, 250_000_000),
    "stl10": ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", "stl10_binary",
              3_000_000_000, 3_200_000_000),
}


def _archive_downloader(name: str, how_to_get: str) -> Callable[[Path], None]:
    """Download ``name``'s binary archive into the cache and unpack it there (raises InputError)."""
    url, top, max_download, max_unpacked = _ARCHIVES[name]

    def download(cache: Path) -> None:
        from .archives import fetch_and_extract

        fetch_and_extract(url, cache, top=top, what=f"data set {name} ({url})", offline=f"To get the data: {how_to_get}",
                          max_download=max_download, max_unpacked=max_unpacked)

    return download


# ----------------------------------------------------------------------------- registrations

_HOW_FASHION = (
    "`sudo apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist), "
    "or put the four IDX files in a folder and pass it as data_dir / --data-dir or set GENBENCH_DATA=FOLDER, "
    "or run once on a machine with internet access to download them into the cache"
)
_HOW_MNIST = (
    "put the four IDX files in FOLDER/mnist/ (or torchvision's FOLDER/MNIST/raw/) and pass FOLDER as "
    "data_dir / --data-dir or set GENBENCH_DATA=FOLDER, or run once on a machine with internet access"
)
_HOW_CIFAR = (
    "unpack the CIFAR 'binary version' archive ({binary}) or the 'python version' ({archive}) into FOLDER (giving "
    "FOLDER/{bsub}/ or FOLDER/{sub}/) and pass FOLDER as data_dir / --data-dir or set GENBENCH_DATA=FOLDER, or run "
    "once on a machine with internet access"
)
_HOW_STL10 = (
    "unpack stl10_binary.tar.gz (https://ai.stanford.edu/~acoates/stl10/) into FOLDER (giving FOLDER/stl10_binary/) "
    "and pass FOLDER as data_dir / --data-dir or set GENBENCH_DATA=FOLDER, or run once on a machine with internet "
    "access"
)
_HOW_CIFAR10 = _HOW_CIFAR.format(archive="cifar-10-python.tar.gz", sub="cifar-10-batches-py",
                                 binary="cifar-10-binary.tar.gz", bsub="cifar-10-batches-bin")
_HOW_CIFAR100 = _HOW_CIFAR.format(archive="cifar-100-python.tar.gz", sub="cifar-100-python",
                                  binary="cifar-100-binary.tar.gz", bsub="cifar-100-binary")

for _split in ("train", "test"):
    DATASETS.register(f"fashion-mnist:{_split}")(
        DatasetDef(
            name="fashion-mnist",
            split=_split,
            num_classes=10,
            image_shape=(28, 28),
            subdirs=("", "fashion-mnist", "FashionMNIST/raw"),
            filenames=_IDX_FILES[_split],
            reader=_read_idx_pair,
            downloader=_idx_downloader("FashionMNIST", "FashionMNIST/raw", _split),
            system_dirs=(DEBIAN_FASHION_MNIST,),
            how_to_get=_HOW_FASHION,
            gz_optional=True,
        )
    )
    DATASETS.register(f"mnist:{_split}")(
        DatasetDef(
            name="mnist",
            split=_split,
            num_classes=10,
            image_shape=(28, 28),
            subdirs=("mnist", "MNIST/raw"),
            filenames=_IDX_FILES[_split],
            reader=_read_idx_pair,
            downloader=_idx_downloader("MNIST", "MNIST/raw", _split),
            how_to_get=_HOW_MNIST,
            gz_optional=True,
        )
    )
    DATASETS.register(f"cifar10:{_split}")(
        DatasetDef(
            name="cifar10",
            split=_split,
            num_classes=10,
            image_shape=(32, 32, 3),
            subdirs=("cifar-10-batches-bin",),
            filenames=tuple(f"{f}.bin" for f in _CIFAR10_FILES[_split]),
            layouts=((("cifar-10-batches-py",), _CIFAR10_FILES[_split]),),
            reader=_cifar_any("labels", 1),
            downloader=_archive_downloader("cifar10", _HOW_CIFAR10),
            how_to_get=_HOW_CIFAR10,
        )
    )
    DATASETS.register(f"cifar100:{_split}")(
        DatasetDef(
            name="cifar100",
            split=_split,
            num_classes=100,
            image_shape=(32, 32, 3),
            subdirs=("cifar-100-binary",),
            filenames=tuple(f"{f}.bin" for f in _CIFAR100_FILES[_split]),
            layouts=((("cifar-100-python",), _CIFAR100_FILES[_split]),),
            reader=_cifar_any("fine_labels", 2),
            downloader=_archive_downloader("cifar100", _HOW_CIFAR100),
            how_to_get=_HOW_CIFAR100,
        )
    )


for _split, _files in (("train", ("train_X.bin", "train_y.bin")), ("test", ("test_X.bin", "test_y.bin")),
                       ("unlabeled", ("unlabeled_X.bin",))):
    DATASETS.register(f"stl10:{_split}")(
        DatasetDef(
            name="stl10",
            split=_split,
            num_classes=10,
            image_shape=(96, 96, 3),
            subdirs=("stl10_binary", ""),
            filenames=_files,
            reader=_stl10_reader,
            downloader=_archive_downloader("stl10", _HOW_STL10),
            how_to_get=_HOW_STL10,
            labelled=_split != "unlabeled",
        )
    )
