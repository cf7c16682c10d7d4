"""How much fd_fmnist moves with the sampling seed (and the training seed): which differences are real.

    python -m genbench.baselines.spread --out reports/fashion-mnist/seed-spread.md
    python -m genbench.baselines.spread --train-seed glo=out/baselines/glo-seed1.pt ...

Every bundled Fashion-MNIST baseline is scored through the leaderboard's own path
(``genbench.leaderboard.score_rows``, fd_fmnist against the bundled training statistics) at
``n`` samples for each sampling seed; ``--train-seed NAME=CHECKPOINT`` adds a checkpoint of
the same family trained from another seed, scored at the same sampling seeds.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import click

from genbench.cli.boundary import GenbenchCommand
from genbench.errors import ConfigError
from genbench.util.atomic import write_text_atomic


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


@click.command(cls=GenbenchCommand, context_settings={"show_default": True})
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Markdown file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--families", default=None, help="Comma-separated subset of the baselines (default: all).")
@click.option("--seeds", default="0,1,2", help="Comma-separated sampling seeds.")
@click.option("-n", "n", type=click.IntRange(min=10), default=10_000, help="Samples per score.")
@click.option("--train-seed", "train_seed", multiple=True, metavar="NAME=CHECKPOINT",
              help="Also score a checkpoint of baseline NAME trained from another seed.")
def main(out: str, overwrite: bool, families: str | None, seeds: str, n: int, train_seed: tuple[str, ...]) -> None:
    """Write the spread of fd_fmnist across sampling (and training) seeds."""
    from genbench.results.outputs import check_output_file

    check_output_file(out, "--out", overwrite)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {seeds!r}: expected comma-separated integers such as 0,1,2") from None
    if len(seed_list) < 2:
        raise ConfigError(f"--seeds {seeds!r}: a spread needs at least two seeds")
    extra: dict[str, list[str]] = {}
    for entry in train_seed:
        name, sep, path = entry.partition("=")
        if not sep or not Path(path).is_file():
            raise ConfigError(f"--train-seed {entry!r}: expected NAME=CHECKPOINT with an existing checkpoint file")
        extra.setdefault(name.strip(), []).append(path)
    names = [f.strip() for f in families.split(",")] if families else None
    rows = spread_rows(names, seed_list, n, extra, log=lambda s: click.echo(s, err=True))
    command = "python -m genbench.baselines.spread " + " ".join(sys.argv[1:])
    write_text_atomic(Path(out), to_markdown(rows, seed_list, command))
    click.echo(to_markdown(rows, seed_list, command))


if __name__ == "__main__":
    main(prog_name="python -m genbench.baselines.spread")
