"""The catalogue of published reference statistics: clean-fid, TTUR, ADM, EDM and EDM2 files by name.

``catalogue.json`` (package data, written by ``scripts/make_catalogue.py``) lists every file with its id
(``SOURCE/FILE-STEM``: ``clean-fid/cifar10_legacy_tensorflow_train_32``, ``ttur/fid_stats_cifar10_train``,
``adm/VIRTUAL_imagenet256_labeled``, ``edm/cifar10-32x32``, ``edm2/img512``), canonical URL, format, n,
resolution, split, how it was made, covariance normalisation, published sha256 (none of these files has one)
and its **components**: the statistics or features it holds, each with the genbench extractor, layer and
preprocessing policy that reproduce them. A file with several components (ADM: ``fid`` pool features and
``spatial`` sFID features; EDM2: ``fid`` and ``fd_dinov2``) is imported as one store entry per component:
the first under the catalogue id, the others as ``ID@COMPONENT`` (``adm/VIRTUAL_imagenet256_labeled@spatial``,
``edm2/img512@fd_dinov2``).

This module only reads and resolves the catalogue; :mod:`genbench.stats.fetch` downloads and imports.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ReferenceStatsError

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")
#: Formats a catalogue entry may have, each with its reader in :mod:`genbench.stats.foreign`.
FORMATS = ("clean-fid-npz", "clean-fid-kid-npz", "ttur-npz", "adm-npz", "edm-npz", "edm2-pkl", "lth14-npz")
#: How an entry's covariance was normalised: "unbiased" (/(N-1), genbench's own) or "biased" (/N: converted).
COVARIANCES = ("unbiased", "biased")
COMPONENT_SEP = "@"


@dataclass(frozen=True)
class Component:
    """One set of statistics (``kind="statistics"``: mean and covariance) or features in a published file."""

    name: str  # "fid", "spatial", "fd_dinov2", "kid"
    kind: str  # "statistics" or "features"
    keys: tuple[str, ...]  # the arrays read: ("mu", "sigma"), ("fid.mu", "fid.sigma") in a pickle, ("feats",)
    extractor: str  # the genbench extractor whose features these are
    layer: str
    preprocessing: str  # the genbench policy that reproduces the reference's resizing
    weights_sha256: str | None  # of the genbench weights reproducing it; None: no published hash to check
    feature_dim: int
    packaging: dict[str, str]  # {"reference": how the file was made, "features": what genbench runs}
    agreement: str  # what was measured between the two packagings

    def identity(self) -> dict[str, Any]:
        """The identity fields the compatibility policy checks (``weights_sha256`` only where known)."""
        out: dict[str, Any] = {"extractor": self.extractor, "layer": self.layer, "preprocessing": self.preprocessing,
                               "feature_dim": self.feature_dim}
        if self.weights_sha256:
            out["weights_sha256"] = self.weights_sha256
        return out

    def packaging_line(self) -> str:
        """``reference: TF graph (...); features: PyTorch port (...)``."""
        return f"reference: {self.packaging['reference']}; features: {self.packaging['features']}"


@dataclass(frozen=True)
class CatalogueEntry:
    """One published file: where it lives, what it holds and how it was made (everything a protocol needs)."""

    id: str
    source: str
    file: str
    url: str
    format: str
    dataset: str
    split: str
    resolution: int | None  # pixels (square); None: not stated by the source
    n: int | None  # images behind the statistics; None: not stated (an ADM batch) or read from the file
    n_basis: str
    sha256: str | None  # published sha256; None: none published (recorded at the first download)
    sha256_basis: str
    covariance: str  # "unbiased" (/(N-1)) or "biased" (/N)
    max_bytes: int
    made_by: str
    components: tuple[Component, ...]
    citation: str
    images: dict[str, Any] | None = None  # {"key": "arr_0", "n": 10000, ...}: images kept for precision/recall
    git_blob_sha1: str | None = None  # a published git blob SHA-1 (a file in a repository's tree), checked too
    fingerprint: dict[str, Any] | None = None  # {"mu_sum", "mu_sum_tol", "sigma_sum", "source"}: sums a user printed
    unconfirmed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def store_id(self, component: Component) -> str:
        """The store id of ``component``: the catalogue id for the first, ``ID@NAME`` for the others."""
        return self.id if component is self.components[0] else f"{self.id}{COMPONENT_SEP}{component.name}"

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise ConfigError(f"reference {self.id} has no component {name!r}; it has: "
                          + ", ".join(c.name for c in self.components))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[CatalogueEntry, ...]
    by_id: dict[str, CatalogueEntry] = field(default_factory=dict, compare=False, repr=False)

    def get(self, ref_id: str) -> CatalogueEntry:
        """The entry named ``ref_id`` (its ``@COMPONENT`` suffix ignored); ConfigError with close ids otherwise."""
        base = ref_id.split(COMPONENT_SEP, 1)[0]
        if base in self.by_id:
            return self.by_id[base]
        from ..registry import did_you_mean

        hint = did_you_mean(base, list(self.by_id))
        raise ConfigError(f"{ref_id!r} is not in the catalogue of published references{hint} "
                          "(list them with: genbench ref list --catalog)")

    def find(self, ref_id: str) -> CatalogueEntry | None:
        return self.by_id.get(ref_id.split(COMPONENT_SEP, 1)[0])


def _component(raw: dict[str, Any], where: str) -> Component:
    try:
        comp = Component(
            name=str(raw["name"]), kind=str(raw["kind"]), keys=tuple(raw["keys"]), extractor=str(raw["extractor"]),
            layer=str(raw["layer"]), preprocessing=str(raw["preprocessing"]), weights_sha256=raw.get("weights_sha256"),
            feature_dim=int(raw["feature_dim"]), packaging=dict(raw["packaging"]), agreement=str(raw["agreement"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReferenceStatsError(f"{where}: malformed component ({type(exc).__name__}: {exc})") from None
    if comp.kind not in ("statistics", "features"):
        raise ReferenceStatsError(f"{where}: component kind {comp.kind!r}; expected statistics or features")
    want = 1 if comp.kind == "features" else 2
    if len(comp.keys) != want:
        raise ReferenceStatsError(f"{where}: a {comp.kind} component names {want} key(s), got {list(comp.keys)}")
    return comp


def parse_entry(raw: dict[str, Any]) -> CatalogueEntry:
    """A CatalogueEntry from its JSON object; ReferenceStatsError naming the entry when malformed."""
    where = f"catalogue entry {raw.get('id', '?')!r}"
    try:
        comps = tuple(_component(c, f"{where}, component {i}") for i, c in enumerate(raw["components"]))
        entry = CatalogueEntry(
            id=str(raw["id"]), source=str(raw["source"]), file=str(raw["file"]), url=str(raw["url"]),
            format=str(raw["format"]), dataset=str(raw["dataset"]), split=str(raw["split"]),
            resolution=raw.get("resolution"), n=raw.get("n"), n_basis=str(raw["n_basis"]), sha256=raw.get("sha256"),
            sha256_basis=str(raw["sha256_basis"]), covariance=str(raw["covariance"]), max_bytes=int(raw["max_bytes"]),
            made_by=str(raw["made_by"]), components=comps, citation=str(raw["citation"]), images=raw.get("images"),
            unconfirmed=tuple(raw.get("unconfirmed", ())), notes=tuple(raw.get("notes", ())),
            git_blob_sha1=raw.get("git_blob_sha1"), fingerprint=raw.get("fingerprint"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReferenceStatsError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
    problems = []
    if entry.format not in FORMATS:
        problems.append(f"format {entry.format!r} (expected one of {', '.join(FORMATS)})")
    if entry.covariance not in COVARIANCES:
        problems.append(f"covariance {entry.covariance!r} (expected unbiased or biased)")
    if not comps:
        problems.append("no components")
    if entry.id != f"{entry.source}/{Path(entry.file).stem}":
        problems.append(f"id is not SOURCE/FILE-STEM ({entry.source}/{Path(entry.file).stem})")
    if Path(entry.file).name != entry.file or not entry.url.endswith("/" + entry.file):
        problems.append(f"file {entry.file!r} is not the last part of the URL {entry.url}")
    if entry.sha256 is not None and (len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256)):
        problems.append("sha256 is not 64 lower-case hexadecimal digits")
    blob = entry.git_blob_sha1
    if blob is not None and (len(blob) != 40 or any(c not in "0123456789abcdef" for c in blob)):
        problems.append("git_blob_sha1 is not 40 lower-case hexadecimal digits")
    if problems:
        raise ReferenceStatsError(f"{where}: " + "; ".join(problems))
    return entry


def parse_catalogue(doc: dict[str, Any], where: str = "catalogue") -> Catalogue:
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ReferenceStatsError(f"{where}: expected a JSON object with a list 'entries'")
    entries = tuple(parse_entry(raw) for raw in doc["entries"])
    by_id: dict[str, CatalogueEntry] = {}
    for entry in entries:
        if entry.id in by_id:
            raise ReferenceStatsError(f"{where}: the id {entry.id} appears twice")
        by_id[entry.id] = entry
    return Catalogue(entries, by_id)


@functools.lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with genbench (``genbench/stats/catalogue.json``)."""
    try:
        doc = json.loads(CATALOGUE_FILE.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReferenceStatsError(f"{CATALOGUE_FILE}: cannot read the catalogue of published references ({exc}); "
                                  "the installation is damaged") from None
    return parse_catalogue(doc, str(CATALOGUE_FILE))


def resolve(spec: str, extractor: str | None = None) -> tuple[CatalogueEntry, Component] | None:
    """The catalogue entry and component a reference spec names, or None when it is no catalogue id.

    ``ID@COMPONENT`` names the component; a bare ``ID`` gives the component made with ``extractor`` when one
    is (``edm2/img512`` with ``dinov2-vit-l14`` is its FD_DINOv2 statistics), else the first.
    """
    entry = load_catalogue().find(spec)
    if entry is None:
        return None
    if COMPONENT_SEP in spec:
        return entry, entry.component(spec.split(COMPONENT_SEP, 1)[1])
    if extractor is not None:
        for comp in entry.components:
            if comp.extractor == extractor:
                return entry, comp
    return entry, entry.components[0]
