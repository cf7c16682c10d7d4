"""Fetching published references into the user store: download (or a hand-copied file), check, import.

:func:`fetch_reference` takes a :class:`~genbench.stats.catalogue.CatalogueEntry` and leaves one store entry per
component in the user store (``$GENBENCH_CACHE/reference_stats``, :func:`genbench.stats.reference.user_dir`),
each with the catalogue's provenance: the genbench extractor, layer and preprocessing policy that reproduce the
features, the weights sha256 where one is known, n, the URL and sha256 of the file it came from, and both
packagings ("reference: TF graph ...; features: PyTorch port ..."). Nobody types a sha256 or a layer.

The bytes are checked against the entry's published sha256 or, where none is published (every file of the
field so far), against the sha256 recorded when this store first imported the file
(``catalogue-sha256.json`` in the store): the first copy's digest is printed and recorded, every later copy,
downloaded or given with ``--from FILE``, must have it. A digest is recorded only after the file was read and
imported successfully, so an error page or a damaged file is never pinned.

Formats (the readers never run pickled code and read arrays bounded, ``allow_pickle=False``):

========================= ==========================================================================
``clean-fid-npz``         ``mu`` [2048], ``sigma`` [2048, 2048]
``clean-fid-kid-npz``     ``feats`` [N, 2048]: stored as a genbench feature file (for KID)
``ttur-npz``, ``edm-npz`` ``mu``, ``sigma``
``adm-npz``               ``mu``/``sigma`` (pool_3) and ``mu_s``/``sigma_s`` (layer ``spatial``); the file
                          itself is kept in the store for its ``arr_0`` images (precision and recall)
``edm2-pkl``              a pickle of ``{"num_images", "fid": {mu, sigma}, "fd_dinov2": {mu, sigma}}``,
                          read with a restricted unpickler (:mod:`genbench.stats.foreign`)
``lth14-npz``             ``mu``, ``sigma`` (MAR, FractalGen), also checked against the git blob SHA-1 the
                          repository's tree publishes
========================= ==========================================================================

Covariances are stored with genbench's /(N-1) normalisation; an entry whose covariance was divided by N
(``covariance="biased"``) is multiplied by N/(N-1) exactly once, and the conversion is recorded.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReferenceStatsError
from ..util.atomic import atomic_path, write_text_atomic
from ..util.files import sha256_file
from ..version import __version__
from .catalogue import CatalogueEntry, Component
from .io import FeatureFile, checked_gaussian, save_features, save_gaussian
from .reference import ManifestEntry, read_manifest, user_dir, write_manifest

PINS_FILE = "catalogue-sha256.json"
DOWNLOADS = "downloads"


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_reference` did: the store entries, the file's sha256 and how it was checked."""

    entries: tuple[ManifestEntry, ...]
    sha256: str
    check: str  # "published", "recorded", "recorded now" or "already in the store"


def _say(text: str) -> None:
    print(text, file=sys.stderr)


# ----------------------------------------------------------------------------- recorded sha256


def pins_path(folder: Path | None = None) -> Path:
    return (folder or user_dir()) / PINS_FILE


def read_pins(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The sha256 recorded per catalogue id at first import (``{}`` when none); ReferenceStatsError if malformed."""
    path = pins_path(folder)
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReferenceStatsError(f"{path}: not valid JSON ({exc}); it records the sha256 of each published "
                                  "reference first imported here") from None
    pins = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(pins, dict) or not all(isinstance(v, dict) and isinstance(v.get("sha256"), str)
                                             for v in pins.values()):
        raise ReferenceStatsError(f"{path}: expected {{\"entries\": {{ID: {{\"sha256\": ...}}}}}}")
    return pins


def recorded_sha256(entry: CatalogueEntry, folder: Path | None = None) -> dict[str, Any] | None:
    """The record of the sha256 this store first saw for ``entry`` (None: never imported here)."""
    return read_pins(folder).get(entry.id)


def _record_pin(entry: CatalogueEntry, sha256: str, size: int, origin: str, folder: Path) -> None:
    pins = read_pins(folder)
    pins[entry.id] = {"sha256": sha256, "bytes": size, "url": entry.url, "origin": origin,
                      "recorded_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "genbench_version": __version__}
    write_text_atomic(pins_path(folder), json.dumps({"entries": dict(sorted(pins.items()))}, indent=2) + "\n")


def expected_sha256(entry: CatalogueEntry, folder: Path | None = None) -> tuple[str | None, str]:
    """(the sha256 a copy of ``entry`` must have, or None for the first copy; where that value comes from)."""
    if entry.sha256:
        return entry.sha256, "published"
    pin = recorded_sha256(entry, folder)
    if pin:
        return pin["sha256"], f"recorded at its first import here on {pin.get('recorded_at', '?')}"
    return None, "none published and none recorded yet"


def offline_route(entry: CatalogueEntry) -> str:
    """How to get ``entry`` onto a machine without a network: the sentence every fetch error ends with."""
    return (f"Offline: download {entry.url} elsewhere, copy it here and run `genbench ref fetch {entry.id} --from "
            f"FILE`; or serve a mirror and set GENBENCH_DOWNLOAD_MIRROR=BASE (fetches BASE/HOST/PATH).")


def git_blob_sha1(path: Path) -> str:
    """The SHA-1 git gives a file's bytes in a tree: sha1 of ``b"blob SIZE\\0"`` followed by the bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_git_blob(entry: CatalogueEntry, path: Path) -> None:
    """ReferenceStatsError unless ``path`` has the git blob SHA-1 the entry's repository publishes (if any)."""
    if entry.git_blob_sha1 is None:
        return
    actual = git_blob_sha1(path)
    if actual != entry.git_blob_sha1:
        raise ReferenceStatsError(f"{path}: git blob SHA-1 {actual}, but {entry.id}'s repository tree has "
                                  f"{entry.git_blob_sha1}: not the published file. {offline_route(entry)}")


# ----------------------------------------------------------------------------- reading one component


@dataclass
class _Read:
    component: Component
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    features: np.ndarray | None = None
    n: int | None = None
    conversion: str = ""


def _n_from(entry: CatalogueEntry, file_n: int | None, path: Path) -> int | None:
    if file_n is not None and entry.n is not None and file_n != entry.n:
        raise ReferenceStatsError(f"{path}: holds {file_n} samples, but the catalogue says {entry.id} has "
                                  f"{entry.n} ({entry.n_basis}); not the published file")
    return file_n if file_n is not None else entry.n


def _convert_covariance(entry: CatalogueEntry, sigma: np.ndarray, n: int | None, path: Path) -> tuple[np.ndarray, str]:
    """sigma with genbench's /(N-1) normalisation, and what was done (recorded with the statistics)."""
    if entry.covariance == "unbiased":
        return sigma, "unbiased (/(N-1)) as published; stored unchanged"
    if n is None or n < 2:
        raise ReferenceStatsError(f"{path}: {entry.id} divides its covariance by N, and converting it to /(N-1) "
                                  "needs N, which neither the file nor the catalogue states")
    return sigma * (n / (n - 1)), f"biased (/N) as published; multiplied by N/(N-1) with N={n}"


def read_components(entry: CatalogueEntry, path: Path) -> list[_Read]:
    """Every component of ``entry`` read from ``path`` and checked (shapes, finite values, a valid covariance,
    the catalogue's feature width and n). ReferenceStatsError naming the file otherwise."""
    from .foreign import edm2_count, edm2_space, load_stats_pickle, read_npz_arrays

    what = f"{entry.format} file ({entry.id})"
    doc = load_stats_pickle(path) if entry.format == "edm2-pkl" else None
    out = []
    for comp in entry.components:
        got = _Read(comp)
        if comp.kind == "features":
            feats = read_npz_arrays(path, comp.keys, what)[comp.keys[0]]
            if feats.ndim != 2 or feats.shape[1] != comp.feature_dim or feats.dtype.kind != "f":
                raise ReferenceStatsError(f"{path}: {comp.keys[0]} must be float [N, {comp.feature_dim}], got "
                                          f"{feats.dtype} {feats.shape}")
            if not np.isfinite(feats).all():
                raise ReferenceStatsError(f"{path}: {comp.keys[0]} contains NaN or Inf")
            got.features, got.n = feats, _n_from(entry, int(feats.shape[0]), path)
        else:
            if doc is not None:
                space = comp.keys[0].split(".", 1)[0]
                mu, sigma = edm2_space(doc, space, path)
                file_n = edm2_count(doc, path)
            else:
                arrays = read_npz_arrays(path, comp.keys, what)
                mu, sigma = arrays[comp.keys[0]], arrays[comp.keys[1]]
                file_n = None
            mu, sigma = checked_gaussian(mu, sigma, path)
            if mu.shape[0] != comp.feature_dim:
                raise ReferenceStatsError(f"{path}: {comp.keys[0]} has {mu.shape[0]} values, but {entry.id}'s "
                                          f"{comp.name} statistics are {comp.feature_dim}-dimensional "
                                          f"({comp.extractor} {comp.layer})")
            got.n = _n_from(entry, file_n, path)
            got.mu = mu
            got.sigma, got.conversion = _convert_covariance(entry, sigma, got.n, path)
        out.append(got)
    return out


def fingerprint_note(entry: CatalogueEntry, got: _Read) -> str | None:
    """Whether the first statistics match the sums a user printed of the official file (None: no such print).

    ``mu.sum()`` within ``mu_sum_tol`` (it was printed as a float32 sum), ``sigma.sum()`` to 1e-9 relative;
    a difference warns (the print is a third party's, and the served file may have changed since), it is
    recorded either way.
    """
    fp = entry.fingerprint
    if not fp or got.mu is None or got.sigma is None:
        return None
    mu_sum, sigma_sum = float(got.mu.sum()), float(got.sigma.sum())
    same = (abs(mu_sum - fp["mu_sum"]) <= float(fp["mu_sum_tol"])
            and abs(sigma_sum - fp["sigma_sum"]) <= 1e-9 * abs(fp["sigma_sum"]))
    note = (f"{'matches' if same else 'differs from'} the fingerprint of {fp['source']} (mu.sum() {mu_sum:.6f} vs "
            f"{fp['mu_sum']}, sigma.sum() {sigma_sum:.9f} vs {fp['sigma_sum']})")
    if not same:
        import warnings

        warnings.warn(f"{entry.id}: the file {note}; it may not be the file others scored against", UserWarning,
                      stacklevel=3)
    return note


def check_images(entry: CatalogueEntry, path: Path) -> dict[str, Any] | None:
    """The header of ``entry``'s kept images (``arr_0`` of an ADM batch): uint8 [N, H, W, 3] at its resolution."""
    if not entry.images:
        return None
    from .foreign import npz_array_header

    key = entry.images["key"]
    shape, dtype = npz_array_header(path, key, f"{entry.format} file ({entry.id})")
    res = entry.resolution
    if len(shape) != 4 or shape[3] != 3 or dtype != np.uint8 or (res is not None and shape[1:3] != (res, res)):
        want = f"[N, {res or 'H'}, {res or 'W'}, 3]"
        raise ReferenceStatsError(f"{path}: {key} must be uint8 {want} images, got {dtype} {list(shape)}")
    info = {"key": key, "n": shape[0], "shape": list(shape), "use": entry.images.get("use", "")}
    if entry.images.get("n") not in (None, shape[0]):
        info["note"] = f"the catalogue expected {entry.images['n']} images"
    return info


# ----------------------------------------------------------------------------- writing the store


def _store_file(entry: CatalogueEntry, comp: Component, sha256: str) -> str:
    """The store's file name for a component: named by the catalogue id and the published file's sha256."""
    suffix = "" if comp is entry.components[0] else f"@{comp.name}"
    return f"catalogue_{entry.source}_{Path(entry.file).stem}{suffix}_{sha256[:16]}.npz"


def _meta(entry: CatalogueEntry, got: _Read, sha256: str, origin: str) -> dict[str, Any]:
    comp = got.component
    return {
        **comp.identity(), "dataset": entry.dataset, "split": entry.split, "resolution": entry.resolution,
        "catalogue_id": entry.store_id(comp), "url": entry.url, "source_sha256": sha256, "source_origin": origin,
        "source_format": entry.format, "source_keys": list(comp.keys), "covariance": got.conversion,
        "n_basis": entry.n_basis, "packaging": comp.packaging_line(), "agreement": comp.agreement,
        "made_by": entry.made_by, "citation": entry.citation,
        "provenance": "the catalogue of published references (genbench ref fetch)",
        "command": f"genbench ref fetch {entry.id}",
    }


def _write_component(entry: CatalogueEntry, got: _Read, folder: Path, sha256: str, origin: str,
                     images: dict[str, Any] | None) -> ManifestEntry:
    comp = got.component
    name = _store_file(entry, comp, sha256)
    meta = _meta(entry, got, sha256, origin)
    if got.features is not None:
        count = len(got.features)
        save_features(folder / name, FeatureFile(got.features, None, [str(i) for i in range(count)], None,
                                                 {**meta, "n": count}), overwrite=True)
    else:
        assert got.mu is not None and got.sigma is not None
        save_gaussian(folder / name, got.mu, got.sigma, got.n, meta, overwrite=True)
    provenance: dict[str, Any] = {"catalogue_id": entry.id, "component": comp.name, "url": entry.url,
                                  "source_sha256": sha256, "packaging": comp.packaging_line(),
                                  "covariance": got.conversion}
    if images is not None:
        provenance["images"] = images
    note = fingerprint_note(entry, got) if comp is entry.components[0] else None
    if note is not None:
        provenance["fingerprint"] = note
    return ManifestEntry(
        id=entry.store_id(comp), file=name, sha256=sha256_file(folder / name), dataset=entry.dataset,
        split=entry.split, n=got.n or 0, extractor=comp.extractor, weights_sha256=comp.weights_sha256 or "",
        layer=comp.layer, preprocessing=comp.preprocessing, genbench_version=__version__,
        command=f"genbench ref fetch {entry.id}", kind=comp.kind, provenance=provenance, store=str(folder))


def downloads_path(entry: CatalogueEntry, folder: Path | None = None) -> Path:
    """Where the published file itself is kept (ADM batches, for their images) or briefly downloaded to."""
    return (folder or user_dir()) / DOWNLOADS / entry.source / entry.file


@contextlib.contextmanager
def _download_bar(label: str, progress: bool) -> Iterator[tuple[Callable[[int | None], None], Callable[[int], None]]]:
    """(on_start, on_bytes) callbacks drawing a progress bar in MiB on stderr (nothing when not ``progress``)."""
    from ..util.progress import Reporter

    with contextlib.ExitStack() as stack:
        state: dict[str, Any] = {"bar": None, "bytes": 0, "shown": 0}

        def on_start(total: int | None) -> None:
            mib = None if total is None else max(1, -(-total // (1 << 20)))
            state["bar"] = stack.enter_context(Reporter(live=progress).phase(label, mib, "MiB"))

        def on_bytes(k: int) -> None:
            state["bytes"] += k
            whole = state["bytes"] >> 20
            if state["bar"] is not None and whole > state["shown"]:
                state["bar"].advance(whole - state["shown"])
                state["shown"] = whole

        yield on_start, on_bytes


def fetch_reference(entry: CatalogueEntry, *, from_file: str | Path | None = None, overwrite: bool = False,
                    progress: bool = True, say: Callable[[str], None] | None = _say,
                    timeout: float = 60.0) -> FetchResult:
    """Download ``entry`` (or take ``from_file``), check its sha256, import every component into the user store.

    Already in the store (every component): their files are verified and nothing is downloaded, unless
    ``overwrite``. ``say``: where messages go (the recorded sha256 of a first copy; None: nowhere).
    Raises ReferenceStatsError (exit 2) naming the URL or file and the cause; on any error the store is as it
    was (no new or half-written file, no manifest entry, no recorded sha256), so running again works.
    """
    from ..util.download import download

    folder = user_dir()
    ids = [entry.store_id(c) for c in entry.components]
    present = {e.id: e for e in read_manifest(folder) if e.id in ids}
    if len(present) == len(ids) and not overwrite:
        for e in present.values():
            e.verify()
        return FetchResult(tuple(present[i] for i in ids), str(present[ids[0]].provenance.get("source_sha256", "")),
                           "already in the store")
    expected, basis = expected_sha256(entry, folder)
    kept = downloads_path(entry, folder)
    kept_before = kept.exists()
    created: list[Path] = []  # files this call made, removed again on any error
    try:
        if from_file is not None:
            source = Path(from_file).expanduser()
            if not source.is_file():
                raise ReferenceStatsError(f"--from {source}: no such file (expected a copy of {entry.url})")
            actual = sha256_file(source)
            if expected is not None and actual != expected:
                raise ReferenceStatsError(
                    f"--from {source}: sha256 {actual}, but {entry.id}'s sha256 is {expected} ({basis}); this is not "
                    f"the file published at {entry.url}")
            origin = f"--from {source.resolve()}"
            raw = source
            if entry.images:  # kept for its images: copied into the store, atomically
                with atomic_path(kept) as tmp:
                    shutil.copyfile(source, tmp)
                if not kept_before:
                    created.append(kept)
                raw = kept
        else:
            with _download_bar(f"download {entry.id}", progress) as (on_start, on_bytes):
                actual = download(entry.url, kept, error=ReferenceStatsError, what=f"reference {entry.id}",
                                  offline=offline_route(entry), sha256=expected, max_bytes=entry.max_bytes,
                                  timeout=timeout, on_start=on_start, on_bytes=on_bytes)
            if not kept_before:
                created.append(kept)
            origin, raw = "download", kept
        size = raw.stat().st_size
        check_git_blob(entry, raw)
        images = check_images(entry, raw)
        if images is not None:
            images["path"] = str(kept)
        components = read_components(entry, raw)
        new = []
        for got in components:
            target = folder / _store_file(entry, got.component, actual)
            existed = target.exists()
            new.append(_write_component(entry, got, folder, actual, origin, images))
            if not existed:
                created.append(target)
        if expected is None:  # the bytes read and imported: now they are this store's copy of the file
            _record_pin(entry, actual, size, origin, folder)
        before = read_manifest(folder)
        entries = [e for e in before if e.id not in ids]
        write_manifest(folder, entries + new)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    used = {e.file for e in entries + new}
    for old in before:  # the files of replaced entries (--overwrite), once nothing uses them
        if old.id in ids and old.file not in used:
            (folder / old.file).unlink(missing_ok=True)
    if not entry.images:
        kept.unlink(missing_ok=True)
        for parent in (kept.parent, kept.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when empty
    check = "published" if entry.sha256 else "recorded"
    if expected is None:
        check = "recorded now"
        if say is not None:
            say(f"{entry.id}: no sha256 is published; recorded sha256 {actual} of this first copy in "
                f"{pins_path(folder)}; every later copy is checked against it")
    return FetchResult(tuple(new), actual, check)
