"""GPU checks and benchmarks of genbench in one script (``bench/gpu_all.sh`` runs it after the unit tests).

All with the FID Inception-v3 at 299x299 on a seeded random weights file (the published weights cannot be
downloaded on the GPU machine; speed does not depend on the values, and both tools load the same file),
on folders of seeded 32x32 PNGs: GEN (default 50,000 images) and REF (default 10,000).

1. **End to end** (fresh processes, caches off): ``genbench score GEN --ref REF --metrics fid,is`` in float32
   (TF32 off), against torch-fidelity's ``calculate_metrics(input1=GEN, input2=REF, fid=True, isc=True)`` with
   TF32 off too (the same arithmetic), and with PyTorch's defaults (cuDNN convolutions in TF32), which is what
   its users get. Wall time, images/s, and the FID/IS values of both tools.
2. **Feature cache**: the same genbench score twice in fresh processes on an empty cache: miss (extract and
   write the entries), then hit (no extraction).
3. **Precision**: what ``--precision tf32`` / ``bf16`` change: :func:`genbench.extraction.engine.precision_deviation` on
   the first 4,096 GEN images against REF's float32 statistics, and the line ``genbench score --precision
   bf16`` prints with its result.
4. **Steady state**: images/s of the extractor alone on uint8 batches already on the device (float32, tf32,
   bf16), and torch-fidelity's extractor under the same settings.
5. **Frechet distance at d=2048**: genbench's ``frechet_distance`` (float64 numpy, CPU), the same formula in
   torch float64 on the GPU, and scipy's ``sqrtm`` as pytorch-fid computes it; values and times.

Writes ``reports/bench-gpu.md`` and ``reports/bench-gpu.json`` (``--smoke``: ``reports/bench-gpu-smoke.*``)
with the device, versions and command. ``--smoke`` runs everything small (and on the CPU when there is no
GPU; tf32 rows are then skipped) to show that the script works.

Usage::

    bench/gpu_all.sh                                   # on the GPU machine, ~5 minutes
    bench/gpu_all.sh --smoke                           # anywhere, ~2-4 minutes on 2 CPU cores
    python bench/bench_gpu.py --n 50000 --n-ref 10000 --batch-size 250 --workers 12 --workdir /tmp/gb

When imported as a plug-in (``GENBENCH_PLUGINS=bench_gpu`` with ``bench/`` on the path, as the measured
processes do), this module registers the extractor ``inception-v3-unverified``: inception-v3 built from the
given ``--weights`` without the published-sha256 check (its actual sha256 is still recorded).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_SEED = 20240611
UNVERIFIED = "inception-v3-unverified"


# --------------------------------------------------------------------------- plug-in for the measured processes


def _register_unverified() -> None:
    from genbench.features.base import EXTRACTORS

    if UNVERIFIED in EXTRACTORS:
        return

    @EXTRACTORS.register(UNVERIFIED)
    def build(weights=None, preprocessing=None, device="cpu"):
        from genbench.features.inception import build_inception

        return build_inception(weights, preprocessing, device, backend="torch", allow_unverified=True,
                               allow_download=False)


if __name__ != "__main__":  # imported through GENBENCH_PLUGINS
    _register_unverified()


# --------------------------------------------------------------------------- data


def _write_png(args: tuple[Path, int, int, int]) -> None:
    from PIL import Image

    folder, start, stop, seed = args
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i])
        phase = rng.uniform(0, 2 * np.pi, size=(1, 1, 3))
        smooth = 127.5 + 100 * np.sin(rng.uniform(1, 6) * np.pi * (xx + yy)[..., None] + phase)
        image = np.clip(smooth + rng.normal(0, 20, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:06d}.png")


def make_folder(folder: Path, n: int, seed: int, procs: int) -> float:
    """n seeded 32x32 PNGs (reused when already there); returns seconds spent."""
    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    step = max(1, -(-n // (procs * 4)))
    jobs = [(folder, s, min(s + step, n), seed) for s in range(0, n, step)]
    with ProcessPoolExecutor(max_workers=procs) as pool:
        list(pool.map(_write_png, jobs))
    return time.perf_counter() - started


def make_weights(path: Path) -> None:
    if path.is_file():
        return
    import torch

    from genbench.features.inception import random_state_dict

    torch.save(random_state_dict(WEIGHTS_SEED), path)


# --------------------------------------------------------------------------- helpers


def _env(cache: Path | None) -> dict[str, str]:
    env = dict(os.environ, GENBENCH_PLUGINS="bench_gpu", PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "bench"), *filter(None, [os.environ.get("PYTHONPATH")])])
    if cache is not None:
        env["GENBENCH_CACHE"] = str(cache)
    return env


def _run(cmd: list[str], env: dict[str, str], label: str) -> tuple[float, subprocess.CompletedProcess]:
    print(f"  $ {' '.join(cmd)}", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    print(f"    {label}: {elapsed:.2f} s", flush=True)
    return elapsed, proc


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _versions() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch_fidelity

        info["torch_fidelity"] = torch_fidelity.__version__
    except ImportError:
        info["torch_fidelity"] = None
    from genbench import __version__

    info["genbench"] = __version__
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device_name=props.name, capability=f"{props.major}.{props.minor}",
                    device_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
        smi = shutil.which("nvidia-smi")
        if smi:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True,
                                 check=False)
            info["driver"] = out.stdout.strip()
    return info


# --------------------------------------------------------------------------- sections


def end_to_end(a, gen: Path, ref: Path, weights: Path, work: Path) -> dict:
    """Fresh processes, caches off: genbench float32 vs torch-fidelity (TF32 off, and PyTorch defaults)."""
    print("\n[1] end to end", flush=True)
    n_total = a.n + a.n_ref
    ours = [sys.executable, "-m", "genbench", "score", str(gen), "--ref", str(ref), "--metrics", "fid,is",
            "--extractor", UNVERIFIED, "--weights", str(weights), "--device", a.device, "--batch-size", str(a.batch_size),
            "--workers", str(a.workers), "--no-cache", "--quiet", "--json", "-"]
    rows: dict[str, dict] = {}
    t, proc = _run(ours, _env(work / "cache-e2e"), "genbench float32")
    doc = json.loads(proc.stdout)
    rows["genbench float32"] = {"seconds": t, "fid": doc["metrics"]["fid"]["value"], "is": doc["metrics"]["is"]["mean"]}
    try:
        import torch_fidelity
    except ImportError:
        print("    torch-fidelity is not installed: its rows are skipped", flush=True)
        torch_fidelity = None
    if torch_fidelity is not None:
        variants = [("torch-fidelity, TF32 off", False), ("torch-fidelity, PyTorch defaults (TF32 convs)", True)]
        if a.device == "cpu":
            variants = [("torch-fidelity (CPU)", False)]
        for label, tf32 in variants:
            code = _FIDELITY_SNIPPET.format(tf32=tf32, gen=str(gen), ref=str(ref), cuda=a.device != "cpu",
                                            batch=a.batch_size, weights=str(weights))
            t, proc = _run([sys.executable, "-c", code], _env(None), label)
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows[label] = {"seconds": t, "fid": out["frechet_inception_distance"], "is": out["inception_score_mean"]}
    for row in rows.values():
        row["images_per_s"] = n_total / row["seconds"]
    base = rows["genbench float32"]["fid"]
    for row in rows.values():
        row["fid_rel_diff_vs_genbench"] = abs(row["fid"] - base) / abs(base)
    return {"images": n_total, "rows": rows}


_FIDELITY_SNIPPET = """
import json, sys, torch
if not {tf32}:
    try:
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    except AttributeError:  # torch < 2.9
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
import torch_fidelity
m = torch_fidelity.calculate_metrics(input1={gen!r}, input2={ref!r}, cuda={cuda}, fid=True, isc=True,
    batch_size={batch}, feature_extractor_weights_path={weights!r}, cache=False, verbose=False)
print(json.dumps({{k: float(v) for k, v in m.items()}}))
"""


def cache_rescore(a, gen: Path, ref: Path, weights: Path, work: Path) -> dict:
    print("\n[2] feature cache: miss, then hit", flush=True)
    cache = work / "cache-rescore"
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [sys.executable, "-m", "genbench", "score", str(gen), "--ref", str(ref), "--metrics", "fid,is",
           "--extractor", UNVERIFIED, "--weights", str(weights), "--device", a.device, "--batch-size", str(a.batch_size),
           "--workers", str(a.workers), "--quiet", "--json", "-"]
    out = {}
    for label in ("miss", "hit"):
        t, proc = _run(cmd, _env(cache), f"cache {label}")
        doc = json.loads(proc.stdout)
        states = [doc["provenance"]["inputs"][r]["cache"] for r in ("generated", "reference")]
        out[label] = {"seconds": t, "cache": states, "fid": doc["metrics"]["fid"]["value"]}
    out["same_fid"] = out["miss"]["fid"] == out["hit"]["fid"]
    out["entry_bytes"] = sum(p.stat().st_size for p in (cache / "features").glob("??/*.npz"))
    return out


def precision(a, gen: Path, ref: Path, weights: Path, work: Path) -> dict:
    import dataclasses

    import torch

    from genbench.api import compute_stats
    from genbench.config import ExtractOptions
    from genbench.extraction.engine import precision_deviation
    from genbench.features import build_extractor
    from genbench.sources.folder import FolderSource

    print("\n[3] precision", flush=True)
    os.environ["GENBENCH_CACHE"] = str(work / "cache-rescore")  # REF float32 features were cached by [2]
    device = torch.device(a.device)
    ref_stats, _ = compute_stats(str(ref), extractor=UNVERIFIED, weights=str(weights), device=a.device,
                                 batch_size=a.batch_size, workers=a.workers)
    net = build_extractor(UNVERIFIED, str(weights), None, a.device)
    base = ExtractOptions(extractor=UNVERIFIED, weights=str(weights), batch_size=a.batch_size, device=a.device,
                          workers=a.workers, progress=False)
    out: dict = {"subset_n": min(a.n, a.precision_n), "checks": {}}
    for p in ("tf32", "bf16"):
        if p == "tf32" and device.type != "cuda":
            out["checks"][p] = "skipped: tf32 needs CUDA"
            continue
        started = time.perf_counter()
        check = precision_deviation(FolderSource(gen), net, dataclasses.replace(base, precision=p), ref_stats,
                                    n_max=a.precision_n)
        check["seconds"] = time.perf_counter() - started
        out["checks"][p] = check
        print(f"    {p}: {check}", flush=True)
    # What the CLI prints with its result (the reference is float32 statistics; the generated side in bf16).
    env = _env(work / "cache-rescore")
    stats_file = work / "gen_stats.npz"
    _run([sys.executable, "-m", "genbench", "stats", str(gen), "-o", str(stats_file), "--overwrite", "--extractor",
          UNVERIFIED, "--weights", str(weights), "--device", a.device, "--batch-size", str(a.batch_size),
          "--workers", str(a.workers), "--quiet"], env, "genbench stats GEN (cached)")
    _, proc = _run([sys.executable, "-m", "genbench", "score", str(ref), "--ref", str(stats_file), "--metrics", "fid",
                    "--extractor", UNVERIFIED, "--weights", str(weights), "--device", a.device, "--batch-size",
                    str(a.batch_size), "--workers", str(a.workers), "--precision", "bf16", "--no-cache"], env,
                   "genbench score --precision bf16")
    out["cli_output"] = [line for line in proc.stderr.splitlines() if line.strip() and "warning" not in line.lower()]
    return out


def steady_state(a, weights: Path) -> dict:
    import torch

    from genbench.extraction.engine import precision_mode, prepare_extractor
    from genbench.features import build_extractor

    print("\n[4] steady state", flush=True)
    device = torch.device(a.device)
    gen = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (a.batch_size, 3, 32, 32), dtype=torch.uint8, generator=gen).to(device)
    net = prepare_extractor(build_extractor(UNVERIFIED, str(weights), None, a.device), device)
    rates: dict[str, float] = {}

    def rate(fn, label: str) -> None:
        with torch.inference_mode():
            for _ in range(a.warmup):
                fn()
            _sync(device)
            started = time.perf_counter()
            for _ in range(a.steady_batches):
                fn()
            _sync(device)
        rates[label] = a.steady_batches * a.batch_size / (time.perf_counter() - started)
        print(f"    {label}: {rates[label]:.0f} img/s", flush=True)

    for p in ("float32", "tf32", "bf16"):
        if p == "tf32" and device.type != "cuda":
            continue

        def run(p=p):
            with precision_mode(p, device):
                net(images)

        rate(run, f"genbench {p}")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        return rates
    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=str(weights)).to(device).eval()
    def fidelity(p: str):
        def run():
            with precision_mode(p, device):
                theirs(images)
        return run

    rate(fidelity("float32"), "torch-fidelity float32 (TF32 off)")
    if device.type == "cuda":
        rate(fidelity("tf32"), "torch-fidelity TF32 (its default on CUDA)")
    return rates


def fd_timing(a) -> dict:
    import torch

    from genbench.metrics.fid import frechet_distance
    from genbench.stats.feature_stats import FeatureStats

    print("\n[5] Frechet distance at d=2048", flush=True)
    d, n = 2048, a.fd_n
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    stats = [FeatureStats.from_features(np.maximum(rng.normal(size=(n, d)) @ mix + shift, 0)) for shift in (0.0, 0.05)]
    (mu1, s1), (mu2, s2) = ((s.mean(), s.cov()) for s in stats)
    out: dict = {"d": d, "n": n}
    started = time.perf_counter()
    out["genbench_numpy_cpu"] = {"value": frechet_distance(mu1, s1, mu2, s2)}
    out["genbench_numpy_cpu"]["seconds"] = time.perf_counter() - started
    device = torch.device(a.device)
    if device.type == "cuda":
        args = [torch.from_numpy(x).to(device) for x in (mu1, s1, mu2, s2)]
        _fd_torch(*args)  # warm-up (cuSOLVER handles)
        _sync(device)
        started = time.perf_counter()
        value = _fd_torch(*args)
        _sync(device)
        out["torch_float64_gpu"] = {"value": value, "seconds": time.perf_counter() - started}
    if not a.smoke:
        from scipy import linalg

        started = time.perf_counter()
        covmean = linalg.sqrtm(s1 @ s2)
        value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))
        out["scipy_sqrtm_cpu (pytorch-fid)"] = {"value": value, "seconds": time.perf_counter() - started}
    for k, v in out.items():
        if isinstance(v, dict):
            print(f"    {k}: {v}", flush=True)
    return out


def _fd_torch(mu1, s1, mu2, s2) -> float:
    """The formula of genbench.metrics.fid, in torch float64 (Cholesky factor; both matrices positive definite here)."""
    import torch

    factor = torch.linalg.cholesky(s1)
    inner = factor.T @ s2 @ factor
    eig = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0)
    diff = mu1 - mu2
    return float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * eig.sqrt().sum())


# --------------------------------------------------------------------------- report


def report(a, res: dict, path: Path) -> str:
    v = res["versions"]
    device = v.get("device_name", "CPU (no CUDA device)")
    lines = [f"# genbench on {device}{' (smoke run)' if a.smoke else ''}", "",
             f"Command: `{res['command']}`  ",
             f"Date: {res['date']}; total {res['total_s']:.0f} s  ",
             "Versions: " + ", ".join(f"{k} {v[k]}" for k in ("genbench", "torch", "torch_fidelity", "cuda", "cudnn",
                                                               "driver", "python", "numpy") if v.get(k)) + "  ",
             f"Machine: {v['platform']}, {v['cpu_count']} CPUs" + (f", {v['device_name']} (sm {v['capability']}, "
                                                                   f"{v['device_memory_gib']} GiB)" if "device_name" in v else ""),
             "",
             (f"Data: GEN = {a.n:,} and REF = {a.n_ref:,} seeded 32x32 PNGs (made in {res['setup']['images_s']:.1f} s); "
              f"Inception-v3 with seeded random weights ({WEIGHTS_SEED}), tf1-bilinear resize to 299; batch "
              f"{a.batch_size}, {a.workers} decoding workers, device {a.device}."), ""]
    e = res["end_to_end"]
    lines += ["## 1. End to end: score GEN against REF (FID and IS), fresh process, caches off", "",
              f"{e['images']:,} images extracted per run.", "",
              "| tool | seconds | images/s | FID | IS | FID relative difference to genbench |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, r in e["rows"].items():
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['images_per_s']:.4g} | {r['fid']:.6g} | {r['is']:.6g} | "
                     f"{r['fid_rel_diff_vs_genbench']:.2e} |")
    not_finite = [name for name, r in e["rows"].items() if not math.isfinite(r["is"])]
    if not_finite:
        lines += ["", (f"IS is not finite for {', '.join(not_finite)}: the random weights give logits with a standard "
                       "deviation near 100, so softmax probabilities underflow and 0 * log 0 (or p * inf) appears in "
                       "the KL term. genbench takes the split's mean probability in log space and stays finite. "
                       "FID is unaffected.")]
    c = res["cache"]
    lines += ["", "## 2. Feature cache: the same score twice on an empty cache", "",
              "| run | seconds | cache state (generated, reference) | FID |", "|---|---:|---|---:|",
              f"| first (miss: extract, write entries) | {c['miss']['seconds']:.1f} | {', '.join(c['miss']['cache'])} | {c['miss']['fid']:.10g} |",
              f"| second (hit) | {c['hit']['seconds']:.1f} | {', '.join(c['hit']['cache'])} | {c['hit']['fid']:.10g} |",
              "", f"Identical FID: {c['same_fid']}; entries on disk: {c['entry_bytes'] / 2**20:.0f} MiB."]
    p = res["precision"]
    lines += ["", f"## 3. Precision: deviation from float32 on the first {p['subset_n']:,} GEN images", "",
              "| precision | max abs feature deviation | relative RMS deviation | FD of subset to REF (float32) | FD (this precision) | relative FD deviation | seconds (both passes) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, chk in p["checks"].items():
        if isinstance(chk, str):
            lines.append(f"| {name} | {chk} | | | | | |")
            continue
        lines.append(f"| {name} | {chk['feature_max_abs_dev']:.3g} | {chk['feature_rel_rms_dev']:.3g} | "
                     f"{chk.get('fd_subset_float32', float('nan')):.6g} | {chk.get(f'fd_subset_{name}', float('nan')):.6g} | "
                     f"{chk.get('fd_rel_dev', float('nan')):.3g} | {chk['seconds']:.1f} |")
    lines += ["", "What `genbench score REF --ref gen_stats.npz --precision bf16` prints:", "", "```",
              *p["cli_output"], "```"]
    lines += ["", "## 4. Steady state: the extractor alone on uint8 batches already on the device", "",
              "| extractor, precision | images/s |", "|---|---:|"]
    lines += [f"| {k} | {r:.4g} |" for k, r in res["steady_state"].items()]
    f = res["fd"]
    lines += ["", f"## 5. Frechet distance at d={f['d']} (statistics of n={f['n']:,} features)", "",
              "| implementation | seconds | value |", "|---|---:|---:|"]
    lines += [f"| {k} | {r['seconds']:.3f} | {r['value']:.10g} |" for k, r in f.items() if isinstance(r, dict)]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small and quick; on the CPU when there is no GPU")
    parser.add_argument("--n", type=int, default=None, help="GEN images (default 50000; smoke 32)")
    parser.add_argument("--n-ref", type=int, default=None, help="REF images (default 10000; smoke 24)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 250; smoke 16")
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default min(12, CPUs - 2))")
    parser.add_argument("--device", default=None, help="default cuda when available, else cpu")
    parser.add_argument("--precision-n", type=int, default=None, help="images in the precision check (4096; smoke 8)")
    parser.add_argument("--workdir", type=Path, default=None, help="images, weights and caches (default /tmp/genbench-gpu-bench)")
    parser.add_argument("--out", type=Path, default=None, help="report path (default reports/bench-gpu[-smoke].md)")
    a = parser.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    a.device = a.device or ("cuda" if cuda else "cpu")
    small = a.smoke
    a.n = a.n or (32 if small else 50_000)
    a.n_ref = a.n_ref or (24 if small else 10_000)
    a.batch_size = a.batch_size or (16 if small else 250)
    a.workers = a.workers if a.workers is not None else max(1, min(12, (os.cpu_count() or 2) - 2))
    a.precision_n = a.precision_n or (8 if small else 4096)
    a.warmup, a.steady_batches = (1, 1) if small else (3, 20)
    a.fd_n = 2100 if small else 10_000
    work = a.workdir or Path("/tmp/genbench-gpu-bench")
    work.mkdir(parents=True, exist_ok=True)
    out = a.out or ROOT / "reports" / ("bench-gpu-smoke.md" if small else "bench-gpu.md")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ["GENBENCH_PLUGINS"] = "bench_gpu"
    os.environ.setdefault("GENBENCH_CACHE", str(work / "cache-inprocess"))
    _register_unverified()

    started = time.perf_counter()
    res: dict = {"command": " ".join([Path(sys.executable).name, "bench/bench_gpu.py", *(argv if argv is not None else sys.argv[1:])]),
                 "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "versions": _versions(), "args": vars(a)}
    print(f"device {a.device}: {res['versions'].get('device_name', 'CPU')}; GEN {a.n}, REF {a.n_ref}", flush=True)
    procs = os.cpu_count() or 2
    gen, ref, weights = work / f"gen_{a.n}", work / f"ref_{a.n_ref}", work / "inception-random.pth"
    res["setup"] = {"images_s": make_folder(gen, a.n, 1, procs) + make_folder(ref, a.n_ref, 2, procs)}
    make_weights(weights)
    res["end_to_end"] = end_to_end(a, gen, ref, weights, work)
    res["cache"] = cache_rescore(a, gen, ref, weights, work)
    res["precision"] = precision(a, gen, ref, weights, work)
    res["steady_state"] = steady_state(a, weights)
    res["fd"] = fd_timing(a)
    res["total_s"] = time.perf_counter() - started
    print("\n" + report(a, res, out))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
