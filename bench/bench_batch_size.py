"""Extraction speed and peak memory against the batch size, on the CPU: fmnist-cnn and Inception-v3.

Run: .venv/bin/python bench/bench_batch_size.py [--fmnist-n 5000] [--inception-n 64] [--repeats 3]
     [--fmnist-batches 16 64 128 256 500 1000 2000] [--inception-batches 8 16 32 64] [--threads N]

Each (extractor, batch size) runs in a fresh process (so ru_maxrss is that run's peak) that builds the
extractor, makes seeded random uint8 images (28x28 grey for fmnist-cnn, 32x32 RGB for Inception, resized
to 299 as in scoring), warms up on one batch, then times :func:`genbench.evaluate.extract_source` on all
images: the path of ``genbench score`` (array source, loader, the extractor's preprocessing, float64
statistics), cache off. Inception uses seeded random weights (the published file cannot be downloaded
here; speed does not depend on the values) and the default backend (ONNX Runtime on the CPU when
installed; exported once beforehand into a private cache). Rounds are interleaved over the batch sizes
so that load from other processes hits all alike; medians are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _one(extractor: str, batch: int, n: int, weights: str | None) -> dict:
    import numpy as np
    import torch

    from genbench.config import ExtractOptions
    from genbench.evaluate import extract_source
    from genbench.features import build_extractor
    from genbench.sources.resolve import as_source

    rng = np.random.default_rng(0)
    shape = (n, 28, 28) if extractor == "fmnist-cnn" else (n, 32, 32, 3)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    net = build_extractor(extractor, weights, None, "cpu", allow_unverified=weights is not None)
    xo = ExtractOptions(extractor=extractor, batch_size=batch, progress=False, cache=False)
    extract_source(as_source(images[:min(batch, n)]), net, xo, keep_features=False, keep_logits=False)  # warm-up
    t = time.perf_counter()
    ev = extract_source(as_source(images), net, xo, keep_features=False, keep_logits=False)
    wall = time.perf_counter() - t
    assert ev.n == n
    backend = getattr(net, "backend", "torch")
    return {"extractor": extractor, "batch": batch, "n": n, "seconds": wall, "images_per_s": n / wall,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "backend": backend,
            "threads": torch.get_num_threads()}


def _spawn(extractor: str, batch: int, n: int, weights: str | None, env: dict) -> dict:
    cmd = [sys.executable, __file__, "_one", extractor, str(batch), str(n)] + ([weights] if weights else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        extractor, batch, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(_one(extractor, batch, n, sys.argv[5] if len(sys.argv) > 5 else None)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fmnist-n", type=int, default=5000)
    ap.add_argument("--inception-n", type=int, default=64)
    ap.add_argument("--fmnist-batches", type=int, nargs="*", default=[16, 64, 128, 256, 500, 1000, 2000])
    ap.add_argument("--inception-batches", type=int, nargs="*", default=[8, 16, 32, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of each run (default: torch's choice)")
    ap.add_argument("--json", type=Path, default=None, help="write every run here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GENBENCH_CACHE": str(Path(tmp) / "cache")}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        weights = None
        if args.inception_batches:
            import torch

            from genbench.features.inception import random_state_dict

            weights = str(Path(tmp) / "random-inception.pth")
            torch.save(random_state_dict(0), weights)
            _spawn("inception-v3", 1, 1, weights, env)  # exports the ONNX model into the private cache once
        plan = [("fmnist-cnn", b, args.fmnist_n, None) for b in args.fmnist_batches]
        plan += [("inception-v3", b, args.inception_n, weights) for b in args.inception_batches]
        runs: list[dict] = []
        for _ in range(args.repeats):
            for extractor, batch, n, w in plan:
                runs.append(_spawn(extractor, batch, n, w, env))
                r = runs[-1]
                print(f"  {extractor:<13} batch {batch:5d}: {r['images_per_s']:8.1f} img/s  "
                      f"peak {r['peak_rss_mib']:7.0f} MiB", file=sys.stderr, flush=True)

    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(f"extraction on the CPU, median of {args.repeats} interleaved rounds "
          f"({runs[0]['threads']} threads; fresh process per run)")
    print("| extractor | backend | batch | images | images/s | vs batch 64 | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for extractor in ("fmnist-cnn", "inception-v3"):
        mine = [r for r in runs if r["extractor"] == extractor]
        if not mine:
            continue
        speed = {b: statistics.median(r["images_per_s"] for r in mine if r["batch"] == b)
                 for b in sorted({r["batch"] for r in mine})}
        base = speed.get(64)
        for b, s in speed.items():
            peak = statistics.median(r["peak_rss_mib"] for r in mine if r["batch"] == b)
            ratio = f"{s / base:.2f}x" if base else "-"
            print(f"| {extractor} | {mine[0]['backend']} | {b} | {mine[0]['n']} | {s:.1f} | {ratio} | {peak:.0f} |")


if __name__ == "__main__":
    main()
