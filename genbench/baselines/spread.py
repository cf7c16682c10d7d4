"""How much fd_fmnist moves with the sampling seed (and the training seed): which differences are real.

    genbench baselines spread --out reports/fashion-mnist/seed-spread.md
    genbench baselines spread --train-seed glo=out/baselines/glo-seed1.pt ...

Every bundled Fashion-MNIST baseline is scored through the leaderboard's own path
(``genbench.leaderboard.score_rows``, fd_fmnist against the bundled training statistics) at
``n`` samples for each sampling seed; ``--train-seed NAME=CHECKPOINT`` adds a checkpoint of
the same family trained from another seed, scored at the same sampling seeds.
"""
from __future__ import annotations

import statistics

from genbench.errors import ConfigError


def spread_rows(names: list[str] | None, seeds: list[int], n: int, extra: dict[str, list[str]],
                log=lambda s: None) -> list[dict]:
    """One dict per (baseline, checkpoint): its fd_fmnist per sampling seed, mean, sample std and range."""
    from genbench import leaderboard as lb
    from genbench.baselines import board

    from .api import load_checkpoint

    plan = lb.MetricPlan(board.EXTRACTOR, ("fd",))
    base_specs = board.baseline_row_specs(names)
    specs: list[tuple[str, str, lb.RowSpec]] = [(s.name, "bundled (seed in its config)", s) for s in base_specs]
    by_name = {s.name: s for s in base_specs}
    for name, paths in extra.items():
        if name not in by_name:
            raise ConfigError(f"--train-seed {name}=...: {name} is not a bundled Fashion-MNIST baseline")
        for path in paths:
            model = load_checkpoint(path)
            if model.name != by_name[name].name and model.run_name != name:
                raise ConfigError(f"--train-seed {name}={path}: that checkpoint is a {model.run_name}, not a {name}")
            specs.append((name, f"{path} (training seed {model.seed})", board.generator_row_spec(f"{name} ({path})", model)))
    out = []
    for name, what, spec in specs:
        values = []
        for seed in seeds:
            rows, _ = lb.score_rows([spec], n, seed, plans=[plan], board=board.BOARD)
            values.append(float(rows[0].metrics["fd_fmnist"]["value"]))
            log(f"{name:<10} {what:<40} seed {seed}: fd_fmnist {values[-1]:.2f}")
        out.append({"name": name, "checkpoint": what, "n": rows[0].n, "values": values,
                    "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "range": max(values) - min(values)})
    return out


def to_markdown(rows: list[dict], seeds: list[int], command: str) -> str:
    lines = [
        "# fd_fmnist across seeds",
        "",
        f"Each bundled baseline sampled with seeds {', '.join(map(str, seeds))} and scored like its leaderboard row "
        "(fd_fmnist against the bundled training statistics). A difference between two rows smaller than their "
        "spreads is not a real difference.",
        "",
        "| model | checkpoint | n | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | max - min |",
        "|---|---|---|" + "---|" * len(seeds) + "---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['checkpoint']} | {r['n']} | " + " | ".join(f"{v:.2f}" for v in r["values"])
                     + f" | {r['mean']:.2f} | {r['std']:.2f} | {r['range']:.2f} |")
    if any(f"{r['range']:.2f}" == "0.00" for r in rows):  # as printed: reordering the same images moves the last bits
        lines += ["", "A spread of 0 means the samples do not depend on the seed: cyclegan translates every held-out "
                  "source once, only their order is seeded."]
    lines += ["", f"Made by `{command}`.", ""]
    return "\n".join(lines)
