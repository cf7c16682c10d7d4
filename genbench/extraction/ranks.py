"""This process's place under torchrun, read from the environment alone (no torch import, no process group).

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; without them this is the one process of a world
of one. The collectives themselves live in :mod:`genbench.extraction.distributed`.
"""
from __future__ import annotations

import dataclasses
import os

from ..config import ExtractOptions


def env_world_size() -> int:
    """WORLD_SIZE from the environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True unless this is a torchrun process of rank > 0 (read from the environment; no group needed)."""
    return env_world_size() <= 1 or int(os.environ.get("RANK", "0")) == 0


def local_device(device: str) -> str:
    """Under torchrun a CUDA device (``cuda`` or ``cuda:N``) becomes ``cuda:LOCAL_RANK`` (one GPU per process);
    unchanged otherwise."""
    if env_world_size() > 1 and device.partition(":")[0] == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def for_this_rank(options: ExtractOptions) -> ExtractOptions:
    """``options`` with the device of this rank (see :func:`local_device`)."""
    device = local_device(options.device)
    return options if device == options.device else dataclasses.replace(options, device=device)


def shard_range(n: int, rank: int, world_size: int, batch_size: int = 1) -> tuple[int, int]:
    """Images ``[start, stop)`` of rank ``rank``: contiguous shares of whole batches of ``batch_size``
    (the last may be short), whose batch counts differ by at most one.

    Cutting on the one-process run's batch boundaries gives every batch the same images as in one
    process, so float32 kernels that depend on the batch see the same batches and the features agree.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    batches = -(-n // batch_size)
    first, last = rank * batches // world_size, (rank + 1) * batches // world_size
    return min(first * batch_size, n), min(last * batch_size, n)
