"""Partial statistics of one shard of a source, and their exact merge.

``genbench stats SOURCE --shard K/N -o part-K.npz`` writes the statistics of images ``[start, stop)`` of
SOURCE (shard K of N, K counted from 0); ``genbench merge part-*.npz -o stats.npz`` adds them up into one
statistics file equal to a single pass over SOURCE (float64 sums; the parts are added in shard order, so
the order in which they are given changes nothing, not even the last bit).

Partial file (plain ``.npz``, no pickles):

- ``n`` int64 scalar, ``total`` float64 [d] (sum of features), ``outer`` float64 [d, d] (sum of x x^T);
- optional ``bank_features`` float32 [k, d] and ``bank_logits`` float32 [k, C]: a seeded uniform sample of at
  most ``capacity`` of the shard's rows (KID, precision/recall and IS need per-sample rows; FD does not);
- ``meta``: JSON with ``format`` (:data:`PARTIAL_FORMAT`), ``identity`` (everything that must agree across the
  shards of one statistics file: the extractor's identity and precision, the source's fingerprint and image
  count, N, the bank's capacity and seed), ``shard`` (K), ``range`` ([start, stop)), the source's description
  and ``content_sha256`` (over the arrays, so a damaged file is refused even where its zip is readable).

A shard is written atomically (:func:`genbench.util.atomic.atomic_path`): a process killed while writing
leaves at most a hidden temporary file that is not a complete partial file, and merge refuses it.

The merged bank (where the parts have banks) is a uniform sample of at most ``capacity`` rows of the
whole source: all rows while the shards' banks hold at most ``capacity`` together, else a multivariate
hypergeometric draw over the shards' image counts followed by a uniform subset of each shard's bank
(:func:`genbench.extraction.accumulator.merge_banks`, as across torchrun's ranks; drawn by
:func:`genbench.shards.merge_stats`, so this module stays free of torch).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError, ReferenceStatsError
from ..util.atomic import atomic_path
from ..version import __version__
from .feature_stats import FeatureStats

PARTIAL_FORMAT = "genbench-partial-stats"
PARTIAL_FORMAT_VERSION = 1

#: Keys of a partial file's ``identity`` that every shard of one statistics file must share (in this order in
#: messages); the extractor's own identity fields are compared as ``extractor.<field>``.
IDENTITY_KEYS = ("extractor", "precision", "source_fingerprint", "source_n", "shards", "bank_capacity", "bank_seed")


def parse_shard(text: str, flag: str = "--shard") -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N; ConfigError naming ``flag`` otherwise."""
    head, sep, tail = str(text).partition("/")
    try:
        k, n = int(head), int(tail)
    except ValueError:
        k = n = -1
    if not sep or n < 1 or not 0 <= k < n:
        raise ConfigError(f"{flag} {text!r}: expected K/N with 0 <= K < N (shard K of N, counted from 0), e.g. 0/4")
    return k, n


@dataclass
class PartialStats:
    """The statistics of images ``start:stop`` (shard ``shard`` of ``identity['shards']``) of one source."""

    stats: FeatureStats
    shard: int
    start: int
    stop: int
    identity: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)  # kind, location, n of the whole source
    bank_features: np.ndarray | None = None  # float32 [k, d]
    bank_logits: np.ndarray | None = None  # float32 [k, C]
    path: Path | None = None

    @property
    def shards(self) -> int:
        return int(self.identity["shards"])

    @property
    def name(self) -> str:
        """How messages name this part: its file, and which shard it is."""
        where = str(self.path) if self.path is not None else "<in memory>"
        return f"{where} (shard {self.shard}/{self.shards}, images {self.start}..{self.stop - 1})"

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"n": np.int64(self.stats.n), "total": np.asarray(self.stats.total, np.float64),
               "outer": np.asarray(self.stats.outer, np.float64)}
        if self.bank_features is not None:
            out["bank_features"] = np.asarray(self.bank_features, np.float32)
        if self.bank_logits is not None:
            out["bank_logits"] = np.asarray(self.bank_logits, np.float32)
        return {k: np.asarray(v) for k, v in out.items()}


def _content_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(b"genbench-partial-v1\n")
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}\t{a.dtype.str}\t{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def bank_sample(rows: int, capacity: int, seed: int, shard: int, shards: int) -> np.ndarray:
    """Sorted indices of the rows a shard of ``rows`` images keeps in its bank: all when ``rows <= capacity``,
    else ``capacity`` drawn uniformly without replacement by ``numpy.random.default_rng([seed, shard, shards])``."""
    if rows <= capacity:
        return np.arange(rows)
    return np.sort(np.random.default_rng([seed, shard, shards]).choice(rows, size=capacity, replace=False))


def save_partial(path: str | Path, part: PartialStats, overwrite: bool = False) -> None:
    """Write ``part`` atomically to ``path`` (ConfigError when it exists and ``overwrite`` is False)."""
    arrays = part.arrays()
    meta = {"format": PARTIAL_FORMAT, "format_version": PARTIAL_FORMAT_VERSION, "genbench_version": __version__,
            "identity": part.identity, "shard": part.shard, "range": [part.start, part.stop], "source": part.source,
            "content_sha256": _content_sha256(arrays)}
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.str_(json.dumps(meta)), **arrays)  # type: ignore[arg-type]  # **arrays is no allow_pickle


def _refuse(path: Path, why: str) -> ReferenceStatsError:
    return ReferenceStatsError(f"{path}: {why}; expected a complete partial statistics file written by "
                               "`genbench stats SOURCE --shard K/N`")


def load_partial(path: str | Path) -> PartialStats:
    """Read and check a partial statistics file (bounded, no pickles). ReferenceStatsError naming the file for
    anything but a complete, undamaged one (truncated, another kind of .npz, checksum mismatch, bad shapes)."""
    from .io import _load_npz

    path = Path(path)
    data = _load_npz(path, "partial statistics", ReferenceStatsError)
    if "meta" not in data:
        raise _refuse(path, f"no 'meta' entry (found {sorted(data)})")
    try:
        meta = json.loads(str(data.pop("meta")))
    except json.JSONDecodeError:
        raise _refuse(path, "its 'meta' entry is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != PARTIAL_FORMAT:
        raise _refuse(path, "not a partial statistics file (a statistics or feature file cannot be merged)")
    if meta.get("format_version") != PARTIAL_FORMAT_VERSION:
        raise _refuse(path, f"format version {meta.get('format_version')!r}, this genbench reads "
                            f"{PARTIAL_FORMAT_VERSION}")
    missing = [k for k in ("n", "total", "outer") if k not in data]
    if missing:
        raise _refuse(path, f"arrays {missing} missing")
    if meta.get("content_sha256") != _content_sha256(data):
        raise _refuse(path, "its arrays do not match the checksum recorded when it was written (damaged)")
    try:
        identity, shard, (start, stop) = dict(meta["identity"]), int(meta["shard"]), (int(x) for x in meta["range"])
        shards = int(identity["shards"])
    except (KeyError, TypeError, ValueError):
        raise _refuse(path, "its metadata lacks the identity, shard or range") from None
    total, outer = np.asarray(data["total"], np.float64), np.asarray(data["outer"], np.float64)
    n = int(data["n"])
    d = total.shape[0] if total.ndim == 1 else -1
    if d < 1 or outer.shape != (d, d) or n != stop - start or not 0 <= shard < shards:
        raise _refuse(path, f"inconsistent arrays (n={n}, range {start}..{stop}, total {total.shape}, "
                            f"outer {outer.shape}, shard {shard}/{shards})")
    if not (np.isfinite(total).all() and np.isfinite(outer).all()):
        raise _refuse(path, "its sums contain NaN or Inf")
    return PartialStats(FeatureStats(n, total, outer), shard, start, stop, identity, dict(meta.get("source") or {}),
                        data.get("bank_features"), data.get("bank_logits"), path)


@dataclass
class MergedStats:
    """The merge of every shard: statistics equal to one pass, their metadata, and the merged bank (or None)."""

    stats: FeatureStats
    meta: dict[str, Any]
    bank_features: np.ndarray | None = None  # filled by genbench.shards.merge_stats where the parts have banks
    bank_logits: np.ndarray | None = None
    parts: list[PartialStats] = field(default_factory=list)  # in shard order


def _differs(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """(key, a's value, b's value) for each identity key the two disagree on (extractor fields one by one)."""
    out = []
    for key in IDENTITY_KEYS:
        va, vb = a.get(key), b.get(key)
        if key == "extractor" and isinstance(va, dict) and isinstance(vb, dict):
            out += [(f"extractor.{k}", va.get(k), vb.get(k)) for k in sorted({*va, *vb}) if va.get(k) != vb.get(k)]
        elif va != vb:
            out.append((key, va, vb))
    return out


def merge_partials(parts: list[PartialStats]) -> MergedStats:
    """Combine the shards of one source exactly (the sums in shard order, whatever the order of ``parts``).

    Raises ReferenceStatsError naming the shard for: no parts, mixed identities (another extractor, precision,
    source, shard count or bank), two parts covering the same images, and shards or images not covered.
    """
    if not parts:
        raise InputError("merge: no partial statistics files given")
    first = parts[0]
    for part in parts[1:]:
        diff = _differs(first.identity, part.identity)
        if diff:
            key, mine, theirs = diff[0]
            raise ReferenceStatsError(
                f"{part.name} was made with {key}={theirs!r}, but {first.name} with {key}={mine!r}; the shards of "
                "one statistics file must come from one source, extractor and setting")
    shards = first.shards
    ordered = sorted(parts, key=lambda p: (p.start, p.shard))
    seen: dict[int, PartialStats] = {}
    for part in ordered:
        if part.shard in seen:
            raise ReferenceStatsError(f"{part.name} and {seen[part.shard].name} are the same shard: overlapping "
                                      "shards; give each shard once")
        seen[part.shard] = part
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.stop:
            raise ReferenceStatsError(f"{b.name} overlaps {a.name}; shards must not share images")
    missing = sorted(set(range(shards)) - set(seen))
    n_total = int(first.identity["source_n"])
    if missing:
        raise ReferenceStatsError(f"shard(s) {', '.join(f'{k}/{shards}' for k in missing)} missing: "
                                  f"{len(parts)} of {shards} shards given ({', '.join(p.name for p in ordered)})")
    gaps = [(a.stop, b.start) for a, b in zip(ordered, ordered[1:]) if b.start != a.stop]
    if ordered[0].start != 0:
        gaps.insert(0, (0, ordered[0].start))
    if ordered[-1].stop != n_total:
        gaps.append((ordered[-1].stop, n_total))
    if gaps:
        lo, hi = gaps[0]
        raise ReferenceStatsError(f"images {lo}..{hi - 1} of {n_total} are in no shard (the shards were cut with "
                                  "different batch sizes?); recompute the shards with one --batch-size")
    dim = first.stats.dim
    stats = FeatureStats.empty(dim)
    for part in ordered:
        if part.stats.dim != dim:
            raise ReferenceStatsError(f"{part.name} has {part.stats.dim}-dimensional features, {first.name} {dim}")
        stats = stats.merge(part.stats)
    capacity = first.identity.get("bank_capacity")
    for part in ordered:
        if capacity and part.bank_features is None:
            raise ReferenceStatsError(f"{part.name}: its identity names a bank of {capacity} rows, but it holds none")
    identity = first.identity
    extractor = dict(identity.get("extractor") or {})
    meta = {**extractor, "precision": identity.get("precision"), "source": {**first.source, "n": n_total},
            "source_fingerprint": identity.get("source_fingerprint"),
            "shards": [{"shard": p.shard, "range": [p.start, p.stop], "file": None if p.path is None else p.path.name}
                       for p in ordered]}
    return MergedStats(stats, meta, parts=ordered)
