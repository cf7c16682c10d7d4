"""Statistics past one machine: one shard of a source (``genbench stats --shard K/N``) and the exact merge of the
shards (``genbench merge``). The file format and the checks are :mod:`genbench.stats.shards`.

    >>> part = genbench.compute_partial_stats("images/", "0/4", extractor="inception-v3")   # on machine 0, ...
    >>> genbench.merge_stats(["part-0.npz", "part-1.npz", "part-2.npz", "part-3.npz"], "stats.npz")

Shard K of N covers images ``[start, stop)`` of the source, cut as torchrun cuts its ranks' shares
(:func:`genbench.extraction.distributed.shard_range`: whole batches of ``--batch-size``, batch counts
differing by at most one), so every batch holds the images it holds in one pass and the features agree.
Each shard goes through the same prepared run (:func:`genbench.evaluate.prepare_run`) and the feature cache as
any other input (a shard is a :class:`~genbench.sources.subset.SubsetSource` with its own fingerprint).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import ExtractOptions
from .errors import ConfigError, InputError
from .stats.feature_stats import FeatureStats
from .stats.io import SavedStats, save_stats
from .stats.shards import PartialStats, load_partial, merge_partials, parse_shard

__all__ = ["compute_partial_stats", "merge_stats", "source_identity"]


def source_identity(source: Any) -> str:
    """What names a source across machines: sha256 of its cache fingerprint (content or file stamps), or, for a
    source without one (an in-memory array), ``location:<its location>``."""
    fingerprint = source.fingerprint()
    if fingerprint:
        return "sha256:" + hashlib.sha256(fingerprint.encode("utf-8", "surrogateescape")).hexdigest()
    return f"location:{source.location or source.kind}"


def compute_partial_stats(source: Any, shard: str | tuple[int, int], options: ExtractOptions | None = None, *,
                          bank: int | None = None, seed: int = 0, **keywords: Any) -> PartialStats:
    """Statistics of shard ``shard`` (``"K/N"`` or ``(K, N)``, K from 0) of ``source`` (anything ``genbench stats``
    takes: images, or a feature file, whose rows are cut the same way).

    ``bank``: also keep a seeded uniform sample of at most ``bank`` of the shard's per-sample features (and logits,
    where the extractor has a classifier head), for KID, precision/recall and IS against the merged statistics;
    ``seed`` seeds it. Raises ConfigError for a bad shard or bank, InputError for an empty source.
    Under torchrun each shard is itself split across the ranks; ranks other than 0 get the same statistics.
    ``options`` (an ExtractOptions) or ``keywords`` (its fields, as for :func:`genbench.compute_stats`) set the
    extraction; save the result with :func:`genbench.stats.shards.save_partial`.
    """
    from .evaluate import Evaluated, open_input, prepare_run
    from .extraction.ranks import for_this_rank, shard_range
    from .sources.subset import SubsetSource
    from .stats.shards import bank_sample
    from .util.files import sha256_file

    k, count = parse_shard(shard) if isinstance(shard, str) else (int(shard[0]), int(shard[1]))
    if not 0 <= k < count:
        raise ConfigError(f"shard (--shard) {k}/{count}: expected 0 <= K < N")
    if bank is not None and (isinstance(bank, bool) or not isinstance(bank, int) or bank < 1):
        raise ConfigError(f"bank (--bank) must be a number of rows >= 1, got {bank!r}")
    if keywords:
        if options is not None:
            raise ConfigError("compute_partial_stats(): give options= or keyword options, not both")
        from .config import API_DEFAULTS, split_options

        (values,) = split_options(keywords, ExtractOptions, call="compute_partial_stats")
        options = ExtractOptions(**{**API_DEFAULTS, **values})
    xo = for_this_rank(options or ExtractOptions(progress=False))
    from .sources.generator import generator_options

    item = open_input(source, "source", xo.extractor, xo.data_dir, allow_stats=False,
                      generator=generator_options(xo))
    keep = bank is not None
    if isinstance(item, Evaluated):  # a feature file: its rows, cut into shards as images would be
        assert item.features is not None  # a feature file holds per-sample features
        total_n, batch = len(item.features), xo.batch_size or 1
        start, stop = shard_range(total_n, k, count, batch)
        rows: np.ndarray | None = item.features[start:stop]
        logits = None if item.logits is None else item.logits[start:stop]
        stats = FeatureStats.from_features(item.features[start:stop]) if stop > start else FeatureStats.empty(item.features.shape[1])
        extractor_identity = {key: v for key, v in (item.identity or {}).items() if key not in ("precision", "source", "n")}
        precision = (item.identity or {}).get("precision", "float32")
        fingerprint = "sha256:" + sha256_file(item.description)  # the feature file's content
        described = {"kind": "features", "location": item.description, "n": total_n}
    else:
        run = prepare_run({"source": item}, xo, specs=[source], build=True)
        assert run.extractor is not None  # build=True
        full = item.source
        total_n = len(full)
        start, stop = shard_range(total_n, k, count, run.options.batch_size or 1)
        if stop > start:
            sub = SubsetSource(full, np.arange(start, stop), f"shard {k}/{count}: images {start}..{stop - 1}")
            ev = run.extract(sub, "source", keep_features=keep, keep_logits=keep)
            stats, rows, logits = ev.stats, ev.features, ev.logits
        else:  # more shards than batches: this one is empty, and merge still needs it
            stats, rows, logits = FeatureStats.empty(run.extractor.feature_dim), None, None
        extractor_identity = run.extractor.identity().to_dict()
        precision = run.options.precision
        fingerprint = source_identity(full)
        described = full.info().to_dict()
    identity = {"extractor": extractor_identity, "precision": precision, "source_fingerprint": fingerprint,
                "source_n": total_n, "shards": count, "bank_capacity": bank, "bank_seed": seed if keep else None}
    bank_f = bank_l = None
    if keep:
        width = stats.dim
        if rows is None:
            rows = np.zeros((0, width), np.float32)
        take = bank_sample(len(rows), int(bank), seed, k, count)  # type: ignore[arg-type]  # bank is an int here
        bank_f = np.asarray(rows, np.float32)[take]
        bank_l = None if logits is None else np.asarray(logits, np.float32)[take]
    return PartialStats(stats, k, start, stop, identity, described, bank_f, bank_l)


def merge_stats(parts: Sequence[str | Path | PartialStats], output: str | Path | None = None, *,
                overwrite: bool = False) -> SavedStats:
    """Merge the partial statistics ``parts`` (files written by ``genbench stats --shard``, or PartialStats) into one
    statistics file's content, equal to a single pass over the source; write it to ``output`` when given (atomically;
    ConfigError when it exists and ``overwrite`` is False).

    The merged bank (where the parts kept one) is saved beside mu and sigma and serves KID, precision/recall against
    it. Raises ReferenceStatsError naming the shard for a damaged or incomplete part, mixed identities, overlapping
    or missing shards.
    """
    from .extraction.accumulator import merge_banks

    if output is not None and not overwrite and Path(output).exists():
        raise ConfigError(f"{output} exists; pass --overwrite to replace it")
    if not parts:
        raise InputError("merge: no partial statistics files given")
    loaded = [p if isinstance(p, PartialStats) else load_partial(p) for p in parts]
    merged = merge_partials(loaded)
    identity = merged.parts[0].identity
    capacity = identity.get("bank_capacity")
    if capacity:
        merged.bank_features, merged.bank_logits = merge_banks(
            [(p.stop - p.start, p.bank_features, p.bank_logits) for p in merged.parts], merged.stats.n,
            int(capacity), int(identity.get("bank_seed") or 0))
        merged.meta["bank"] = {"capacity": int(capacity), "seed": identity.get("bank_seed"),
                               "rows": int(len(merged.bank_features if merged.bank_features is not None else []))}
    if merged.stats.n < 2:
        raise InputError(f"merge: the shards hold {merged.stats.n} image(s); statistics need at least 2")
    if output is not None:
        save_stats(output, merged.stats, merged.meta, overwrite=overwrite, bank_features=merged.bank_features,
                   bank_logits=merged.bank_logits)
    return SavedStats(merged.stats, merged.meta, None if output is None else Path(output),
                      bank_features=merged.bank_features, bank_logits=merged.bank_logits)
