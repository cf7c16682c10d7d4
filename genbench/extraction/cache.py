"""A content-addressed cache of extracted features: an unchanged input is extracted once.

Re-scoring an unchanged folder, or scoring it against a second reference, reads its features from the
cache instead of running the network again. The key (:func:`cache_key`) is the sha256 of

- :data:`CACHE_FORMAT_VERSION` (bumped whenever the stored arrays or the statistics convention change),
- the source's ``fingerprint()``, its absolute location (a moved folder or file is extracted again), its
  length and whether it has labels,
- the extractor identity (name, layer, preprocessing, weights sha256, feature dimension),
- the numeric precision (float32, tf32, bf16).

What each kind of source's ``fingerprint()`` covers (see :mod:`genbench.sources.hashing`):

- data set (``fashion-mnist:train``, ``cifar10:test``, ...): the spec and the sha256 of every file's whole
  content (the files are tens of MB; hashed once per process). Any change of content is noticed.
- archive (``.zip``, ``.tar[.gz|.bz2|.xz]``) and array file (``.npy``, ``.npz``): up to 256 MiB, the sha256
  of the whole file (once per process); above, the file's size, mtime_ns and inode plus the sha256 of its
  first and last MiB. Also the image member list (zip: name, size, CRC-32; tar: name, size) or the array's
  shape, dtype and layout. A content change is noticed, except in a file over 256 MiB rewritten in place
  with size, mtime and inode restored and both ends unchanged.
- folder: every image's relative path, size, mtime_ns and inode; images are not read (hashing every image
  would make a cached re-score of a large folder as slow as reading it). A file rewritten in place with the
  same size, the same inode and its mtime restored is not noticed (the rule of make and rsync); touch it or
  pass ``--no-cache``.
- generator (``baselines``): the checkpoint's sha256, the number of images, the seed and the labels asked for;
  ``""`` (not cached) for a model not loaded from a file.
- wrappers (subsets, transforms, probes): the wrapped source's fingerprint plus what the wrapper changes;
  ``""`` when the wrapped source has none.
- in-memory array or tensor: ``""``: never cached (hashing the pixels on every call would cost about what
  extracting them does).

Within one process, a digest is memoised per (path, size, mtime_ns, inode, ctime_ns); ctime cannot be set
back (``os.utime`` sets it to now), so even a rewrite that restores size and mtime is hashed again.

Not in the key: batch size, worker count and device; they change features only by float32 rounding
(about 1e-7 relative). A file that only got a new mtime (``touch``) keeps its entry, except in a folder or
over 256 MiB.

Layout under ``genbench.config.cache_dir() / "features"`` (``$GENBENCH_CACHE``, else ``~/.cache/genbench``)::

    <key[:2]>/<key>.npz                 a complete entry
    partial/<key>/<start>-<stop>.npz    chunks of an extraction in progress or interrupted

An entry holds ``features`` float32 [N, D], ``logits`` float32 [N, K] (when the extractor has a head),
``labels`` int64 [N] (when the source has labels), ``files`` str [N], the exact float64 sums ``n``,
``total`` [D] and ``outer`` [D, D], and ``meta`` (JSON). A chunk holds the same arrays for its images.
Everything is plain ``.npz`` read with ``allow_pickle=False`` and written atomically (temporary file,
then rename); an entry is assembled by streaming the chunk files, so memory stays bounded by one chunk.
An unreadable entry or chunk is reported with a RuntimeWarning, removed, and extracted again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import cache_dir
from ..errors import InputError
from ..sources.base import ImageSource
from ..stats.feature_stats import FeatureStats
from ..util.atomic import atomic_path
from ..version import __version__
from .engine import Chunk, ProgressCounter, iter_chunks, sum_stats
from .request import ExtractionRequest

#: Bump when the stored arrays, their meaning or the statistics convention change.
CACHE_FORMAT_VERSION = 1

_REQUIRED = ("n", "total", "outer", "features", "meta")
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, json.JSONDecodeError)
#: What assembling an entry can raise when the disk is full or another process removed the chunks meanwhile.
ASSEMBLY_ERRORS = (OSError, ValueError, KeyError, zipfile.BadZipFile)


def cache_key(source: ImageSource, identity: dict, precision: str = "float32") -> str | None:
    """Hex sha256 naming ``source`` extracted by the extractor with ``identity``; None when not cacheable."""
    fingerprint = source.fingerprint()
    if not fingerprint:
        return None
    doc = {
        "format": f"genbench-features-v{CACHE_FORMAT_VERSION}",
        "fingerprint": fingerprint,
        "location": _where(source.location),
        "n": len(source),
        "has_labels": bool(source.has_labels),
        "identity": {k: identity[k] for k in sorted(identity)},
        "precision": precision,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _where(location: str) -> str:
    """An existing path made absolute (the same folder from any working directory); other locations as they are."""
    return os.path.abspath(location) if location and os.path.exists(location) else location


@dataclass
class CacheEntry:
    """A complete entry: statistics loaded, per-image arrays read on demand (each fully, on request)."""

    path: Path
    key: str
    stats: FeatureStats
    meta: dict
    members: frozenset[str]

    @property
    def n(self) -> int:
        return self.stats.n

    def _read(self, name: str) -> np.ndarray | None:
        if name not in self.members:
            return None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                return data[name]
        except _READ_ERRORS as exc:
            raise InputError(f"feature cache entry {self.path}: cannot read {name!r} ({exc}); "
                             "run `genbench cache clear` or pass --no-cache") from None

    def features(self) -> np.ndarray:
        """float32 [N, D]."""
        features = self._read("features")
        assert features is not None  # a required member (_REQUIRED)
        return features

    def logits(self) -> np.ndarray | None:
        """float32 [N, K], or None when the extractor has no classifier head."""
        return self._read("logits")

    def labels(self) -> np.ndarray | None:
        """int64 [N], or None when the source has no labels."""
        return self._read("labels")

    def files(self) -> list[str]:
        files = self._read("files")
        assert files is not None  # written by write_entry (not in _REQUIRED: an entry without it fails here)
        return [str(f) for f in files]


@dataclass(frozen=True)
class CacheInfo:
    """What ``genbench cache info`` prints."""

    root: Path
    entries: int
    entry_bytes: int
    partial_extractions: int
    partial_bytes: int

    def to_dict(self) -> dict:
        return {"root": str(self.root), "entries": self.entries, "entry_bytes": self.entry_bytes,
                "partial_extractions": self.partial_extractions, "partial_bytes": self.partial_bytes}


class FeatureCache:
    """The on-disk store; ``root`` defaults to ``cache_dir() / "features"``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "features"

    # ------------------------------------------------------------------ paths

    def entry_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def partial_dir(self, key: str) -> Path:
        return self.root / "partial" / key

    def chunk_path(self, key: str, start: int, stop: int) -> Path:
        return self.partial_dir(key) / f"{start:012d}-{stop:012d}.npz"

    # ------------------------------------------------------------------ entries

    def load(self, key: str, n: int, dim: int) -> CacheEntry | None:
        """The entry for ``key`` if present and consistent with ``n`` images of ``dim`` features, else None."""
        path = self.entry_path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                members = frozenset(data.files)
                missing = [m for m in _REQUIRED if m not in members]
                if missing:
                    raise ValueError(f"missing arrays {', '.join(missing)}")
                meta = json.loads(str(data["meta"]))
                stats = FeatureStats(int(data["n"]), data["total"], data["outer"])
            shapes = _member_shapes(path, ("features", "logits", "labels"))
            if meta.get("key") != key or stats.n != n or stats.total.shape != (dim,) or stats.outer.shape != (dim, dim):
                raise ValueError(f"holds n={stats.n}, d={stats.dim} under key {meta.get('key')}, expected n={n}, d={dim}")
            if shapes["features"] != (n, dim) or ("logits" in shapes and shapes["logits"][0] != n) or (
                "labels" in shapes and shapes["labels"] != (n,)
            ):
                raise ValueError(f"array shapes {shapes} do not match n={n}, d={dim}")
            if stats.total.dtype != np.float64 or stats.outer.dtype != np.float64:
                raise ValueError("statistics are not float64")
        except _READ_ERRORS as exc:
            self._discard(path, exc)
            return None
        return CacheEntry(path, key, stats, meta, members)

    def write_entry(self, key: str, ranges: list[tuple[int, int]], files: list[str], meta: dict) -> Path:
        """Assemble the chunk files of ``ranges`` (contiguous, covering 0..N) into the entry for ``key``.

        Streams one chunk at a time; the statistics are the chunk sums added in order. Returns the path.
        """
        if not ranges or ranges[0][0] != 0 or any(a[1] != b[0] for a, b in itertools.pairwise(ranges)):
            raise ValueError(f"chunks must cover 0..N contiguously, got {ranges[:3]}...")
        n = ranges[-1][1]
        paths = [self.chunk_path(key, s, e) for s, e in ranges]
        dim = _chunk_stats(paths[0]).dim
        stats = sum_stats((_chunk_stats(p) for p in paths), dim)  # one d x d matrix in memory at a time
        shapes = _member_shapes(paths[0], ("logits", "labels"))
        target = self.entry_path(key)
        doc = {**meta, "key": key, "format": CACHE_FORMAT_VERSION, "genbench_version": __version__,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_member(zf, "n", np.asarray(stats.n, dtype=np.int64))
            _write_member(zf, "total", stats.total)
            _write_member(zf, "outer", stats.outer)
            _stream_member(zf, "features", np.float32, (n, dim), paths)
            if "logits" in shapes:
                _stream_member(zf, "logits", np.float32, (n, shapes["logits"][1]), paths)
            if "labels" in shapes:
                _stream_member(zf, "labels", np.int64, (n,), paths)
            _write_member(zf, "files", np.asarray(files, dtype=np.str_))
            _write_member(zf, "meta", np.asarray(json.dumps(doc, sort_keys=True)))
        return target

    # ------------------------------------------------------------------ chunks

    def has_chunk(self, key: str, start: int, stop: int) -> bool:
        return self.chunk_path(key, start, stop).is_file()

    def save_chunk(self, key: str, chunk: Chunk) -> None:
        """Write one chunk (it must carry features; logits and labels when it has them)."""
        arrays = {"n": np.asarray(chunk.stats.n, dtype=np.int64), "total": chunk.stats.total,
                  "outer": chunk.stats.outer, "features": np.asarray(chunk.features, dtype=np.float32),
                  "meta": np.asarray(json.dumps({"key": key, "start": chunk.start, "stop": chunk.stop}))}
        if chunk.logits is not None:
            arrays["logits"] = np.asarray(chunk.logits, dtype=np.float32)
        if chunk.labels is not None:
            arrays["labels"] = np.asarray(chunk.labels, dtype=np.int64)
        with atomic_path(self.chunk_path(key, chunk.start, chunk.stop)) as tmp:
            np.savez(tmp, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle; no such key

    def load_chunk(self, key: str, start: int, stop: int, dim: int, keep_features: bool, keep_logits: bool) -> Chunk | None:
        """A saved chunk (features and logits only when asked), or None when absent or unreadable."""
        path = self.chunk_path(key, start, stop)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta != {"key": key, "start": start, "stop": stop}:
                    raise ValueError(f"belongs to {meta}")
                stats = FeatureStats(int(data["n"]), data["total"], data["outer"])
                features = data["features"] if keep_features else None
                logits = data["logits"] if keep_logits and "logits" in data.files else None
                labels = data["labels"] if "labels" in data.files else None
            if stats.n != stop - start or stats.dim != dim or (features is not None and features.shape != (stop - start, dim)):
                raise ValueError(f"holds n={stats.n}, d={stats.dim}, expected n={stop - start}, d={dim}")
        except _READ_ERRORS as exc:
            self._discard(path, exc)
            return None
        return Chunk(start, stop, stats, features, logits, labels)

    def discard_partial(self, key: str) -> None:
        shutil.rmtree(self.partial_dir(key), ignore_errors=True)

    # ------------------------------------------------------------------ housekeeping

    def info(self) -> CacheInfo:
        entries = [p for p in self.root.glob("??/*.npz") if p.is_file()]
        partial = [p for p in (self.root / "partial").glob("*") if p.is_dir()]
        partial_bytes = sum(f.stat().st_size for d in partial for f in d.glob("*.npz") if f.is_file())
        return CacheInfo(self.root, len(entries), sum(p.stat().st_size for p in entries), len(partial), partial_bytes)

    def clear(self) -> CacheInfo:
        """Remove every entry and partial extraction (only genbench's own files); return what was there."""
        before = self.info()
        for path in self.root.glob("??/*.npz"):
            path.unlink(missing_ok=True)
        for folder in self.root.glob("??"):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        shutil.rmtree(self.root / "partial", ignore_errors=True)
        return before

    def _discard(self, path: Path, exc: BaseException) -> None:
        warnings.warn(f"feature cache file {path} is unreadable ({exc}); removed, extracting again",
                      RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- resumable extraction


def resumable_chunks(
    store: FeatureCache,
    key: str,
    request: ExtractionRequest,
    ranges: list[tuple[int, int]],
    bar: ProgressCounter | None = None,
) -> Iterator[tuple[Chunk, bool]]:
    """Yield ``(chunk, loaded)`` for each range in order: chunks saved by an earlier (interrupted) run are
    loaded, the others extracted (runs of missing chunks in one loader pass) and saved before they are yielded.
    Chunks are saved whole; features and logits are dropped from the yielded chunks unless ``request`` keeps them.
    A chunk that cannot be saved (disk full, read-only cache) gives one RuntimeWarning; the run goes on without
    saving."""
    keep_features, keep_logits = request.keep_features, request.keep_logits
    whole = dataclasses.replace(request, keep_features=True, keep_logits=True)  # what a saved chunk holds
    dim = request.extractor.feature_dim
    saving = True
    i = 0
    while i < len(ranges):
        start, stop = ranges[i]
        if store.has_chunk(key, start, stop):
            chunk = store.load_chunk(key, start, stop, dim, keep_features, keep_logits)
            if chunk is not None:
                if bar is not None:
                    bar.update(stop - start)
                yield chunk, True
                i += 1
                continue
        j = i + 1
        while j < len(ranges) and not store.has_chunk(key, *ranges[j]):
            j += 1
        for chunk in iter_chunks(whole, ranges[i:j], bar):
            if saving:
                try:
                    store.save_chunk(key, chunk)
                except OSError as exc:
                    warnings.warn(f"feature cache {store.root}: cannot save ({exc}); going on without caching",
                                  RuntimeWarning, stacklevel=2)
                    saving = False
            if not keep_features:
                chunk.features = None
            if not keep_logits:
                chunk.logits = None
            yield chunk, False
        i = j


# ----------------------------------------------------------------------------- npz streaming helpers


def _chunk_stats(path: Path) -> FeatureStats:
    with np.load(path, allow_pickle=False) as data:
        return FeatureStats(int(data["n"]), data["total"], data["outer"])


def _member_shapes(path: Path, names: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Shapes of the named .npy members of an .npz, read from their headers (absent members are left out)."""
    shapes = {}
    with zipfile.ZipFile(path) as zf:
        present = set(zf.namelist())
        for name in names:
            if f"{name}.npy" not in present:
                continue
            with zf.open(f"{name}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = reader(fh)
            shapes[name] = tuple(shape)
    return shapes


def _write_member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array(fh, np.asarray(array), allow_pickle=False)


def _stream_member(zf: zipfile.ZipFile, name: str, dtype, shape: tuple[int, ...], chunk_paths: list[Path]) -> None:
    """Write ``name`` [shape] of ``dtype`` as one .npy member from the same member of each chunk file, in order."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    rows = 0
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array_header_2_0(fh, header)
        for path in chunk_paths:
            with np.load(path, allow_pickle=False) as data:
                part = np.ascontiguousarray(data[name], dtype=dtype)
            if part.shape[1:] != shape[1:]:
                raise ValueError(f"{path}: {name} has shape {part.shape}, expected [*, {shape[1:]}]")
            fh.write(part.tobytes())
            rows += part.shape[0]
    if rows != shape[0]:
        raise ValueError(f"{name}: chunks hold {rows} rows, expected {shape[0]}")
