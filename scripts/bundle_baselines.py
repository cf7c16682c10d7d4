#!/usr/bin/env python
"""Copy finished training runs into the bundled checkpoints and record them in the manifest.

    .venv/bin/python scripts/bundle_baselines.py dcgan cgan          # out/baselines/NAME.pt, after
                                                                     # scripts/train_baselines_cpu.sh dcgan cgan
    .venv/bin/python scripts/bundle_baselines.py --from DIR --if-better dcgan ...   # GPU runs brought back

Each manifest entry records the checkpoint's sha256, steps, device, threads and wall time (read from the
checkpoint itself), the command that trained it and a ``reproduce`` command. A run still in progress (its
log does not say "done") or a dry run is refused. ``--if-better`` first scores the candidate and the bundled
checkpoint the way the leaderboard does (fd_fmnist, ``-n`` samples, seed 0) and keeps the lower.

A run trained with an EMA of its generator (``train.ema_decay``) holds both the averaged and the last raw
weights; ``--weights`` picks which one is bundled: ``ema``, ``raw``, or ``better`` (default): the one with
the lower fd_fmnist at sampling seed 1 (the leaderboard reports seed 0, so the choice is not made on the
reported number). The checkpoint then records ``sampled_weights`` and both scores, and keeps only the chosen
weights (the other set stays in the training run's checkpoint), so that the package data stays small.
For the same reason a family with ``sampling_nets`` (cyclegan: its A -> B generator) ships only those
networks. Training evaluates the EMA weights, so when the raw ones are chosen their held-out metrics (the
flow's test bits/dim) are computed again and those are recorded.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from genbench.baselines.checkpoint import (
    CHECKPOINT_DIR,
    read_checkpoint,
    read_manifest,
    record_bundled,
    save_checkpoint,
)
from genbench.baselines.families import FAMILIES


def finished(source: Path) -> bool:
    ckpt = read_checkpoint(source)
    if ckpt.get("dry_run"):
        return False
    log = source.with_suffix(".log")
    return ckpt["steps"] >= ckpt["config"]["train"]["steps"] or (log.is_file() and "] done:" in log.read_text())


def fd_fmnist(path: Path, n: int, seed: int = 0) -> float:
    from genbench import leaderboard as lb
    from genbench.baselines import board
    from genbench.baselines.api import load_checkpoint

    spec = board.generator_row_spec(str(path), load_checkpoint(path))  # scored like its leaderboard row
    rows, _ = lb.score_rows([spec], n, seed, plans=[lb.MetricPlan(board.EXTRACTOR, ("fd",))], board=board.BOARD)
    return float(rows[0].metrics["fd_fmnist"]["value"])


def with_weights(source: Path, which: str, n: int) -> Path:
    """``source``, or a copy beside it whose sampled generator is the one ``which`` names (module docstring)."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    raw = ckpt.get("raw_weights") or {}
    if not raw:
        if which == "raw":
            raise SystemExit(f"{source}: trained without an EMA, it holds no separate raw weights")
        return source
    swapped = dict(ckpt)
    swapped["state"] = {"nets": {**ckpt["state"]["nets"], **raw}, "extra": ckpt["state"]["extra"]}
    swapped["raw_weights"] = {}
    candidate = source.with_name(source.stem + "-chosen.pt")
    scores = {}
    if which == "better":
        save_checkpoint(swapped, candidate)
        scores = {"ema": fd_fmnist(source, n, seed=1), "raw": fd_fmnist(candidate, n, seed=1)}
        print(f"{source.stem}: fd_fmnist at n={n}, seed 1: EMA {scores['ema']:.2f}, raw {scores['raw']:.2f}")
        which = "raw" if scores["raw"] < scores["ema"] else "ema"
    chosen = dict(ckpt) if which == "ema" else swapped
    chosen["raw_weights"] = {}  # only the sampled generator ships
    chosen["sampled_weights"] = which
    chosen["weight_choice"] = {"rule": "lower fd_fmnist at sampling seed 1", "n": n, **scores} if scores else {}
    save_checkpoint(chosen, candidate)
    if which == "raw" and ckpt.get("metrics"):  # training evaluated the EMA weights; these are others
        chosen["metrics"] = evaluate_again(candidate)
        print(f"{source.stem}: metrics of the raw weights: {chosen['metrics']}")
        save_checkpoint(chosen, candidate)
    return candidate


def evaluate_again(path: Path) -> dict[str, float]:
    """The family's held-out metrics (e.g. the flow's test bits/dim) of the weights in ``path``, as training computes them."""
    from genbench.baselines.api import load_checkpoint
    from genbench.baselines.data import load_arrays

    family = load_checkpoint(path)
    data = family.info["config"]["data"]
    eval_arrays = load_arrays(data["eval_dataset"])
    if data.get("eval_n"):
        eval_arrays = eval_arrays.subset(slice(0, data["eval_n"]))
    with torch.no_grad():
        return family.evaluate(eval_arrays)


def sampling_only(source: Path) -> Path:
    """``source``, or a copy beside it holding only the networks its family needs to sample."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    family = FAMILIES.get(ckpt["family"])
    if not family.sampling_nets or set(ckpt["state"]["nets"]) == set(family.sampling_nets):
        return source
    stripped = {**ckpt, "state": family.sampling_state(ckpt["state"])}
    candidate = source.with_name(source.stem + "-sampling.pt")
    save_checkpoint(stripped, candidate)
    return candidate


def bundle(name: str, run_dir: Path, if_better: bool, n: int, weights: str = "better") -> None:
    source = run_dir / f"{name}.pt"
    if not finished(source):
        raise SystemExit(f"{source}: not a finished run; wait for {source.with_suffix('.log')} to say 'done'")
    source = sampling_only(with_weights(source, weights, n))
    target = CHECKPOINT_DIR / f"{name}.pt"
    if if_better and name in read_manifest()["checkpoints"] and target.is_file():
        new, old = fd_fmnist(source, n), fd_fmnist(target, n)
        print(f"{name}: fd_fmnist at n={n}: candidate {new:.2f}, bundled {old:.2f}")
        if new >= old:
            print(f"{name}: kept the bundled checkpoint")
            return
    partial = target.with_suffix(".pt.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    ckpt = read_checkpoint(target)
    command = ("scripts/gpu_train_baselines.sh" if str(ckpt["device"]).startswith("cuda")
               else f"scripts/train_baselines_cpu.sh {name}") + f" && scripts/bundle_baselines.py {name}"
    entry = record_bundled(name, target, command)
    print(f"{name}: {entry['steps']} steps, {entry['wall_time_s']} s on {entry['device']} x{entry['threads']}, "
          f"sha256 {entry['sha256'][:12]}, {entry['size_bytes'] / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="baseline names (dcgan, cgan, ...)")
    parser.add_argument("--from", dest="run_dir", type=Path, default=Path("out") / "baselines",
                        help="folder holding NAME.pt and NAME.log (default out/baselines)")
    parser.add_argument("--if-better", action="store_true", help="replace only when the candidate's fd_fmnist is lower")
    parser.add_argument("-n", type=int, default=10_000, help="samples for --if-better and --weights better")
    parser.add_argument("--weights", choices=("better", "ema", "raw"), default="better",
                        help="for a run with an EMA: which generator weights to bundle")
    args = parser.parse_args()
    for name in args.names:
        bundle(name, args.run_dir, args.if_better, args.n, args.weights)


if __name__ == "__main__":
    main()
