"""Benchmark: FID Inception feature extraction on the CPU, genbench against torch-fidelity.

Everything is measured side by side in one run (the machine is shared, so only ratios
taken together mean much). Both tools load the same seeded random weights file (the
real TF weights are not downloadable here; speed does not depend on the values) and
read the same folder of seeded PNG images.

1. Whole process, N images: wall time of a fresh ``python`` process that imports,
   loads the weights, reads the PNGs and extracts pool3 + unbiased logits:
   - genbench: ``python bench/bench_extract.py _extract --backend B ...`` (what
     ``genbench extract`` does, minus writing statistics);
   - torch-fidelity: ``fidelity --cpu --isc --input1 DIR --feature-extractor-weights-path W
     --no-cache --silent --json`` (ISC needs the same full forward pass).
   Runs are interleaved (ours, theirs, ours, theirs ...) and the median is reported.
   genbench's ONNX export is cached beforehand (its one-off cost is reported separately).
2. Steady state in one process: images/s of the extractor (preprocessing included) after
   a warm-up, for each backend, and torch-fidelity's extractor for comparison.

Usage::

    .venv/bin/python bench/bench_extract.py                    # 64 and 1000 images, 32x32
    .venv/bin/python bench/bench_extract.py --counts 64 --repeats 3 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_SEED = 20240611


# --------------------------------------------------------------------------- the measured genbench process


def _extract(args: argparse.Namespace) -> None:
    """What a genbench extraction process does: read PNGs, extract, save features and logits."""
    t0 = time.perf_counter()
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from genbench.features.inception import build_inception

    t_import = time.perf_counter()
    extractor = build_inception(weights=args.weights, backend=args.backend, allow_unverified=True)
    t_build = time.perf_counter()
    files = sorted(Path(args.images).glob("*.png"))
    features, logits = [], []
    for start in range(0, len(files), args.batch_size):
        batch = [np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files[start:start + args.batch_size]]
        out = extractor(torch.from_numpy(np.stack(batch)))
        features.append(out["features"].numpy())
        logits.append(out["logits"].numpy())
    np.savez(args.out, features=np.concatenate(features), logits=np.concatenate(logits))
    t_end = time.perf_counter()
    print(json.dumps({"backend": extractor.backend, "import_s": t_import - t0, "build_s": t_build - t_import,
                      "extract_s": t_end - t_build, "n": len(files)}), file=sys.stderr)


# --------------------------------------------------------------------------- setup


def _make_images(folder: Path, n: int, size: int, seed: int) -> None:
    from PIL import Image

    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    for i in range(n):
        phase = rng.uniform(0, 2 * np.pi, size=(1, 1, 3))
        smooth = 127.5 + 100 * np.sin(rng.uniform(1, 6) * np.pi * (xx + yy)[..., None] + phase)
        image = np.clip(smooth + rng.normal(0, 20, size=(size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:06d}.png")


def _make_weights(path: Path) -> None:
    if path.is_file():
        return
    import torch

    sys.path.insert(0, str(ROOT))
    from genbench.features.inception import random_state_dict

    torch.save(random_state_dict(WEIGHTS_SEED), path)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""


# --------------------------------------------------------------------------- steady state


def _steady_state(weights: Path, n: int, batch_size: int, size: int) -> dict[str, float]:
    import torch

    sys.path.insert(0, str(ROOT))
    from genbench.features import fast_cpu
    from genbench.features.inception import build_inception

    rng = np.random.default_rng(3)
    images = torch.from_numpy(rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8))
    runs: dict[str, object] = {}
    for backend in ("onnxruntime", "torch"):
        ext = build_inception(weights=weights, backend=backend, allow_unverified=True)
        runs[backend] = ext
    eager = build_inception(weights=weights, backend="torch", allow_unverified=True)
    eager.net.to(memory_format=torch.contiguous_format)
    eager.runner = fast_cpu.TorchRunner(eager.net, torch.device("cpu"), channels_last=False)
    runs["torch-eager-nchw"] = eager
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        runs["torch-fidelity"] = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights))
    except ImportError:
        pass

    def run(model) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(0, n, batch_size):
                model(images[i:i + batch_size])
        return n / (time.perf_counter() - start)

    for model in runs.values():  # warm-up
        with torch.no_grad():
            model(images[:batch_size])
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(2):  # interleaved
        for name, model in runs.items():
            rates[name].append(run(model))
    return {name: max(values) for name, values in rates.items()}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    ex = sub.add_parser("_extract", help="(internal) one measured genbench extraction process")
    ex.add_argument("--images", required=True)
    ex.add_argument("--weights", required=True)
    ex.add_argument("--out", required=True)
    ex.add_argument("--backend", default="auto")
    ex.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--counts", type=int, nargs="*", default=[64, 1000],
                        help="image counts for the whole-process runs (none: steady state only)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs per tool and count")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backends", nargs="+", default=["auto", "torch"], help="genbench backends to time")
    parser.add_argument("--steady-n", type=int, default=96, help="images per steady-state run (0 to skip)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep images/weights/cache here between runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.cmd == "_extract":
        _extract(args)
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genbench-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GENBENCH_CACHE=str(workdir / "cache"), PYTHONWARNINGS="ignore")
    os.environ["GENBENCH_CACHE"] = env["GENBENCH_CACHE"]
    weights = workdir / "random-inception.pth"
    _make_weights(weights)
    fidelity = shutil.which("fidelity", path=str(Path(sys.executable).parent)) or shutil.which("fidelity")
    results: dict[str, object] = {"cpu_count": os.cpu_count(), "image_size": args.size, "batch_size": args.batch_size,
                                  "python": sys.executable, "load_avg_start": os.getloadavg()}

    ours = [sys.executable, str(Path(__file__).resolve()), "_extract", "--weights", str(weights),
            "--batch-size", str(args.batch_size)]
    if args.counts:
        warm = workdir / "images_warm"
        _make_images(warm, 4, args.size, seed=99)
        shutil.rmtree(workdir / "cache", ignore_errors=True)
        cold, _ = _timed(ours + ["--images", str(warm), "--out", str(workdir / "warm.npz"), "--backend", "onnxruntime"],
                         env)
        results["first_run_with_onnx_export_s"] = cold
        print(f"first genbench run (exports and caches ONNX), 4 images: {cold:.1f} s", flush=True)

    for n in args.counts:
        folder = workdir / f"images_{n}_{args.size}"
        _make_images(folder, n, args.size, seed=n)
        commands = {f"genbench[{b}]": ours + ["--images", str(folder), "--out", str(workdir / "o.npz"), "--backend", b]
                    for b in args.backends}
        if fidelity:
            commands["torch-fidelity"] = [fidelity, "--cpu", "--isc", "--input1", str(folder),
                                          "--feature-extractor-weights-path", str(weights), "--no-cache",
                                          "--silent", "--json"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        notes: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                elapsed, note = _timed(cmd, env)
                times[name].append(elapsed)
                notes[name] = note
        summary = {name: {"median_s": statistics.median(v), "runs_s": v} for name, v in times.items()}
        for name in commands:
            if name.startswith("genbench"):
                summary[name]["phases"] = notes[name]
        if "torch-fidelity" in summary:
            ref = summary["torch-fidelity"]["median_s"]
            for name in commands:
                summary[name]["speedup_vs_torch_fidelity"] = ref / summary[name]["median_s"]
        results[f"whole_process_n{n}"] = summary
        print(f"\nwhole process, {n} images of {args.size}x{args.size} (median of {args.repeats}):")
        for name, s in summary.items():
            extra = f"  x{s['speedup_vs_torch_fidelity']:.2f} vs torch-fidelity" if "speedup_vs_torch_fidelity" in s else ""
            print(f"  {name:22s} {s['median_s']:7.2f} s  ({n / s['median_s']:5.1f} img/s){extra}", flush=True)

    if args.steady_n:
        rates = _steady_state(weights, args.steady_n, args.batch_size, args.size)
        results["steady_state_img_per_s"] = rates
        print(f"\nsteady state, {args.steady_n} images of {args.size}x{args.size}, batch {args.batch_size} (best of 2):")
        for name, rate in rates.items():
            print(f"  {name:22s} {rate:6.1f} img/s  ({rate / 29:.0%} of the ~29 img/s bound)")
    results["load_avg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
