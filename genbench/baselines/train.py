"""The one training loop shared by every baseline family (its command: ``genbench baselines train``).

    genbench baselines train dcgan --dry-run
    genbench baselines train dcgan --out out/baselines/dcgan.pt --threads 1
    genbench baselines train dcgan --bundle       # write baselines/checkpoints/dcgan.pt + manifest entry
    genbench baselines train dcgan-stacked --dry-run   # a config variant: configs/dcgan-stacked.toml, family dcgan

NAME is a family (configs/FAMILY.toml) or a config variant of one: any other configs/NAME.toml,
whose ``family`` key names the family it trains (dcgan-stacked: DCGAN on Stacked Fashion-MNIST).
Checkpoints and manifest entries carry NAME; their ``family`` is the family's.

The loop knows nothing of any family: it loads the data, builds the family from its
config, draws seeded batches from the family's named streams, calls ``train_step``,
logs averaged losses, writes checkpoints (atomically), and at the end calls
``finalize`` (fits needed for sampling) and ``evaluate`` (metrics on the eval split).
"""
from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from genbench.errors import ConfigError

from .checkpoint import FORMAT, FORMAT_VERSION, genbench_version, save_checkpoint
from .config import CONFIG_DIR, RunConfig, default_config_path, load_config, read_toml
from .data import Arrays, BatchSampler, load_arrays
from .ema import WeightAverage, has_batch_norm, recompute_batch_norm
from .families import FAMILIES
from .families.base import Family

DEFAULT_OUT_DIR = Path("out") / "baselines"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None: CUDA when available, else CPU. ConfigError for a CUDA request without CUDA."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from genbench.util.devices import check_device

    return torch.device(check_device(str(device), "--device"))


def choose_precision(mode: str, family: type[Family], device: torch.device) -> torch.dtype | None:
    """Autocast dtype for training, or None for float32.

    "auto": bfloat16 on CUDA devices that support it, for families marked amp_safe (flows and the
    WGAN-GP double backward stay in float32); "bf16": force bfloat16; "off": float32.
    bfloat16 has float32's exponent range, so no loss scaling is needed.
    """
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and family.amp_safe and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def baseline_names() -> list[str]:
    """Every baseline NAME, sorted: the families and the config variants (configs/NAME.toml of another name)."""
    variants = {path.stem for path in CONFIG_DIR.glob("*.toml")} - set(FAMILIES.names())
    return sorted(set(FAMILIES.names()) | variants)


def family_of(name: str) -> str:
    """The family that baseline ``name`` trains: ``name`` itself, or the ``family`` of configs/NAME.toml.

    ConfigError for an unknown name or a variant config that names no family.
    """
    if name in FAMILIES:
        return name
    names = baseline_names()
    if name not in names:
        raise ConfigError(f"unknown baseline {name!r}; expected one of: {', '.join(names)}")
    path = default_config_path(name)
    declared = read_toml(path).get("family")
    if not isinstance(declared, str) or declared not in FAMILIES:
        raise ConfigError(f"{path}: family = {declared!r}; a config variant must name one of the families: "
                          f"{', '.join(FAMILIES.names())}")
    return declared


def load_run_config(
    name: str, config: str | Path | Mapping[str, Any] | None = None, seed: int | None = None, steps: int | None = None
) -> RunConfig:
    """Resolve the config of baseline ``name`` (bundled configs/NAME.toml when ``config`` is None).

    ``name`` is a family or a config variant of one (see ``family_of``); the RunConfig's ``family``
    is the family.
    """
    family_name = family_of(name)
    family = FAMILIES.get(family_name)
    run = load_config(default_config_path(name) if config is None else config, family_name, family.options_cls)
    if run.train.ema_decay > 0 and family.ema_net is None:
        raise ConfigError(f"{run.source}: train.ema_decay = {run.train.ema_decay}, but the {family_name} family has "
                          "no network to average; set train.ema_decay = 0")
    if seed is not None:
        run = RunConfig(run.family, int(seed), run.data, run.train, run.model, run.source)
    if steps is not None:
        if steps < 1:
            raise ConfigError(f"steps (--steps) must be >= 1, got {steps}")
        run = run.replace_train(steps=int(steps))
    return run


def train(
    name: str,
    config: str | Path | Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    device: str | torch.device | None = None,
    seed: int | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = _stderr,
    overwrite: bool = False,
    stop_after: int | None = None,
    time_limit: float | None = None,
) -> Path | None:
    """Train baseline ``name`` (a family or a config variant) and write its checkpoint; returns its path.

    config: TOML path or parsed mapping (default baselines/configs/NAME.toml); out: checkpoint
    path (default out/baselines/NAME.pt; a dry run writes no checkpoint unless ``out`` is given, and
    returns None then); an existing ``out`` is replaced only with ``overwrite``; steps/seed override the config;
    dry_run: ``train.dry_run_steps`` steps at ``train.dry_run_batch_size`` and a small evaluation;
    device: None picks CUDA when available; threads: torch CPU threads (None: torch's default);
    time_limit: override train.time_limit_s; stop_after: stop after that many steps with the schedules still
    planned for train.steps and no time limit (repeats a run a time limit stopped).
    Raises ConfigError for bad options, InputError for unusable data.
    """
    run = load_run_config(name, config, seed=seed, steps=steps)
    if time_limit is not None:
        if time_limit < 0:
            raise ConfigError(f"time_limit (--time-limit) must be >= 0 seconds, got {time_limit}")
        run = run.replace_train(time_limit_s=float(time_limit))
    if stop_after is not None:
        if not 1 <= stop_after <= run.train.steps:
            raise ConfigError(f"--stop-after {stop_after}: expected 1..{run.train.steps} (train.steps)")
        run = run.replace_train(stop_after=int(stop_after), time_limit_s=0.0)
    if dry_run:
        run = run.replace_train(
            steps=run.train.dry_run_steps, batch_size=run.train.dry_run_batch_size, log_every=1, checkpoint_every=0
        )
        run = run.replace_data(eval_n=min(run.data.eval_n or 10**9, 2 * run.train.batch_size))
    if out is None and not dry_run:
        out = DEFAULT_OUT_DIR / f"{name}.pt"
    if out is not None:
        from genbench.results.outputs import check_output_file

        check_output_file(out, "--out", overwrite)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads (--threads) must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return run_training(run, Path(out) if out is not None else None, resolve_device(device), dry_run=dry_run, log=log,
                        name=name)


def run_training(run: RunConfig, out: Path | None, device: torch.device, dry_run: bool, log: Callable[[str], None],
                 name: str | None = None) -> Path | None:
    """The shared loop (see the module docstring). ``name``: the baseline's name (default: its family).

    ``out`` None (a dry run): every checkpoint is serialised in memory, to check that it can be, and written nowhere.
    """
    family_cls = FAMILIES.get(run.family)
    label = name or run.family
    opts = run.train
    train_arrays = load_arrays(run.data.dataset)
    held_out: Arrays | None = None  # the whole evaluation split, for prepare()
    eval_arrays: Arrays | None = None  # its first eval_n images, for evaluate()
    if run.data.eval_dataset:
        held_out = eval_arrays = load_arrays(run.data.eval_dataset)
        if run.data.eval_n:
            eval_arrays = held_out.subset(slice(0, run.data.eval_n))

    family = family_cls.build(run, device)
    for option, arrays in (("data.dataset", train_arrays), ("data.eval_dataset", held_out)):
        if arrays is not None and arrays.channels != family.channels:  # the config check uses the registered shapes
            raise ConfigError(f"{run.source}: {option} images have {arrays.channels} channel(s), but the {run.family} "
                              f"networks are built for {family.channels} (model.channels)")
    family.amp_dtype = choose_precision(opts.amp, family_cls, device)
    streams = family.prepare(train_arrays, held_out)
    samplers = {
        stream: BatchSampler(arrays, opts.batch_size, seed=run.seed + 1000 + i, device=device)
        for i, (stream, arrays) in enumerate(sorted(streams.items()))
    }
    precision = "bfloat16-autocast" if family.amp_dtype is not None else "float32"
    n_params = sum(p.numel() for net in family.nets.values() for p in net.parameters())
    log(
        f"[{label}] {opts.steps} steps, batch {opts.batch_size}, device {device} ({precision}), "
        f"{n_params / 1e6:.2f}M parameters, streams " + ", ".join(f"{k}={len(v)}" for k, v in sorted(streams.items()))
    )

    def checkpoint(steps_done: int, wall: float, metrics: dict[str, float], eval_s: float,
                   raw: dict[str, torch.Tensor] | None = None) -> None:
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": label,
            "family": run.family,
            "config": run.to_dict(),
            "config_source": run.source,
            "dataset": run.data.dataset,
            "state": family.state(),
            # with train.ema_decay: the last raw (not averaged) weights of the averaged net, for comparison
            "raw_weights": {str(family.ema_net): raw} if raw is not None else {},
            "steps": steps_done,
            "wall_time_s": wall,
            "eval_time_s": eval_s,
            "device": str(device),
            "precision": precision,
            "threads": torch.get_num_threads(),
            "metrics": metrics,
            "history": history,
            "dry_run": dry_run,
            "genbench_version": genbench_version(),
            "torch_version": str(torch.__version__),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if out is not None:
            save_checkpoint(document, out)
        else:
            torch.save(document, io.BytesIO())  # a dry run without --out: check it serialises, write nothing

    ema = make_average(family, opts.ema_decay, opts.ema_start)
    schedules = make_schedules(family, opts.lr_schedule, opts.lr_decay_start, opts.steps)

    def sampled_weights() -> dict[str, torch.Tensor] | None:
        """Put the averaged weights (with matching batch-norm statistics) into the EMA net; return the raw ones."""
        if ema is None:
            return None
        net = family.nets[str(family.ema_net)]
        raw = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict(ema.state_dict())
        if has_batch_norm(net):
            recompute_batch_norm(net, lambda i: standing_pass(family, opts.batch_size, run.seed, i))
        return raw

    history: list[dict[str, float]] = []
    sums: dict[str, torch.Tensor] = {}
    count = 0
    family.train_mode(True)
    start = last_log = time.perf_counter()
    step = 0
    for step in range(1, opts.steps + 1):
        batches = {name: sampler.next(opts.batch_size * family.batches_per_step) for name, sampler in samplers.items()}
        losses = family.train_step(batches, step)
        if ema is not None:
            ema.update(step)
        for scheduler in schedules:
            scheduler.step()
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value.float()
        count += 1
        elapsed = time.perf_counter() - start
        out_of_time = (opts.time_limit_s > 0 and elapsed >= opts.time_limit_s) or step == opts.stop_after
        if step % opts.log_every == 0 or step == opts.steps or out_of_time:
            means = {key: float(total) / count for key, total in sums.items()}
            bad = [key for key, value in means.items() if not math.isfinite(value)]
            if bad:
                raise ConfigError(
                    f"{run.source}: training of {run.family} diverged at step {step} ({bad[0]} = {means[bad[0]]}); "
                    "lower the learning rates in [model] or change the seed"
                )
            now = time.perf_counter()
            rate = count / max(now - last_log, 1e-9)
            history.append({"step": step, "wall_time_s": round(elapsed, 3), **means})
            log(f"[{label}] step {step}/{opts.steps} " + " ".join(f"{k}={v:.4f}" for k, v in means.items())
                + f" ({rate:.2f} steps/s)")
            sums, count, last_log = {}, 0, now
        if opts.checkpoint_every and step % opts.checkpoint_every == 0 and step < opts.steps:
            family.train_mode(False)
            raw = sampled_weights()
            family.finalize(streams)
            checkpoint(step, time.perf_counter() - start, {}, 0.0, raw)
            if raw is not None:
                family.nets[str(family.ema_net)].load_state_dict(raw)
            family.train_mode(True)
        if out_of_time:
            log(f"[{label}] stopped after {step} of {opts.steps} steps "
                + ("(--stop-after)" if step == opts.stop_after else f"(time limit {opts.time_limit_s}s)"))
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    family.train_mode(False)
    eval_start = time.perf_counter()
    raw = sampled_weights()  # the checkpoint keeps the weights that are sampled from
    family.finalize(streams)
    with torch.no_grad():
        metrics = family.evaluate(eval_arrays)
    eval_s = time.perf_counter() - eval_start
    checkpoint(step, wall, metrics, eval_s, raw)
    log(
        f"[{label}] done: {step} steps in {wall:.1f}s ({step / max(wall, 1e-9):.2f} steps/s)"
        + "".join(f", {k}={v:.4f}" for k, v in metrics.items())
        + (f" -> {out}" if out is not None else " (dry run: no checkpoint written; pass --out to keep one)")
    )
    return out


def make_average(family: Family, decay: float, start: int) -> WeightAverage | None:
    """The EMA of ``family.ema_net`` for ``train.ema_decay`` > 0; ConfigError for a family without one."""
    if decay <= 0:
        return None
    if family.ema_net is None:
        raise ConfigError(f"train.ema_decay = {decay}: the {family.name} family has no network to average; "
                          "set train.ema_decay = 0")
    return WeightAverage(family.nets[family.ema_net], decay, start)


def make_schedules(family: Family, schedule: str, decay_start: float, steps: int) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """One LambdaLR per optimiser: "constant" (none), or "linear" decay to 0 from ``decay_start * steps``."""
    if schedule == "constant":
        return []
    first = int(round(decay_start * steps))

    def factor(step: int) -> float:  # step = optimiser steps taken so far
        if step <= first:
            return 1.0
        return max(0.0, (steps - step) / max(steps - first, 1))

    return [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in family.optimizers.values()]


def standing_pass(family: Family, batch_size: int, seed: int, index: int) -> None:
    """One forward pass of fresh seeded latents through the family's decoder (batch-norm statistics)."""
    generator = torch.Generator().manual_seed(seed * 7919 + index)
    latents = {k: v.to(family.device) for k, v in family.draw(max(batch_size, 64), generator).items()}
    family.decode(latents)
