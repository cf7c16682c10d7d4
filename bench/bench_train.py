"""Training speed of every bundled baseline family: steps/s on the CPU and, where present, on CUDA.

Each family trains from its committed config (``baselines/configs/NAME.toml``) for a fixed number of
steps on each device, with the time limit off and a small held-out evaluation (the evaluation is not
timed). The first ``--warmup`` steps are run and discarded before the timed run, so CUDA start-up,
cuDNN autotuning and allocator growth are not counted. CUDA runs use the configs' ``amp = "auto"``
(bfloat16 autocast where a family is marked safe for it).

Writes ``reports/bench-train.md`` and ``.json`` (``--smoke``: ``reports/bench-train-smoke.*``) with the
device names, versions, steps/s per family and device, and the CUDA/CPU ratio.

    python bench/bench_train.py                        # CPU (all threads) and CUDA when available
    python bench/bench_train.py --smoke                # 3 steps a family, anywhere (a check of the script)
    python bench/bench_train.py --families dcgan,vae --steps-cpu 50 --steps-cuda 500
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genbench import __version__  # noqa: E402
from genbench.baselines.config import CONFIG_DIR  # noqa: E402
from genbench.baselines.train import train  # noqa: E402
from genbench.util.atomic import write_text_atomic  # noqa: E402

FAMILIES = ("dcgan", "wgan-gp", "vae", "glo", "flow", "cgan", "cyclegan")


def bench_config(name: str, steps: int) -> dict:
    """The committed config with the time limit off, logging once, and a small (untimed) evaluation."""
    config = tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text())
    train_section = config.setdefault("train", {})
    train_section.update(steps=steps, time_limit_s=0.0, log_every=steps, checkpoint_every=0)
    data = config.setdefault("data", {})
    if data.get("eval_dataset"):
        data["eval_n"] = min(int(data.get("eval_n") or 512), 512)
    return config


def timed_run(name: str, device: str, steps: int, warmup: int, threads: int | None, workdir: Path) -> dict:
    quiet = lambda msg: None  # noqa: E731
    if warmup:
        train(name, bench_config(name, warmup), out=workdir / f"{name}-{device}-warmup.pt", device=device,
              threads=threads, log=quiet)
    out = workdir / f"{name}-{device}.pt"
    started = time.perf_counter()
    train(name, bench_config(name, steps), out=out, device=device, threads=threads, log=quiet)
    total = time.perf_counter() - started
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    wall = float(ckpt["wall_time_s"])
    return {"family": name, "device": device, "steps": int(ckpt["steps"]),
            "batch_size": int(ckpt["config"]["train"]["batch_size"]), "train_s": round(wall, 3),
            "steps_per_s": round(ckpt["steps"] / wall, 3), "precision": ckpt["precision"],
            "threads": int(ckpt["threads"]), "total_s_with_setup_and_eval": round(total, 2)}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def render(doc: dict) -> str:
    lines = [f"# Baseline training speed{' (smoke run)' if doc['smoke'] else ''}", "",
             f"Command: `{doc['command']}`  ", f"genbench {doc['genbench_version']}, torch {doc['torch_version']}, "
             f"{doc['date']}.  ", "Devices: " + "; ".join(f"{k}: {v}" for k, v in doc["devices"].items()), "",
             "Steps/s of the committed configs (batch sizes as committed), time limit off, after "
             f"{doc['warmup']} warm-up steps; evaluation not timed.", ""]
    devices = list(doc["devices"])
    head = "| family | batch | " + " | ".join(f"{d} steps/s" for d in devices)
    if "cpu" in devices and len(devices) > 1:
        head += " | " + " | ".join(f"{d} / cpu" for d in devices if d != "cpu")
    lines += [head + " |", "|" + "---|" * head.count("|")]
    by = {(r["family"], r["device"]): r for r in doc["runs"]}
    for family in doc["families"]:
        cells = [f"{by[(family, d)]['steps_per_s']:.2f} ({by[(family, d)]['precision']})" for d in devices]
        if "cpu" in devices and len(devices) > 1:
            cells += [f"{by[(family, d)]['steps_per_s'] / by[(family, 'cpu')]['steps_per_s']:.1f}x"
                      for d in devices if d != "cpu"]
        batch = by[(family, devices[0])]["batch_size"]
        lines.append(f"| {family} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--steps-cpu", type=int, default=40)
    parser.add_argument("--steps-cuda", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--devices", default=None, help="comma-separated; default cpu plus cuda when available")
    parser.add_argument("--smoke", action="store_true", help="3 steps a family, 1 warm-up step")
    parser.add_argument("--out", type=Path, default=None, help="default reports/bench-train[-smoke].md")
    a = parser.parse_args(argv)
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    devices = a.devices.split(",") if a.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    steps = {"cpu": 3 if a.smoke else a.steps_cpu}
    warmup = 1 if a.smoke else a.warmup
    runs = []
    with tempfile.TemporaryDirectory(prefix="genbench-bench-train-") as tmp:
        for device in devices:
            for family in families:
                n_steps = steps.get(device, 3 if a.smoke else a.steps_cuda)
                row = timed_run(family, device, n_steps, warmup, a.threads, Path(tmp))
                runs.append(row)
                print(f"{family:<9} {device:<6} {row['steps_per_s']:8.2f} steps/s ({row['precision']}, "
                      f"{row['steps']} steps in {row['train_s']:.1f} s)", flush=True)
    doc = {"command": "python bench/bench_train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "genbench_version": __version__, "torch_version": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "smoke": a.smoke, "warmup": warmup,
           "families": families, "devices": {d: device_name(d) for d in devices}, "runs": runs}
    out = a.out or REPO / "reports" / ("bench-train-smoke.md" if a.smoke else "bench-train.md")
    write_text_atomic(out.with_suffix(".json"), json.dumps(doc, indent=2) + "\n")
    write_text_atomic(out, render(doc))
    print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
