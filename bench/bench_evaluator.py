"""genbench.Evaluator costs: update() over the bare network forward, and compute() at d=2048.

Run: .venv/bin/python bench/bench_evaluator.py [--device cpu] [--batch 256] [--repeats 20] [--dim 2048] [--threads N]
     [--compute-only]   (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set numpy's and torch's BLAS threads)

1. update() vs forward: fmnist-cnn, batches of ``--batch`` images. "forward" is the extractor called
   on a ready uint8 [B, 3, 28, 28] tensor under inference_mode; update() is timed on the same tensor
   (uint8), on float [B, 1, 28, 28] in [0, 1] (what a generator gives: range check + conversion), with
   only FD (no per-sample rows) and with KID (reservoir of 10 000 rows). Medians over ``--repeats``
   batches after warm-up; the Evaluator's batch_size equals ``--batch``, so one update is one forward.
2. compute() at d=``--dim``: an Evaluator whose extractor is a stand-in with 2048-d features, a
   reference of random statistics, and running sums of ``--n`` random features loaded with
   load_state_dict; compute() (FD only) against frechet_distance_from_stats on the same FeatureStats
   (what ``genbench score`` runs: both covariances, a factor of the generated one, two products, one
   eigenvalue solve) and against FrechetReference.distance (the reference prepared once, as compute()
   keeps it; covariance of the generated side included). Interleaved, one of each per round.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genbench.evaluator import Evaluator
from genbench.features.base import EXTRACTORS, FeatureExtractor, MetricNames
from genbench.metrics.fid import frechet_distance_from_stats

try:
    from genbench.metrics.fid import FrechetReference
except ImportError:  # an older genbench, for before/after figures
    FrechetReference = None
from genbench.stats.feature_stats import FeatureStats
from genbench.stats.io import save_stats


class _Wide(FeatureExtractor):
    """Stand-in extractor with ``dim``-dimensional features (only its identity is used here)."""

    name, layer, logits_dim = "bench-wide", "none", None
    metric_names = MetricNames("fd_wide", "is_wide", "kid_wide")

    def __init__(self, dim: int) -> None:
        super().__init__("none", "0" * 64)
        self.feature_dim = dim

    def forward(self, images):  # pragma: no cover - not called
        raise NotImplementedError


def bench_update(device: str, batch: int, repeats: int) -> None:
    dev = torch.device(device)
    rng = np.random.default_rng(0)
    u8 = torch.from_numpy(rng.integers(0, 256, (batch, 3, 28, 28), dtype=np.uint8)).to(dev)
    f01 = torch.from_numpy(rng.random((batch, 1, 28, 28), dtype=np.float32)).to(dev)
    fd_only = Evaluator("fashion-mnist:train", metrics=["fd_fmnist"], device=device, batch_size=batch)
    net = fd_only.extractor

    def forward():
        with torch.inference_mode():
            net(u8)

    # KID needs reference features: random images through the evaluator's own reference path.
    kid_ref = torch.from_numpy(rng.integers(0, 256, (2000, 28, 28, 1), dtype=np.uint8))
    with_kid = Evaluator(kid_ref, metrics=["fd_fmnist", "kid_fmnist"], extractor="fmnist-cnn", device=device,
                         batch_size=batch, cache=False)
    runs = {
        "bare forward (uint8 [B,3,28,28])": forward,
        "update uint8, FD only": lambda: fd_only.update(u8),
        "update float [0,1] 1-ch, FD only": lambda: fd_only.update(f01),
        "update uint8, FD + KID reservoir": lambda: with_kid.update(u8),
    }
    # Interleaved (one of each per round) so that load from other processes hits all alike.
    times = {label: [] for label in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for label, fn in runs.items():
            times[label].append(_once_ms(fn, dev))
    med = {label: statistics.median(t) for label, t in times.items()}
    base = med["bare forward (uint8 [B,3,28,28])"]
    print(f"update() vs forward, fmnist-cnn on {device}, batch {batch}, median of {repeats} interleaved rounds")
    for label, ms in med.items():
        extra = "" if ms is base else f"   overhead {ms - base:+7.2f} ms ({(ms / base - 1) * 100:+.1f} %)"
        print(f"  {label:<38} {ms:8.2f} ms{extra}")


def _once_ms(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t) * 1e3


def bench_compute(dim: int, n: int, repeats: int, device: str = "cpu") -> None:
    EXTRACTORS.register("bench-wide")(lambda weights=None, preprocessing=None, device="cpu": _Wide(dim).to(device))
    rng = np.random.default_rng(1)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    ref = FeatureStats.from_features(rng.standard_normal((n, dim)) @ mix)
    gen = FeatureStats.from_features(rng.standard_normal((n, dim)) @ mix + 0.1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref.npz"
        save_stats(path, ref, _Wide(dim).identity().to_dict())
        ev = Evaluator(str(path), metrics=["fd"], extractor="bench-wide", device=device)
    state = ev.state_dict()
    state.update(n=torch.tensor(gen.n), total=torch.from_numpy(gen.total), outer=torch.from_numpy(gen.outer))
    ev.load_state_dict(state)
    prepared = FrechetReference.from_stats(ref) if FrechetReference is not None else None
    times_ev, times_fd, times_ref = [], [], []
    ev.compute()  # warm-up (and the Evaluator's one-off preparation of the reference, where it has one)
    for _ in range(repeats):
        t = time.perf_counter()
        value = ev.compute().value("fd_wide")
        times_ev.append(time.perf_counter() - t)
        t = time.perf_counter()
        direct = frechet_distance_from_stats(gen, ref)
        times_fd.append(time.perf_counter() - t)
        if prepared is not None:
            t = time.perf_counter()
            against = prepared.distance(gen.mean(), gen.cov())
            times_ref.append(time.perf_counter() - t)
    print(f"compute() at d={dim} on {device} (n={n} random features per side, FD only, through the "
          f"prepared run's metric stage), median of {repeats} after a warm-up")
    print(f"  Evaluator.compute()                    {statistics.median(times_ev) * 1e3:8.1f} ms  (FD {value:.6g})")
    print(f"  frechet_distance_from_stats alone      {statistics.median(times_fd) * 1e3:8.1f} ms  (FD {direct:.6g})")
    if times_ref:
        print(f"  FrechetReference.distance (prepared)   {statistics.median(times_ref) * 1e3:8.1f} ms  "
              f"(FD {against:.6g}; relative gap to the line above {abs(against - direct) / direct:.1e})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--compute-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--compute-only", action="store_true", help="skip the update() benchmark")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.compute_only:
        bench_update(args.device, args.batch, args.repeats)
    bench_compute(args.dim, args.n, args.compute_repeats, args.device)


if __name__ == "__main__":
    main()
