"""Benchmark: peak host memory of ``genbench.score`` at 10k and 100k images must be flat.

Each measurement is a fresh Python process (``bench_memory.py _child ...``) that scores a synthetic
ImageSource of N seeded 32x32 images against 1,000 synthetic reference images with the tiny test
extractor (``test-tiny``, registered from ``tests/plugins/tiny.py``), then reports
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak resident set, KiB on Linux). Images are made on
the fly per index, so the source itself holds nothing; what grows with N is genbench's own state.

Modes:

- ``fd``: Frechet distance only; statistics stream, features are not kept (memory must not grow with N);
- ``fd+cache``: the same through the feature cache (a fresh cache folder: chunks written, then an
  entry assembled by streaming; a miss); also must not grow;
- ``fd+is+kid``: metrics that keep per-image features and logits (16 + 5 floats per image for this
  extractor: 8.4 MB at 100k) grow by exactly that;
- ``fd-d2048``: Frechet distance with an Inception-sized feature dimension (a fixed random projection of
  the 8x8-pooled pixels to 2,048 ReLU features, ``bench-wide``): each 4,096-image chunk has a 32 MiB
  sum-of-outer-products matrix, so keeping chunk statistics instead of adding them up would show here.

Also measured: the same process importing genbench and building the extractor without scoring (the floor).

Each point is measured twice: with glibc's default allocator settings, and with
``MALLOC_MMAP_THRESHOLD_=131072``. By default glibc raises its mmap threshold as large blocks are
freed, after which per-batch buffers (a few MB each) come from the heap, whose high-water mark then
creeps up with the number of batches although nothing is kept; a fixed threshold returns those
blocks to the system, so what remains is what genbench really holds. Flatness is judged on the
fixed-threshold figures (``--max-growth-mib``).

Usage::

    .venv/bin/python bench/bench_memory.py                          # 10k and 100k, all modes
    .venv/bin/python bench/bench_memory.py --sizes 1000 10000 --modes fd --out reports/bench-memory.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = ("fd", "fd+cache", "fd+is+kid", "fd-d2048")
MMAP_THRESHOLD = 131072  # glibc's initial value, held fixed


def _child(n: int, mode: str, cache_dir: str) -> None:
    """One measured process."""
    os.environ["GENBENCH_CACHE"] = cache_dir
    sys.path.insert(0, str(ROOT))
    import tests.plugins.tiny  # noqa: F401  (registers test-tiny)
    from genbench.api import score
    from genbench.features import build_extractor
    from genbench.sources.base import ImageSource

    class Synthetic(ImageSource):
        """N seeded 32x32 images made on demand; fingerprint only when caching is measured."""

        kind = "synthetic"

        def __init__(self, n: int, seed: int, cacheable: bool) -> None:
            self.n, self.seed, self.cacheable = n, seed, cacheable
            self.location = f"synthetic-{seed}-{n}"

        def __len__(self) -> int:
            return self.n

        def read(self, index: int) -> np.ndarray:
            return self.read_batch(index, index + 1)[0]

        def read_batch(self, start: int, stop: int) -> np.ndarray:
            rng = np.random.default_rng([self.seed, start, stop])
            return rng.integers(0, 256, size=(stop - start, 3, 32, 32), dtype=np.uint8)

        def key(self, index: int) -> str:
            return str(index)

        def fingerprint(self) -> str:
            return f"synthetic-v1-{self.seed}-{self.n}" if self.cacheable else ""

    import torch

    from genbench.features.base import EXTRACTORS
    from tests.conftest import TinyExtractor

    class Wide(TinyExtractor):
        """test-tiny's pooling, then a fixed projection to 2048 ReLU features."""

        name, feature_dim, logits_dim = "bench-wide", 2048, None

        def __init__(self) -> None:
            super().__init__()
            proj = torch.randn(2048, 192, generator=torch.Generator().manual_seed(5)) / 14
            self.register_buffer("proj", proj)

        def forward(self, images):
            x = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255.0, 8).flatten(1)
            return {"features": torch.relu(x @ self.proj.T)}

    if "bench-wide" not in EXTRACTORS:
        EXTRACTORS.register("bench-wide")(lambda weights=None, preprocessing=None, device="cpu": Wide())
    build_extractor("test-tiny")
    if n == 0:
        result = {"n": 0, "mode": mode, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "seconds": 0.0}
        print(json.dumps(result))
        return
    metrics = {"fd": ["fd"], "fd+cache": ["fd"], "fd+is+kid": ["fd", "is", "kid"], "fd-d2048": ["fd"]}[mode]
    extractor = "bench-wide" if mode == "fd-d2048" else "test-tiny"
    cacheable = mode == "fd+cache"
    started = time.perf_counter()
    res = score(Synthetic(n, 1, cacheable), Synthetic(1000 if extractor == "test-tiny" else 4000, 2, cacheable),
                metrics, extractor=extractor, batch_size=256, kid_subsets=10, kid_subset_size=500, cache=cacheable)
    elapsed = time.perf_counter() - started
    cache_state = res.provenance["inputs"]["generated"].get("cache")
    print(json.dumps({"n": n, "mode": mode, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "seconds": round(elapsed, 2), "cache": cache_state, "fd": next(iter(res.metrics.values()))}))


def _measure(n: int, mode: str, fixed_mmap_threshold: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if fixed_mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    with tempfile.TemporaryDirectory(prefix="genbench-mem-") as cache:
        cmd = [sys.executable, str(Path(__file__).resolve()), "_child", str(n), mode, cache]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        _child(int(argv[1]), argv[2], argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench-memory.md")
    parser.add_argument("--max-growth-mib", type=float, default=32.0,
                        help="fail (exit 1) when fd or fd+cache grows more than this from the smallest to the largest size")
    args = parser.parse_args(argv)

    floor = {fixed: _measure(0, "fd", fixed)["maxrss_kib"] for fixed in (False, True)}
    rows = []
    for mode in args.modes:
        for n in args.sizes:
            row = _measure(n, mode, True)
            row["maxrss_default_kib"] = _measure(n, mode, False)["maxrss_kib"]
            rows.append(row)
            print(f"{mode:10s} n={n:>7}: peak RSS {row['maxrss_kib'] / 1024:7.1f} MiB fixed threshold, "
                  f"{row['maxrss_default_kib'] / 1024:7.1f} MiB glibc default ({row['seconds']:.1f} s, "
                  f"cache {row['cache']})", flush=True)
    lines = [
        "# Peak host memory of genbench score",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, 'bench/bench_memory.py', *argv])}`  ",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}  ",
        "Synthetic 32x32 images made per index, scored against 1,000 synthetic reference images with the",
        "`test-tiny` extractor (16 features, 5 logits; `fd-d2048`: 4,000 reference images and the 2,048-feature",
        "`bench-wide` extractor), batch size 256; peak RSS = `ru_maxrss` of a fresh process.",
        "",
        (f"Floor (imports + extractor, no scoring): {floor[True] / 1024:.1f} MiB with a fixed mmap threshold "
         f"(MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}), {floor[False] / 1024:.1f} MiB with glibc's defaults."),
        "",
        "| mode | images | peak RSS, fixed threshold (MiB) | above floor (MiB) | peak RSS, glibc default (MiB) | seconds | cache |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    failed = []
    for row in rows:
        lines.append(f"| {row['mode']} | {row['n']:,} | {row['maxrss_kib'] / 1024:.1f} | "
                     f"{(row['maxrss_kib'] - floor[True]) / 1024:.1f} | {row['maxrss_default_kib'] / 1024:.1f} | "
                     f"{row['seconds']:.1f} | {row['cache']} |")
    lines.append("")
    for mode in args.modes:
        sized = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["n"])
        growth = (sized[-1]["maxrss_kib"] - sized[0]["maxrss_kib"]) / 1024
        default_growth = (sized[-1]["maxrss_default_kib"] - sized[0]["maxrss_default_kib"]) / 1024
        lines.append(f"- {mode}: {sized[0]['n']:,} -> {sized[-1]['n']:,} images: {growth:+.1f} MiB "
                     f"(glibc default: {default_growth:+.1f} MiB)")
        if mode != "fd+is+kid" and growth > args.max_growth_mib:  # the others must stay flat
            failed.append(f"{mode} grew by {growth:.1f} MiB (> {args.max_growth_mib} MiB)")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if failed:
        print("NOT FLAT: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
