"""Time a 5-checkpoint `genbench sweep` against 5 separate `genbench score` runs (same inputs, same options).

    python bench/bench_sweep.py [--ref-n 10000] [--gen-n 2000] [--extractor fmnist-cnn]

Makes a reference of REF_N and five 'checkpoints' of GEN_N smooth random 28x28 images in a temporary folder,
then times, each as its own process: 5 x `genbench score ckpt-K.npz --ref ref.npy`, and one `genbench sweep`
over the five. Twice: with --no-cache (every score extracts the reference again) and with a warm feature cache
(the reference's features read back from the cache by each score). Prints one line per case.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import make_images  # noqa: E402


def _run(args: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "genbench", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref-n", type=int, default=10_000)
    parser.add_argument("--gen-n", type=int, default=2_000)
    parser.add_argument("--extractor", default="fmnist-cnn")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        np.save(work / "ref.npy", make_images(a.ref_n, seed=0, size=28))
        names = []
        for i in range(5):
            names.append(f"ckpt-{(i + 1) * 1000:06d}.npz")
            np.savez(work / names[-1], images=make_images(a.gen_n, seed=10 + i, size=28, shift=0.05 * i))
        env = {**os.environ, "PYTHONPATH": str(REPO), "GENBENCH_CACHE": str(work / "cache")}
        common = ["--ref", "ref.npy", "--extractor", a.extractor, "--bootstrap", "0", "-q"]
        for label, extra in (("no cache", ["--no-cache"]), ("warm cache", [])):
            if extra == []:  # warm the cache with every input once
                _run(["sweep", *names, *common, "--out", "warm.jsonl", "--plot", "-"], work, env)
            scores = sum(_run(["score", name, *common, *extra], work, env) for name in names)
            out = f"sweep-{label.replace(' ', '-')}.jsonl"
            swept = _run(["sweep", *names, *common, *extra, "--out", out, "--plot", "-"], work, env)
            print(f"{label}: 5 x score {scores:.1f} s, sweep {swept:.1f} s, saved {scores - swept:.1f} s "
                  f"({100 * (scores - swept) / scores:.0f}%), reference {a.ref_n}, 5 x {a.gen_n} generated, "
                  f"{a.extractor}, CPU")


if __name__ == "__main__":
    main()
