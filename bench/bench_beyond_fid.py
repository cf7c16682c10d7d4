"""Benchmark: time and peak memory of the metrics beyond FID at N generated x N reference features.

Each (metric, N) runs in a fresh Python process (``bench_beyond_fid.py _child METRIC N DIM``) on seeded
synthetic features: a 10-component Gaussian mixture in DIM dimensions (default 128, the fmnist-cnn width),
generated and reference sets of N each; FLD also gets N training and N/5 test features. It reports wall
time of the metric's pure function (features already in memory, float32 as extraction keeps them) and
``ru_maxrss`` (peak resident set of the whole process, KiB on Linux) minus the same process's peak just
before the call, i.e. what the metric added on top of its inputs.

Usage::

    .venv/bin/python bench/bench_beyond_fid.py --sizes 10000 --out reports/bench-beyond-fid-10k.jsonl
    nice .venv/bin/python bench/bench_beyond_fid.py --sizes 50000 --out reports/bench-beyond-fid-50k.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

METRICS = ["vendi", "mifid", "top_pr", "realism_rarity", "alpha_beta", "authenticity", "fld", "fd_diagnostics"]


def _features(n: int, dim: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).standard_normal((10, dim)) * 3.0
    return (means[rng.integers(10, size=n)] + scale * rng.standard_normal((n, dim))).astype(np.float32)


def _run(metric: str, gen: np.ndarray, ref: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict:
    if metric == "vendi":
        from genbench.metrics.vendi import vendi_score
        return {"value": vendi_score(gen)}
    if metric == "mifid":
        from genbench.metrics.fid import frechet_distance
        from genbench.metrics.mifid import memorization_distance, mifid_from
        fd = frechet_distance(gen.mean(0, dtype=np.float64), np.cov(gen, rowvar=False), ref.mean(0, dtype=np.float64),
                              np.cov(ref, rowvar=False))
        return {"value": mifid_from(fd, memorization_distance(gen, ref))}
    if metric == "top_pr":
        from genbench.metrics.top_pr import top_pr
        res = top_pr(ref, gen, seed=0)
        return {"precision": res.precision, "recall": res.recall}
    if metric == "realism_rarity":
        from genbench.metrics.realism import sample_scores
        s = sample_scores(ref, gen)
        return {"realism": s.realism_summary()["value"], "rarity": s.rarity_summary()["value"]}
    if metric == "alpha_beta":
        from genbench.metrics.alpha_precision import alpha_precision_beta_recall
        a = alpha_precision_beta_recall(ref, gen)
        return {"alpha_precision": a.alpha_precision, "beta_recall": a.beta_recall}
    if metric == "authenticity":
        from genbench.metrics.alpha_precision import authenticity
        return {"value": authenticity(ref, gen).value}
    if metric == "fld":
        from genbench.metrics.fld import fld
        r = fld(train, test, gen, seed=0)
        return {"fld": r.fld, "gap": r.gap}
    if metric == "fd_diagnostics":
        from genbench.metrics.fd_diagnostics import fd_diagnostics
        from genbench.metrics.fid import frechet_distance_from_stats
        from genbench.stats.feature_stats import FeatureStats
        a, b = FeatureStats.from_features(gen), FeatureStats.from_features(ref)
        out = fd_diagnostics(a, b, frechet_distance_from_stats(a, b), check=True)
        return {"relative_difference": out["check"]["relative_difference"]}
    raise SystemExit(f"unknown metric {metric}")


def _child(metric: str, n: int, dim: int) -> None:
    gen = _features(n, dim, 1, 1.1)
    ref = _features(n, dim, 2)
    train = _features(n, dim, 3) if metric == "fld" else ref
    test = _features(max(n // 5, 2), dim, 4) if metric == "fld" else ref
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    values = _run(metric, gen, ref, train, test)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"metric": metric, "n": n, "dim": dim, "seconds": round(seconds, 2),
                      "peak_rss_mib": round(peak / 1024, 1), "added_mib": round((peak - before) / 1024, 1),
                      "values": values}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--metrics", nargs="+", default=METRICS, choices=METRICS)
    ap.add_argument("--out", help="Append one JSON line per measurement here.")
    args = ap.parse_args()
    header = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "omp_threads": os.environ.get("OMP_NUM_THREADS")}
    print(json.dumps(header), flush=True)
    for n in args.sizes:
        for metric in args.metrics:
            res = subprocess.run([sys.executable, __file__, "_child", metric, str(n), str(args.dim)],
                                 capture_output=True, text=True, check=False)
            line = res.stdout.strip().splitlines()[-1] if res.returncode == 0 and res.stdout.strip() else json.dumps(
                {"metric": metric, "n": n, "error": res.stderr.strip()[-500:]})
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")


if __name__ == "__main__":
    main()
