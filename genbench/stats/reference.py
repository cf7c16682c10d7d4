"""Reference statistics: the bundled store in ``reference_stats/`` and a user store for built ones.

Each store is a folder with ``manifest.json``: a list of entries (id, file,
sha256, dataset, split, n, extractor, weights_sha256, layer, preprocessing,
genbench_version, command). A reference spec such as ``fashion-mnist:train``
resolves to the entry for that data set and split built with the requested
extractor (the bundled default when none is requested). Every load verifies the
file's sha256 against the manifest.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import cache_dir
from ..errors import ConfigError, ReferenceStatsError
from ..util.atomic import write_text_atomic
from ..util.files import sha256_file
from .io import FeatureFile, SavedStats, load_features, load_stats

MANIFEST = "manifest.json"
ENTRY_FIELDS = (
    "id", "file", "sha256", "dataset", "split", "n", "extractor", "weights_sha256", "layer",
    "preprocessing", "genbench_version", "command",
)
#: Fields an entry may have besides ENTRY_FIELDS, with their values when absent (older manifests): ``kind``
#: ("statistics": mu/sigma; "features": per-sample features, a clean-fid KID file) and ``provenance`` (an
#: entry imported from the catalogue: its catalogue id, URL, downloaded sha256 and packagings).
OPTIONAL_FIELDS: dict[str, Any] = {"kind": "statistics", "provenance": {}}
KINDS = ("statistics", "features")


#: The package the repository's ``reference_stats/`` installs as (pyproject.toml maps it there).
BUNDLED_PACKAGE = "genbench._reference_stats"


@functools.lru_cache(maxsize=1)
def _bundled_package_dir() -> Path:
    """Where the bundled statistics are for this installation; the first candidate holding a manifest.

    An installed wheel (or ``pip install .``) has them at ``genbench/_reference_stats/``, found through the
    import system. In a checkout, imported through an editable install or straight from the source tree,
    they are the ``reference_stats/`` folder next to ``genbench/`` (setuptools' editable finder does not
    expose a data-only package mapped outside its parent, so the import system may not find it there).
    """
    candidates = []
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        candidates += [Path(p) for p in (spec.submodule_search_locations or ())]
    candidates.append(Path(__file__).resolve().parents[2] / "reference_stats")
    for folder in candidates:
        if (folder / MANIFEST).is_file():
            return folder
    return candidates[0]


def bundled_dir() -> Path:
    """The bundled store: the repository's ``reference_stats/``, installed as package data (override with
    $GENBENCH_REFERENCE_STATS)."""
    env = os.environ.get("GENBENCH_REFERENCE_STATS")
    return Path(env) if env else _bundled_package_dir()


def user_dir() -> Path:
    """Where ``genbench ref build`` and ``ref import`` put statistics: outside the repository."""
    return cache_dir() / "reference_stats"



@dataclass(frozen=True)
class ManifestEntry:
    id: str
    file: str
    sha256: str
    dataset: str
    split: str
    n: int
    extractor: str
    weights_sha256: str
    layer: str
    preprocessing: str
    genbench_version: str
    command: str
    kind: str = "statistics"  # or "features" (per-sample features: a KID reference)
    provenance: dict[str, Any] = field(default_factory=dict)  # catalogue id, URL, downloaded sha256, packagings
    store: str = ""  # folder of the manifest this entry came from

    @property
    def path(self) -> Path:
        return Path(self.store) / self.file

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("store")
        return d

    def verify(self) -> None:
        """Raise ReferenceStatsError unless the file exists and matches its sha256."""
        if not self.path.is_file():
            raise ReferenceStatsError(f"reference {self.id}: manifest points at {self.path}, which does not exist")
        actual = sha256_file(self.path)
        if actual != self.sha256:
            raise ReferenceStatsError(
                f"reference {self.id}: {self.path} has sha256 {actual}, but the manifest says {self.sha256}; "
                "the file was modified or truncated (rebuild it with: " + self.command + ")"
            )

    def load(self) -> SavedStats:
        """Verified statistics, with the manifest's provenance where the file itself has none."""
        if self.kind == "features":
            raise ReferenceStatsError(f"reference {self.id} holds per-sample features ({self.path}), not statistics; "
                                      "read it with load_features()")
        self.verify()
        saved = load_stats(self.path)
        if saved.meta is None:
            saved.meta = {k: getattr(self, k) for k in ("extractor", "weights_sha256", "layer", "preprocessing", "n")}
        return saved

    def load_features(self) -> FeatureFile:
        """The verified per-sample features of a ``kind="features"`` entry (a clean-fid KID reference)."""
        if self.kind != "features":
            raise ReferenceStatsError(f"reference {self.id} holds statistics, not per-sample features")
        self.verify()
        return load_features(self.path)

    def source_info(self) -> dict[str, Any]:
        """What a result's provenance records of this reference: its id and sha256, and for a catalogue entry
        where it came from and both packagings (``reference: TF graph ...; features: PyTorch port ...``)."""
        return {"reference_id": self.id, "sha256": self.sha256, **self.provenance}


#: Reference ids: a letter or digit, then letters, digits, '.', '_', '-' (at most 128); never a path.
REFERENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_reference_id(ref_id: str, flag: str = "--id") -> str:
    """``ref_id`` if it is a valid reference id (:data:`REFERENCE_ID`); ConfigError naming ``flag`` otherwise."""
    if not REFERENCE_ID.match(ref_id) or ".." in ref_id:
        raise ConfigError(f"{flag} {ref_id!r}: a reference id is a letter or digit followed by up to 127 letters, "
                          "digits, '.', '_' or '-' (no '/', no '..')")
    return ref_id


def _entry_problem(item: object) -> str | None:
    if not isinstance(item, dict):
        return f"an entry is a {type(item).__name__}, expected an object"
    missing = [f for f in ENTRY_FIELDS if f not in item]
    if missing:
        return f"entry {item.get('id', '?')!r} lacks fields {missing}"
    wrong = [f for f in ENTRY_FIELDS if not isinstance(item[f], int if f == "n" else str) or isinstance(item[f], bool)]
    if wrong:
        return f"entry {item['id']!r}: fields {wrong} have the wrong type (n is a number, the others strings)"
    name = item["file"]
    if not name or name != Path(name).name or name in (".", ".."):
        return f"entry {item['id']!r}: 'file' must be a plain file name inside the store, got {name!r}"
    if item.get("kind", "statistics") not in KINDS:
        return f"entry {item['id']!r}: 'kind' must be one of {', '.join(KINDS)}, got {item.get('kind')!r}"
    if not isinstance(item.get("provenance", {}), dict):
        return f"entry {item['id']!r}: 'provenance' must be an object"
    return None


def read_manifest(folder: Path) -> list[ManifestEntry]:
    """The entries of ``folder/manifest.json`` ([] when absent); ReferenceStatsError naming the file when malformed."""
    path = folder / MANIFEST
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReferenceStatsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("entries", []), list):
        raise ReferenceStatsError(f"{path}: expected a JSON object {{\"entries\": [...]}}, got {type(raw).__name__}")
    entries = []
    for item in raw.get("entries", []):
        problem = _entry_problem(item)
        if problem:
            raise ReferenceStatsError(f"{path}: {problem}")
        optional = {f: item.get(f, default) for f, default in OPTIONAL_FIELDS.items()}
        entries.append(ManifestEntry(**{f: item[f] for f in ENTRY_FIELDS}, **optional, store=str(folder)))
    return entries


def write_manifest(folder: Path, entries: list[ManifestEntry]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"entries": [e.to_dict() for e in sorted(entries, key=lambda e: e.id)]}
    write_text_atomic(folder / MANIFEST, json.dumps(doc, indent=2) + "\n")


def all_entries() -> list[ManifestEntry]:
    """Bundled entries first (they win on equal ids), then the user's.

    A malformed user manifest is skipped with a warning naming it, so the bundled references keep working;
    a malformed bundled manifest is an error (the installation is damaged).
    """
    seen: dict[str, ManifestEntry] = {}
    for folder in (bundled_dir(), user_dir()):
        try:
            entries = read_manifest(folder)
        except ReferenceStatsError as exc:
            if folder == bundled_dir():
                raise
            warnings.warn(f"ignoring the user reference store: {exc}; fix or remove that file", RuntimeWarning,
                          stacklevel=2)
            continue
        for entry in entries:
            seen.setdefault(entry.id, entry)
    return list(seen.values())


def find_reference(spec: str, extractor: str | None = None, preprocessing: str | None = None) -> ManifestEntry | None:
    """The entry for an id, or for ``dataset:split`` built with ``extractor`` (bundled first; among several, the one
    built with ``preprocessing`` when given), in the stores as they are: never downloaded. None if no match.

    A catalogue id (``clean-fid/cifar10_clean_train_32``, ``edm2/img512``, ``ID@COMPONENT``;
    :mod:`genbench.stats.catalogue`) resolves to the component made with ``extractor`` when the file has one
    (``edm2/img512`` with ``dinov2-vit-l14``: its FD_DINOv2 statistics). :func:`genbench.stats.lookup.
    lookup_reference` also fetches a catalogue id on first use.
    """
    from .catalogue import resolve

    hit = resolve(spec, extractor)
    if hit is not None:
        cat_entry, component = hit
        store_id = cat_entry.store_id(component)
        return next((e for e in all_entries() if e.id == store_id), None)
    entries = all_entries()
    for entry in entries:
        if entry.id == spec:
            return entry
    if ":" not in spec:
        return None
    dataset, split = spec.split(":", 1)
    matches = [e for e in entries if e.dataset == dataset and e.split == split]
    if extractor is not None:
        matches = [e for e in matches if e.extractor == extractor]
    if preprocessing is not None and extractor is not None:
        from ..features import canonical_preprocessing

        try:
            wanted = canonical_preprocessing(extractor, preprocessing)
        except ConfigError:
            wanted = preprocessing
        matches = sorted(matches, key=lambda e: e.preprocessing != wanted)  # that policy's first; the rest stay
    return matches[0] if matches else None


def get_reference(ref_id: str) -> ManifestEntry:
    """The entry named ``ref_id`` (an id or dataset:split) in the stores, never downloaded; an unknown one lists
    the known ids (a catalogue id not fetched yet says how to fetch it)."""
    entry = find_reference(ref_id)
    if entry is None:
        from ..registry import did_you_mean
        from .catalogue import resolve

        if resolve(ref_id) is not None:
            raise ReferenceStatsError(f"reference {ref_id} is in the catalogue of published references but not "
                                      f"fetched yet: genbench ref fetch {ref_id.split('@', 1)[0]}")

        entries = all_entries()
        known = ", ".join(sorted(e.id for e in entries)) or "(none)"
        hint = did_you_mean(ref_id, [e.id for e in entries] + [f"{e.dataset}:{e.split}" for e in entries])
        raise ReferenceStatsError(f"unknown reference {ref_id!r}{hint}; known references: {known}")
    return entry


def stats_file_name(dataset: str, split: str, extractor: str, layer: str, preprocessing: str, n: int) -> str:
    """<dataset>-<split>_<extractor>-<layer>_<preprocessing>_n<N>.npz"""
    return f"{dataset}-{split}_{extractor}-{layer}_{preprocessing}_n{n}.npz"
