"""Distributed extraction: one process against ``torchrun --nproc-per-node=N``, same input, same numbers?

Runs ``genbench score FOLDER --ref REF --extractor E --no-cache --json OUT`` once as a single process and
once under torchrun with N ranks (gloo on the CPU, NCCL with ``--device cuda``), then reports the wall
time of each, the ranks' shares (from the result's provenance) and the relative difference of every
metric. The folder is made of seeded PNGs unless ``--folder`` is given.

Writes ``reports/bench-distributed.md`` and ``.json``.

    python bench/bench_distributed.py                         # 10,000 28x28 PNGs, fmnist-cnn, 2 ranks on the CPU
    python bench/bench_distributed.py --nproc 4 --device cuda --extractor inception-v3 --n 50000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genbench import __version__  # noqa: E402
from genbench.util.atomic import write_text_atomic  # noqa: E402


def make_folder(root: Path, n: int, size: int, seed: int) -> Path:
    """``n`` seeded gray PNGs of ``size`` x ``size`` (reused when the folder already holds them)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    if len(list(root.glob("*.png"))) == n:
        return root
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / f"{i:06d}.png")
    return root


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=None, help="images to score (default: make seeded PNGs)")
    parser.add_argument("--n", type=int, default=10_000, help="seeded PNGs to make")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--ref", default="fashion-mnist:test")
    parser.add_argument("--extractor", default="fmnist-cnn")
    parser.add_argument("--metrics", default="fd,is")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/genbench-bench-distributed"))
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench-distributed.md")
    a = parser.parse_args(argv)

    folder = a.folder or make_folder(a.workdir / f"png{a.n}-{a.size}", a.n, a.size, seed=0)
    bin_dir = Path(sys.executable).parent
    torchrun = shutil.which("torchrun", path=str(bin_dir)) or shutil.which("torchrun")
    if torchrun is None:
        raise SystemExit("torchrun not found next to this Python or on PATH")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    score = ["-m", "genbench", "score", str(folder), "--ref", a.ref, "--extractor", a.extractor,
             "--metrics", a.metrics, "--device", a.device, "--no-cache", "--quiet", "--overwrite"]
    # torchrun gives each rank OMP_NUM_THREADS=1 (unless set); the one-process run gets the same threads, so the
    # comparison isolates sharding and merging. A third run with all threads shows what the thread count
    # alone does to float32 CPU kernels.
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    same_threads = {**env, "OMP_NUM_THREADS": threads}
    paths = {k: a.workdir / f"{k}.json" for k in ("single", "multi", "all_threads")}
    single_s = timed([sys.executable, *score, "--json", str(paths["single"])], same_threads)
    multi_s = timed([torchrun, "--standalone", f"--nproc-per-node={a.nproc}", *score, "--json", str(paths["multi"])],
                    same_threads)
    all_threads_env = {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}
    all_threads_s = timed([sys.executable, *score, "--json", str(paths["all_threads"])], all_threads_env)
    single, multi, all_threads = (json.loads(paths[k].read_text()) for k in ("single", "multi", "all_threads"))

    def headline(doc: dict, name: str) -> float:
        entry = doc["metrics"][name]
        return entry["value"] if "value" in entry else entry["mean"]  # IS is a mean over splits

    rows = []
    for name in single["metrics"]:
        one, many, every = headline(single, name), headline(multi, name), headline(all_threads, name)
        rows.append({"metric": name, "single": one, "distributed": many,
                     "relative_difference": abs(many - one) / max(abs(one), 1e-300),
                     "single_all_threads": every, "thread_count_difference": abs(every - one) / max(abs(one), 1e-300)})
    generated = multi["provenance"]["inputs"]["generated"]
    doc = {"command": "python bench/bench_distributed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "genbench_version": __version__,
           "machine": f"{platform.platform()}, {os.cpu_count()} CPUs", "device": a.device, "nproc": a.nproc,
           "folder": str(folder), "n": generated.get("n"), "extractor": a.extractor, "reference": a.ref,
           "world_size": generated.get("world_size"), "shard_sizes": generated.get("shard_sizes"),
           "omp_num_threads": threads, "single_s": round(single_s, 2), "distributed_s": round(multi_s, 2),
           "single_all_threads_s": round(all_threads_s, 2), "metrics": rows}
    lines = [
        "# Distributed extraction: one process against torchrun", "",
        f"Command: `{doc['command']}`  ", f"{doc['date']}; genbench {__version__}; {doc['machine']}; device {a.device}.", "",
        f"`genbench score` of {doc['n']} images (`{folder}`) against `{a.ref}` with `{a.extractor}`, caches off.", "",
        "| run | wall s | ranks' shares |", "|---|---:|---|",
        f"| one process, OMP_NUM_THREADS={threads} | {single_s:.1f} | {doc['n']} |",
        f"| torchrun --nproc-per-node={a.nproc}, OMP_NUM_THREADS={threads} | {multi_s:.1f} | "
        f"{', '.join(map(str, doc['shard_sizes'] or []))} |",
        f"| one process, all threads | {all_threads_s:.1f} | {doc['n']} |", "",
        "| metric | one process | torchrun | relative difference | one process, all threads | its relative difference |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {r['metric']} | {r['single']:.12g} | {r['distributed']:.12g} | {r['relative_difference']:.2e} | "
          f"{r['single_all_threads']:.12g} | {r['thread_count_difference']:.2e} |" for r in rows),
        "",
        "Shares are whole batches (the one-process run's batch boundaries), so every batch holds the same images "
        "either way. The last column is the float32 CPU kernels' dependence on the thread count, not sharding.",
    ]
    if a.device == "cpu":
        lines.append(f"On a {os.cpu_count()}-core CPU the ranks share the same cores, so the wall times say little "
                     "about scaling; what this shows is equal shares and the same numbers.")
    write_text_atomic(a.out.with_suffix(".json"), json.dumps(doc, indent=2) + "\n")
    write_text_atomic(a.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
