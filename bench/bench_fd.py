"""Frechet distance at d=2048: genbench's factor + symmetric-eigenvalue method vs scipy.linalg.sqrtm.

Run: .venv/bin/python bench/bench_fd.py [--dim 2048] [--repeats 3]
Both run side by side in one process on the same float64 statistics; prints times, the ratio
and the relative difference of the two values.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg

from genbench.metrics.fid import frechet_distance


def sqrtm_fd(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((args.dim, args.dim)) / np.sqrt(args.dim)
    x = np.maximum(rng.standard_normal((args.n, args.dim)) @ mix, 0)
    y = np.maximum(rng.standard_normal((args.n, args.dim)) @ mix * 1.1 + 0.05, 0)
    stats = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    ours, theirs = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        a = frechet_distance(*stats)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = sqrtm_fd(*stats)
        theirs.append(time.perf_counter() - t)
    print(f"d={args.dim} n={args.n}: genbench {min(ours):.3f} s, scipy sqrtm {min(theirs):.3f} s, "
          f"ratio {min(theirs) / min(ours):.1f}x, values {a:.12g} vs {b:.12g}, relative difference {abs(a - b) / abs(b):.2e}")


if __name__ == "__main__":
    main()
