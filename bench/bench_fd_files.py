"""`genbench score a.npz --ref b.npz --metrics fd` on two plain feature files, whole process, against
scipy.linalg.sqrtm alone on the same covariances.

Run: .venv/bin/python bench/bench_fd_files.py [--n 10000] [--dim 2048] [--repeats 3] [--json PATH]
     [--checkout DIR]   (time another checkout's genbench, e.g. an export of an older commit, the same way)

Writes two seeded float32 feature files (``features`` only, no metadata: what another tool exports) of
``--n`` rows and ``--dim`` columns, correlated through a random mixing matrix and rectified like pooled
ReLU features, into a temporary folder. Then, alternating so that load from other processes hits both
alike, ``--repeats`` times each:

- the whole ``python -m genbench score A --ref B --metrics fd --quiet`` process (interpreter start,
  imports, reading both files, float64 statistics, the Frechet distance, printing), wall time;
- ``scipy.linalg.sqrtm(sigma_a @ sigma_b)`` alone (the matrix square root pytorch-fid takes), on the
  float64 covariances of the same two files, the product computed outside the timing.

Prints the best of each, their ratio (the target of issue #26: genbench at most a fifth of sqrtm) and
the two FD values (genbench's, and the sqrtm formula's) with their relative difference.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg

ROOT = Path(__file__).resolve().parents[1]


def write_features(folder: Path, n: int, dim: int) -> tuple[Path, Path]:
    """Two seeded feature files [n, dim] float32 under ``folder``: the second shifted and scaled."""
    rng = np.random.default_rng(0)
    mix = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
    paths = []
    for name, scale, shift in (("a", 1.0, 0.0), ("b", 1.1, 0.05)):
        x = np.maximum(rng.standard_normal((n, dim), dtype=np.float32) @ mix * scale + shift, 0)
        path = folder / f"{name}.npz"
        np.savez(path, features=x.astype(np.float32))
        paths.append(path)
    return paths[0], paths[1]


def time_process(a: Path, b: Path, root: Path = ROOT) -> tuple[float, float]:
    """Wall seconds of one whole `genbench score` process (genbench imported from ``root``), and the FD it
    printed (from --json -)."""
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "genbench", "score", str(a), "--ref", str(b), "--metrics", "fd", "--quiet",
           "--json", "-"]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    return wall, float(json.loads(out.stdout)["metrics"]["fid"]["value"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", dest="json_out", default=None, help="Also write the figures as JSON here.")
    ap.add_argument("--checkout", type=Path, default=ROOT, help="The checkout whose genbench is timed.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = write_features(Path(tmp), args.n, args.dim)
        xa, xb = (np.load(p)["features"].astype(np.float64) for p in (a, b))
        mu_a, mu_b = xa.mean(0), xb.mean(0)
        sigma_a, sigma_b = np.cov(xa, rowvar=False), np.cov(xb, rowvar=False)
        product = sigma_a @ sigma_b
        del xa, xb
        process, sqrtm, value = [], [], float("nan")
        covmean = None
        for _ in range(args.repeats):
            wall, value = time_process(a, b, args.checkout)
            process.append(wall)
            start = time.perf_counter()
            covmean = scipy.linalg.sqrtm(product)
            sqrtm.append(time.perf_counter() - start)
    assert covmean is not None
    reference = float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b)
                      - 2 * np.trace(covmean).real)
    best_process, best_sqrtm = min(process), min(sqrtm)
    ratio = best_process / best_sqrtm
    figures = {
        "n": args.n, "dim": args.dim, "repeats": args.repeats, "checkout": str(args.checkout),
        "genbench_score_process_s": [round(t, 3) for t in process],
        "sqrtm_s": [round(t, 3) for t in sqrtm],
        "best_process_s": round(best_process, 3), "best_sqrtm_s": round(best_sqrtm, 3),
        "ratio": round(ratio, 4), "target_ratio": 0.2, "met": ratio <= 0.2,
        "fd_genbench": value, "fd_sqrtm": reference, "relative_difference": abs(value - reference) / abs(reference),
        "load_average": os.getloadavg(),
    }
    print(f"genbench score (whole process), best of {args.repeats}: {best_process:.2f} s  {figures['genbench_score_process_s']}")
    print(f"scipy.linalg.sqrtm alone,       best of {args.repeats}: {best_sqrtm:.2f} s  {figures['sqrtm_s']}")
    print(f"ratio {ratio:.3f} ({1 / ratio:.1f}x; target: at most 0.2) -> {'met' if figures['met'] else 'MISSED'}")
    print(f"FD: genbench {value:.6f}, sqrtm formula {reference:.6f}, relative difference "
          f"{figures['relative_difference']:.1e}; load average {figures['load_average'][0]:.2f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
