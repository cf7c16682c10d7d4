"""Benchmark: FID Inception feature extraction on the CPU, genbench against torch-fidelity, pytorch-fid
and clean-fid.

Everything is measured side by side in one run (the machine is shared, so only ratios
taken together mean much). Every tool loads the same seeded random weights file (the
real TF weights are not downloadable here; speed does not depend on the values), reads
the same folder of seeded PNG images, with the same batch size, on the CPU.

1. Whole process, N images: wall time of a fresh ``python`` process that imports,
   loads the weights, reads the PNGs and extracts features:
   - genbench: ``python bench/bench_extract.py _extract --backend B ...`` (what
     ``genbench extract`` does, minus writing statistics): pool3 + unbiased logits;
   - torch-fidelity: ``fidelity --cpu --isc --input1 DIR --feature-extractor-weights-path W
     --no-cache --silent --json`` (ISC needs the same full forward pass): pool3 + logits;
   - pytorch-fid: ``python bench/bench_extract.py _pytorch_fid ...``: pytorch-fid's own
     ``InceptionV3([3])`` and ``compute_statistics_of_path`` (its DataLoader, ToTensor,
     in-network bilinear resize, pool3, then mean and covariance), the weights loader
     patched in-process to return our file (nothing is downloaded or written);
   - clean-fid: ``python bench/bench_extract.py _clean_fid ...``: clean-fid's
     ``get_folder_features`` in mode "clean" (its DataLoader and PIL bicubic resize to 299),
     which is what ``compute_fid`` runs for a folder, with clean-fid's own
     ``pytorch_inception`` extractor (its copy of the pytorch-fid network) as the custom
     feature extractor, since its TorchScript model cannot be downloaded: pool3.
   Runs are interleaved (genbench, torch-fidelity, pytorch-fid, clean-fid, genbench ...)
   and the median is reported. genbench's ONNX export is cached beforehand (its one-off
   cost is reported separately).
2. Steady state in one process: images/s of the extractor (preprocessing included) after
   a warm-up, for each backend, and torch-fidelity's and pytorch-fid's models for comparison.

``--report FILE`` writes the figures as Markdown (device, versions, command, date).

Usage::

    .venv/bin/python bench/bench_extract.py                    # 64 and 1000 images, 32x32
    .venv/bin/python bench/bench_extract.py --counts 64 --repeats 3 --json out.json --report out.md
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_SEED = 20240611
TOOLS = ("torch-fidelity", "pytorch-fid", "clean-fid")
# Used for the pytorch-fid and clean-fid DataLoaders when --loader-workers is not given:
# pytorch-fid's command line uses min(available CPUs, 8); clean-fid's compute_fid uses 12.
# (torch-fidelity picks min(4, 2 * CPUs) itself; genbench's measured process reads in-process.)
DEFAULT_WORKERS = {"pytorch-fid": lambda: min(_available_cpus(), 8), "clean-fid": lambda: 12}
VERSIONED = ("genbench", "torch", "torchvision", "numpy", "pillow", "onnxruntime", "onnx",
             "torch-fidelity", "pytorch-fid", "clean-fid")


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- the measured processes


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


@contextlib.contextmanager
def weights_from_file(module: object, weights: str | Path) -> Iterator[list[str]]:
    """Make ``module.load_state_dict_from_url`` return the state dict in ``weights``.

    pytorch-fid and clean-fid build their network, then load the real weights with
    ``load_state_dict_from_url(FID_WEIGHTS_URL)``, which would download them into the
    torch hub folder. Inside this block that name returns our file instead, so nothing
    is downloaded and no file is written under the real weights' name. Yields the URLs
    that were asked for.
    """
    import torch

    asked: list[str] = []

    def load(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        asked.append(url)
        return torch.load(weights, map_location="cpu", weights_only=True)

    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = load
    try:
        yield asked
    finally:
        module.load_state_dict_from_url = original


def _workers(args: argparse.Namespace, tool: str) -> int:
    return DEFAULT_WORKERS[tool]() if args.loader_workers is None else args.loader_workers


def _pytorch_fid(args: argparse.Namespace) -> None:
    """pytorch-fid's pipeline for one folder: InceptionV3([3]) and compute_statistics_of_path, on the CPU."""
    t0 = time.perf_counter()
    import torch
    from pytorch_fid import fid_score, inception

    t_import = time.perf_counter()
    with weights_from_file(inception, args.weights) as asked:
        model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(torch.device("cpu"))
    assert asked == [inception.FID_WEIGHTS_URL], asked
    t_build = time.perf_counter()
    activations_s = []
    get_activations = fid_score.get_activations

    def timed_get_activations(*a: object, **k: object) -> np.ndarray:  # to split activations from mean/cov
        start = time.perf_counter()
        try:
            return get_activations(*a, **k)
        finally:
            activations_s.append(time.perf_counter() - start)

    workers = _workers(args, "pytorch-fid")
    fid_score.get_activations = timed_get_activations
    try:
        mu, _sigma = fid_score.compute_statistics_of_path(str(args.images), model, args.batch_size, 2048, "cpu",
                                                          workers)
    finally:
        fid_score.get_activations = get_activations
    t_end = time.perf_counter()
    np.savez(args.out, mu=mu)
    print(json.dumps({"import_s": t_import - t0, "build_s": t_build - t_import, "activations_s": sum(activations_s),
                      "mean_cov_s": t_end - t_build - sum(activations_s), "num_workers": workers,
                      "n": len(list(Path(args.images).glob("*.png")))}), file=sys.stderr)


def _clean_fid(args: argparse.Namespace) -> None:
    """clean-fid's folder pipeline (mode "clean") with its pytorch-fid network as a custom feature extractor."""
    t0 = time.perf_counter()
    import torch
    from cleanfid import features as cf_features
    from cleanfid import fid as cf_fid
    from cleanfid import inception_pytorch

    t_import = time.perf_counter()
    cpu = torch.device("cpu")
    with weights_from_file(inception_pytorch, args.weights) as asked:
        model = cf_features.feature_extractor("pytorch_inception", device=cpu, resize_inside=False,
                                              use_dataparallel=False)
    assert asked == [inception_pytorch.FID_WEIGHTS_URL], asked
    t_build = time.perf_counter()
    workers = _workers(args, "clean-fid")
    feats = cf_fid.get_folder_features(str(args.images), model, num_workers=workers, batch_size=args.batch_size,
                                       device=cpu, mode="clean", verbose=False)
    t_end = time.perf_counter()
    np.savez(args.out, features=feats)
    print(json.dumps({"import_s": t_import - t0, "build_s": t_build - t_import, "extract_s": t_end - t_build,
                      "num_workers": workers, "n": len(feats)}), file=sys.stderr)


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


def environment() -> dict[str, object]:
    """The machine and the versions of everything measured."""
    import torch

    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu_model": cpu_model, "cpu_count": os.cpu_count(), "available_cpus": _available_cpus(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(), "versions": versions}


def _tool_available(tool: str) -> bool:
    if tool == "torch-fidelity":
        return importlib.util.find_spec("torch_fidelity") is not None
    return importlib.util.find_spec({"pytorch-fid": "pytorch_fid", "clean-fid": "cleanfid"}[tool]) is not None


# --------------------------------------------------------------------------- steady state


def _steady_state(weights: Path, n: int, batch_size: int, size: int,
                  tools: tuple[str, ...] = TOOLS) -> dict[str, float]:
    import torch

    sys.path.insert(0, str(ROOT))
    from genbench.features import fast_cpu
    from genbench.features.inception import build_inception

    rng = np.random.default_rng(3)
    images = torch.from_numpy(rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8))
    runs: dict[str, Callable[[torch.Tensor], object]] = {}
    for backend in ("onnxruntime", "torch"):
        ext = build_inception(weights=weights, backend=backend, allow_unverified=True)
        runs[backend] = ext
    eager = build_inception(weights=weights, backend="torch", allow_unverified=True)
    eager.net.to(memory_format=torch.contiguous_format)
    # The extractor builds its runner on first use; put the plain NCHW one there first.
    eager._runner = fast_cpu.TorchRunner(eager.net, torch.device("cpu"), channels_last=False)
    runs["torch-eager-nchw"] = eager
    if "torch-fidelity" in tools and _tool_available("torch-fidelity"):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        runs["torch-fidelity"] = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights))
    if "pytorch-fid" in tools and _tool_available("pytorch-fid"):
        from pytorch_fid import inception as pfi

        with weights_from_file(pfi, weights):
            pf_model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
        # As its DataLoader feeds it: ToTensor (uint8 / 255) at the native size; it resizes inside.
        runs["pytorch-fid"] = lambda x: pf_model(x.float() / 255)[0]

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


# --------------------------------------------------------------------------- report


def _what_runs(results: dict) -> dict[str, str]:
    workers = results.get("loader_workers", {})
    b = results["batch_size"]
    return {
        "genbench[B]": (
            "`bench/bench_extract.py _extract --backend B`: imports genbench, builds the extractor from the "
            "weights file (`auto` picks ONNX Runtime with the export cached beforehand), reads the PNGs with "
            f"PIL in the process, batches of {b}, preprocesses (`tf1-bilinear`, the default) and extracts pool3 "
            "features and unbiased logits, then saves both to an .npz file."),
        "torch-fidelity": (
            "its command line, `fidelity --cpu --isc --input1 DIR --feature-extractor-weights-path W --no-cache "
            f"--silent --json --batch-size {b}` (its default batch is 64): imports, loads the weights file, "
            "reads the folder with its DataLoader (min(4, 2 x CPUs) workers, its own choice), runs "
            "`inception-v3-compat` (TF1 bilinear resize inside) for the unbiased logits, and computes the "
            "Inception Score (negligible)."),
        "pytorch-fid": (
            "`bench/bench_extract.py _pytorch_fid`: pytorch-fid's `InceptionV3([3])` on the CPU (weights read "
            "from our file: `pytorch_fid.inception.load_state_dict_from_url` is replaced in-process, nothing is "
            "downloaded or written) and `fid_score.compute_statistics_of_path(DIR, model, "
            f"{b}, 2048, 'cpu', {workers.get('pytorch-fid', '?')})`: its DataLoader "
            f"({workers.get('pytorch-fid', '?')} workers), ToTensor, bilinear resize to 299 inside the network, "
            "pool3; then the mean and the 2048 x 2048 covariance, which the other processes do not compute "
            "(the phases line splits activations from mean/cov). No logits."),
        "clean-fid": (
            "`bench/bench_extract.py _clean_fid`: `cleanfid.fid.get_folder_features(DIR, model, mode='clean', "
            f"num_workers={workers.get('clean-fid', '?')}, batch_size={b}, device=cpu)`, the call "
            "`compute_fid` makes for a folder: file listing, its DataLoader reading each PNG with PIL and "
            "resizing it to 299 with PIL bicubic in float32, then the model. The model is clean-fid's own "
            "`features.feature_extractor('pytorch_inception')` (its copy of the pytorch-fid network, "
            "input / 255, normalised inside, no resize) with weights from our file (its "
            "`load_state_dict_from_url` replaced in-process), standing in for the TorchScript Inception that "
            "mode 'clean' downloads. Pool3 only; no statistics."),
    }


def _fmt_phases(raw: str) -> str:
    try:
        phases = json.loads(raw)
    except (TypeError, ValueError):
        return raw or "-"
    parts = [f"{k[:-2]} {v:.2f} s" for k, v in phases.items() if k.endswith("_s")]
    parts += [f"{k} {v}" for k, v in phases.items() if not k.endswith("_s") and k != "n"]
    return ", ".join(parts)


def render_report(results: dict) -> str:
    """The results of :func:`main` as Markdown."""
    env = results["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    missing = [k for k, v in env["versions"].items() if v is None]

    def load(key: str) -> str:
        return "/".join(f"{x:.1f}" for x in results.get(key, ()))

    lines = [
        "# CPU Inception-v3 feature extraction: genbench, torch-fidelity, pytorch-fid, clean-fid",
        "",
        f"- Date: {results['date']}",
        f"- Command: `{results['command']}` (in `{results['cwd']}`)",
        (f"- Device: {env['cpu_model']}, {env['cpu_count']} logical CPUs ({env['available_cpus']} available to "
         f"the process), torch intra-op threads {env['torch_threads']}; {env['platform']}; CPU only"),
        f"- Load average (1/5/15 min): {load('load_avg_start')} at the start, {load('load_avg_end')} at the end",
        f"- Versions: {versions}" + (f" (not installed: {', '.join(missing)})" if missing else ""),
        (f"- Inputs: seeded {results['image_size']}x{results['image_size']} PNG images (the same folder for "
         f"every tool), seeded random Inception weights `random_state_dict({WEIGHTS_SEED})` saved once with "
         f"`torch.save` (sha256 `{results['weights_sha256'][:16]}...`, the same file for every tool; speed does "
         f"not depend on the values), batch size {results['batch_size']}."),
    ]
    if "first_run_with_onnx_export_s" in results:
        lines.append(f"- genbench's first run (exports and caches the ONNX graph), 4 images: "
                     f"{results['first_run_with_onnx_export_s']:.1f} s; not in the tables below.")
    counts = [key for key in results if key.startswith("whole_process_n")]
    if counts:
        lines += ["", "## Whole process", "",
                  (f"Wall time of a fresh `python` process per run, {results['repeats']} run(s) per tool "
                   "interleaved, median. Ratio columns: genbench's images/s divided by the tool's (= the tool's "
                   "seconds divided by genbench's; above 1: genbench is faster).")]
    for key in counts:
        summary = results[key]
        n = int(key.removeprefix("whole_process_n"))
        ours = [name for name in summary if name.startswith("genbench")]
        header = "| tool | median s | runs s | images/s | " + " | ".join(f"{g} ÷ tool" for g in ours) + " |"
        lines += ["", f"### {n} images", "", header, "|---|---:|---|---:|" + "---:|" * len(ours)]
        for name, s in summary.items():
            ratios = ["-" if g == name else f"{s['median_s'] / summary[g]['median_s']:.2f}" for g in ours]
            runs = ", ".join(f"{t:.2f}" for t in s["runs_s"])
            lines.append(f"| {name} | {s['median_s']:.2f} | {runs} | {n / s['median_s']:.1f} | "
                         + " | ".join(ratios) + " |")
        lines += ["", "Phases of the last run (inside the process):", ""]
        lines += [f"- {name}: {_fmt_phases(s['phases'])}" for name, s in summary.items() if s.get("phases")]
    if "steady_state_img_per_s" in results:
        rates = results["steady_state_img_per_s"]
        ours = [name for name in ("onnxruntime", "torch") if name in rates]
        lines += ["", "## Steady state", "",
                  (f"One process, {results['steady_n']} random uint8 images of {results['image_size']}x"
                   f"{results['image_size']} in batches of {results['batch_size']} from memory, after a warm-up; "
                   "preprocessing included, no file reading; best of 2 interleaved passes. genbench's "
                   "`onnxruntime` and `torch` (channels-last) backends, its eager NCHW network, torch-fidelity's "
                   "`FeatureExtractorInceptionV3` and pytorch-fid's `InceptionV3([3])` (input / 255, resize "
                   "inside)."),
                  "", "| extractor | images/s | " + " | ".join(f"genbench[{g}] ÷ this" for g in ours) + " |",
                  "|---|---:|" + "---:|" * len(ours)]
        for name, rate in rates.items():
            ratios = ["-" if g == name else f"{rates[g] / rate:.2f}" for g in ours]
            lines.append(f"| {name} | {rate:.1f} | " + " | ".join(ratios) + " |")
    lines += ["", "## What is measured", ""]
    lines += [f"- **{name}**: {text}" for name, text in _what_runs(results).items()]
    skipped = results.get("tools_skipped")
    if skipped:
        lines.append(f"- Not measured (not installed or not asked for): {', '.join(skipped)}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def _speedup_key(tool: str) -> str:
    """JSON key of "this entry's speed / the tool's speed", e.g. speedup_vs_torch_fidelity."""
    return "speedup_vs_" + tool.replace("-", "_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    for name, help_ in (("_extract", "(internal) one measured genbench extraction process"),
                        ("_pytorch_fid", "(internal) one measured pytorch-fid process"),
                        ("_clean_fid", "(internal) one measured clean-fid process")):
        ex = sub.add_parser(name, help=help_)
        ex.add_argument("--images", required=True)
        ex.add_argument("--weights", required=True)
        ex.add_argument("--out", required=True)
        ex.add_argument("--batch-size", type=int, default=32)
        if name == "_extract":
            ex.add_argument("--backend", default="auto")
        else:
            ex.add_argument("--loader-workers", type=int, default=None)
    parser.add_argument("--counts", type=int, nargs="*", default=[64, 1000],
                        help="image counts for the whole-process runs (none: steady state only)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs per tool and count")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backends", nargs="+", default=["auto", "torch"], help="genbench backends to time")
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), choices=TOOLS,
                        help="other tools to time where installed (default: all)")
    parser.add_argument("--loader-workers", type=int, default=None,
                        help="DataLoader workers for pytorch-fid and clean-fid (default: each tool's own default, "
                             "min(CPUs, 8) and 12)")
    parser.add_argument("--steady-n", type=int, default=96, help="images per steady-state run (0 to skip)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep images/weights/cache here between runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--report", type=Path, default=None, help="also write the figures here as Markdown")
    args = parser.parse_args(argv)
    if args.cmd:
        {"_extract": _extract, "_pytorch_fid": _pytorch_fid, "_clean_fid": _clean_fid}[args.cmd](args)
        return 0

    command = shlex.join(sys.orig_argv if argv is None else [sys.executable, __file__, *argv])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genbench-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # TORCH_HOME: belt and braces, so that no tool can drop a file into the user's torch hub folder.
    env = dict(os.environ, GENBENCH_CACHE=str(workdir / "cache"), PYTHONWARNINGS="ignore",
               TORCH_HOME=str(workdir / "torch-home"))
    os.environ["GENBENCH_CACHE"] = env["GENBENCH_CACHE"]
    weights = workdir / "random-inception.pth"
    _make_weights(weights)
    fidelity = shutil.which("fidelity", path=str(Path(sys.executable).parent)) or shutil.which("fidelity")
    tools = tuple(t for t in args.tools if _tool_available(t) and (t != "torch-fidelity" or fidelity))
    workers = {t: _workers(args, t) for t in DEFAULT_WORKERS if t in tools}
    results: dict[str, object] = {
        "cpu_count": os.cpu_count(), "image_size": args.size, "batch_size": args.batch_size,
        "python": sys.executable, "load_avg_start": os.getloadavg(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command, "cwd": os.getcwd(), "environment": environment(), "repeats": args.repeats,
        "steady_n": args.steady_n, "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "tools": list(tools), "tools_skipped": [t for t in TOOLS if t not in tools], "loader_workers": workers}

    script = str(Path(__file__).resolve())
    ours = [sys.executable, script, "_extract", "--weights", str(weights), "--batch-size", str(args.batch_size)]
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
        if "torch-fidelity" in tools:
            commands["torch-fidelity"] = [fidelity, "--cpu", "--isc", "--input1", str(folder),
                                          "--feature-extractor-weights-path", str(weights), "--no-cache",
                                          "--silent", "--json", "--batch-size", str(args.batch_size)]
        for tool, sub_cmd in (("pytorch-fid", "_pytorch_fid"), ("clean-fid", "_clean_fid")):
            if tool in tools:
                commands[tool] = [sys.executable, script, sub_cmd, "--images", str(folder), "--weights", str(weights),
                                  "--out", str(workdir / "o.npz"), "--batch-size", str(args.batch_size),
                                  "--loader-workers", str(workers[tool])]
        times: dict[str, list[float]] = {name: [] for name in commands}
        notes: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                elapsed, note = _timed(cmd, env)
                times[name].append(elapsed)
                notes[name] = note
        summary = {name: {"median_s": statistics.median(v), "runs_s": v} for name, v in times.items()}
        for name in commands:
            if name != "torch-fidelity":
                summary[name]["phases"] = notes[name]
        for tool in tools:
            ref = summary[tool]["median_s"]
            for name in commands:
                summary[name][_speedup_key(tool)] = ref / summary[name]["median_s"]
        results[f"whole_process_n{n}"] = summary
        print(f"\nwhole process, {n} images of {args.size}x{args.size} (median of {args.repeats}):")
        for name, s in summary.items():
            extra = "".join(f"  x{s[_speedup_key(t)]:.2f} vs {t}" for t in tools if t != name)
            print(f"  {name:22s} {s['median_s']:7.2f} s  ({n / s['median_s']:5.1f} img/s){extra}", flush=True)

    if args.steady_n:
        rates = _steady_state(weights, args.steady_n, args.batch_size, args.size, tools)
        results["steady_state_img_per_s"] = rates
        print(f"\nsteady state, {args.steady_n} images of {args.size}x{args.size}, batch {args.batch_size} (best of 2):")
        for name, rate in rates.items():
            print(f"  {name:22s} {rate:6.1f} img/s  ({rate / 29:.0%} of the ~29 img/s bound)")
    results["load_avg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(render_report(results))
        print(f"\nreport written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
