"""Extraction of one input, through the feature cache, on one process or across torchrun's processes.

    torchrun --nproc-per-node=4 -m genbench score samples/ --ref cifar10:train --device cuda
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        -m genbench score samples/ --ref stats.npz --device cuda

With ``WORLD_SIZE > 1`` in the environment (torchrun sets it) the first extraction initialises the default
process group: NCCL when the device is CUDA (each rank on ``cuda:LOCAL_RANK``, see :func:`genbench.extraction.ranks.local_device`),
gloo on the CPU. Each input of N images is cut into WORLD_SIZE contiguous shares of whole batches whose
batch counts differ by at most one (:func:`shard_range`); each rank extracts its share; the float64 sums
(n, sum of features, sum of outer products) are all-reduced, so the statistics equal one pass up to float64
rounding; per-image features, logits and labels are gathered to rank 0 in the original order, only when a
metric needs them.
Rank 0 alone computes metrics, prints and writes results; :func:`genbench.extraction.ranks.is_main_process` is False elsewhere, and
the CLI then exits 0 without output.

Cache (:mod:`genbench.extraction.cache`): rank 0 decides hit or miss for everyone. On a miss each rank saves its chunks
under its own cache folder; where all ranks share the folder (one node, or a shared file system) rank 0
assembles the complete entry; otherwise each node keeps its chunks, which a later run with the same world
size resumes from.

A GenbenchError on one rank (say a corrupt image in its share) is raised on every rank, naming the rank,
instead of leaving the others waiting in a collective.
"""
from __future__ import annotations

import atexit
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from ..errors import GenbenchError, InputError
from ..stats.feature_stats import FeatureStats
from .engine import ProgressCounter, check_precision, chunk_ranges, iter_chunks, prepare_extractor, sum_stats
from .ranks import env_world_size, shard_range
from .request import ExtractionRequest


@dataclass(frozen=True)
class DistContext:
    """This process's place: rank, world size, local rank, and the device collectives run on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    comm_device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class Extraction:
    """One input after extraction. On ranks other than 0, ``features``, ``logits`` and ``labels`` are None.

    ``stats``: exact float64 sums over all images; ``features`` float32 [N, D], ``logits`` float32 [N, K],
    ``labels`` int64 [N] where kept; ``info``: ``cache`` ("hit", "miss", "partial" = resumed, or "off"),
    ``precision``, and under torchrun ``world_size`` and ``shard_sizes``.
    """

    stats: FeatureStats
    features: np.ndarray | None = None
    logits: np.ndarray | None = None
    labels: np.ndarray | None = None
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- environment


def init_distributed(device: torch.device) -> DistContext:
    """The context of this process; initialises the process group once when WORLD_SIZE > 1."""
    world_size = env_world_size()
    if world_size <= 1:
        return DistContext()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.type == "cuda"
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(_shutdown)
    comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, comm)


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- collectives on statistics


def _pack(stats: FeatureStats, device: torch.device) -> torch.Tensor:
    flat = np.concatenate([[float(stats.n)], stats.total, stats.outer.ravel()])
    return torch.from_numpy(flat).to(device)


def _unpack(flat: torch.Tensor, dim: int) -> FeatureStats:
    values = flat.cpu().numpy()
    return FeatureStats(round(values[0]), values[1:1 + dim].copy(), values[1 + dim:].reshape(dim, dim).copy())


def _all_reduce_stats(stats: FeatureStats, ctx: DistContext) -> FeatureStats:
    flat = _pack(stats, ctx.comm_device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return _unpack(flat, stats.dim)


def _broadcast_stats(stats: FeatureStats | None, dim: int, ctx: DistContext) -> FeatureStats:
    if ctx.is_main:
        assert stats is not None  # rank 0 sends its statistics
        flat = _pack(stats, ctx.comm_device)
    else:
        flat = torch.zeros(1 + dim + dim * dim, dtype=torch.float64, device=ctx.comm_device)
    dist.broadcast(flat, src=0)
    return _unpack(flat, dim)


def _broadcast_flag(flag: bool, ctx: DistContext) -> bool:
    box = [flag]
    dist.broadcast_object_list(box, src=0, device=ctx.comm_device)
    return bool(box[0])


# ----------------------------------------------------------------------------- extraction


def extract_features(request: ExtractionRequest) -> Extraction:
    """Statistics (always) and features/logits (when ``request`` keeps them) of ``request.source``: from the
    cache, else extracted, across torchrun's ranks when there are several.

    Raises InputError for an empty source and whatever extraction raises (on every rank under torchrun).
    """
    from ..util.progress import progress_bar
    from .cache import ASSEMBLY_ERRORS, FeatureCache, cache_key

    source, extractor, options, role = request.source, request.extractor, request.options, request.role
    keep_features, keep_logits = request.keep_features, request.keep_logits  # no logits without a head
    where = request.where
    n, dim = len(source), extractor.feature_dim
    if n == 0:
        raise InputError(f"{where}: no images to score")
    device = torch.device(options.device)
    precision = getattr(options, "precision", "float32")
    check_precision(precision, device)
    prepare_extractor(extractor, device)
    ctx = init_distributed(device)
    info: dict = {"precision": precision}
    shares = [shard_range(n, rank, ctx.world_size, request.batch_size) for rank in range(ctx.world_size)]
    if ctx.world_size > 1:
        info["world_size"] = ctx.world_size
        info["shard_sizes"] = [stop - start for start, stop in shares]

    identity = extractor.identity().to_dict()
    key = cache_key(source, identity, precision) if getattr(options, "cache", True) else None
    store = FeatureCache() if key else None

    # Hit: rank 0 reads the entry; the others get the statistics.
    entry = None
    if store is not None and ctx.is_main:
        assert key is not None  # store is set only with a key
        entry = store.load(key, n, dim)
    hit = entry is not None if ctx.world_size == 1 else _broadcast_flag(entry is not None, ctx)
    if hit:
        stats = entry.stats if entry is not None else None  # rank 0 read the entry; the other ranks did not
        if ctx.world_size > 1:
            stats = _broadcast_stats(stats, dim, ctx)
        assert stats is not None  # rank 0's, or broadcast from it
        if not ctx.is_main:
            return Extraction(stats, info={**info, "cache": "hit"})
        assert entry is not None  # rank 0, and a hit
        return Extraction(
            stats,
            features=entry.features() if keep_features else None,
            logits=entry.logits() if keep_logits else None,
            labels=entry.labels() if source.has_labels else None,
            info={**info, "cache": "hit"},
        )

    # Miss: each rank extracts (or resumes) its share, chunk by chunk.
    start, stop = shares[ctx.rank]
    ranges = chunk_ranges(start, stop, request.batch_size)
    error: GenbenchError | None = None
    # Per-image arrays of this share, filled chunk by chunk; chunk statistics (d x d each) are summed on arrival.
    share = stop - start
    features = np.empty((share, dim), np.float32) if keep_features else None
    logits = (np.empty((share, extractor.logits_dim), np.float32)
              if keep_logits and extractor.logits_dim is not None else None)  # keep_logits implies a logits_dim
    labels = np.empty(share, np.int64) if source.has_labels else None
    loaded = 0

    def arriving(bar: ProgressCounter) -> Iterator[FeatureStats]:
        nonlocal loaded
        if store is not None:
            from .cache import resumable_chunks

            assert key is not None  # store is set only with a key
            stream = resumable_chunks(store, key, request, ranges, bar)
        else:
            stream = ((c, False) for c in iter_chunks(request, ranges, bar))
        for chunk, was_loaded in stream:
            loaded += len(chunk) if was_loaded else 0
            rows = slice(chunk.start - start, chunk.stop - start)
            for array, part in ((features, chunk.features), (logits, chunk.logits), (labels, chunk.labels)):
                if array is not None and part is None:
                    raise InputError(f"{where}: extractor {extractor.name} returned no logits although it declares "
                                     f"logits_dim={extractor.logits_dim}" if array is logits else
                                     f"{where}: no labels for images {chunk.start}..{chunk.stop - 1}")
                if array is not None and part is not None:  # part is not None here: checked just above
                    array[rows] = part
            yield chunk.stats

    stats = FeatureStats.empty(dim)
    try:
        with progress_bar(stop - start, f"extract {role}", enabled=options.progress and ctx.is_main) as bar:
            stats = sum_stats(arriving(bar), dim)
    except GenbenchError as exc:
        if ctx.world_size == 1:
            raise
        error = exc
    if ctx.world_size > 1:
        loaded = _agree_or_raise(error, loaded, where, ctx)

    if ctx.world_size > 1:
        stats = _all_reduce_stats(stats, ctx)
        wanted = keep_features or keep_logits or source.has_labels  # the same on every rank
        features, logits, labels = _gather_to_main((features, logits, labels), ctx) if wanted else (None,) * 3
    info["cache"] = "off" if store is None else ("partial" if loaded else "miss")

    if store is not None and ctx.is_main:
        assert key is not None  # store is set only with a key
        everyone = [r for share in shares for r in chunk_ranges(*share, request.batch_size)]
        if all(store.has_chunk(key, *r) for r in everyone):  # all ranks' chunks visible here
            meta = {"identity": identity, "precision": precision, "fingerprint": source.fingerprint(),
                    "source": source.info().to_dict()}
            try:
                store.write_entry(key, everyone, [source.key(i) for i in range(n)], meta)
                store.discard_partial(key)
            except ASSEMBLY_ERRORS as exc:  # disk full, or another process assembled it meanwhile: results stand
                warnings.warn(f"feature cache {store.root}: cannot write the entry for {where} ({exc})",
                              RuntimeWarning, stacklevel=2)
    if not ctx.is_main:
        return Extraction(stats, info=info)
    return Extraction(stats, features, logits, labels, info)


def _agree_or_raise(error: GenbenchError | None, loaded: int, where: str, ctx: DistContext) -> int:
    """Share each rank's outcome; raise on every rank when any failed. Returns the images resumed, all ranks."""
    mine = (None if error is None else f"{type(error).__name__}: {error}", loaded)
    outcomes: list = [None] * ctx.world_size
    dist.all_gather_object(outcomes, mine)
    if error is not None:
        raise error
    failed = [(rank, message) for rank, (message, _) in enumerate(outcomes) if message is not None]
    if failed:
        rank, message = failed[0]
        raise InputError(f"{where}: extraction failed on rank {rank} of {ctx.world_size}: {message}")
    return sum(count for _, count in outcomes)


def _gather_to_main(arrays: tuple, ctx: DistContext) -> tuple:
    """Per-rank arrays (or Nones) concatenated in rank order on rank 0; Nones elsewhere."""
    gathered: list | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(arrays, gathered, dst=0)
    if not ctx.is_main:
        return (None,) * len(arrays)
    assert gathered is not None  # rank 0's list
    return tuple(None if arrays[i] is None else np.concatenate([g[i] for g in gathered]) for i in range(len(arrays)))
