"""``genbench sweep``: many checkpoints or sample folders against one reference (see :mod:`genbench.sweep`)."""
from __future__ import annotations

import click

from ..errors import ConfigError
from .options import build_extract_options, build_metric_options, extraction_options, metric_options, seed_option


@click.command()
@click.argument("generated", nargs=-1)
@click.option("--ref", "reference", required=True,
              help="Reference: folder, archive, array/feature/statistics file, or a reference id; extracted once.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The .jsonl file: one line per entry is appended; entries already in it are skipped.")
@click.option("--list", "list_file", default=None, type=click.Path(dir_okay=False),
              help="A file with one GENERATED entry per line (# comments), after the positional ones.")
@click.option("--generator", default=None, metavar="py:FILE.py:FUNCTION",
              help="Score this py: generator at each entry, an entry being its checkpoint (py:...@ENTRY).")
@click.option("--metrics", default=None, help="Comma-separated metric names (default: as genbench score).")
@click.option("--rank-by", default=None, help="The metric that picks the best entry (default: the first FD).")
@seed_option(help="Seed for every random step (IS splits, KID subsets, bootstrap, generator draws).")
@metric_options(defaults={"bootstrap": 50}, help={"bootstrap": "Bootstrap replicates for 95% intervals and for the "
                                                                "probability that the best beats the runner-up (0 = off)."})
@click.option("--plot", "plot_prefix", default=None, metavar="PREFIX",
              help="Write PREFIX.<metric>.png per metric (default: beside --out, named after it; '-' for none).")
@click.option("--name", "run_name", default=None, help="Sweep name recorded in each line and in the history.")
@click.option("--history", "history_file", default=None, envvar="GENBENCH_HISTORY",
              help="Also record each result in this SQLite results history (also $GENBENCH_HISTORY).")
@click.option("--project-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Git checkout whose commit is recorded (default: the current directory).")
@click.option("--log", "log_specs", multiple=True, metavar="KIND:WHERE",
              help="Also log each new entry's metrics at its step: tensorboard:DIR, wandb:PROJECT or "
                   "mlflow:EXPERIMENT (optional extras; repeatable).")
@click.option("--json", "json_out", default=None, metavar="-", help="'-': print the summary as JSON on stdout.")
@extraction_options
def sweep(generated: tuple[str, ...], reference: str, out: str, list_file: str | None, generator: str | None,
          metrics: str | None, rank_by: str | None, plot_prefix: str | None, run_name: str | None,
          history_file: str | None, project_dir: str | None, log_specs: tuple[str, ...], json_out: str | None,
          **kw) -> None:
    """Score each GENERATED entry (checkpoints' sample folders, files, py: generators) against one reference,
    extracted once; append one JSON line per entry to --out; print a table, plot each metric against the step
    and name the best entry with the bootstrap probability that it beats the runner-up."""
    import json
    from pathlib import Path

    from ..extraction.ranks import is_main_process
    from ..results.history import open_history
    from ..results.outputs import check_output_file
    from ..sweep import format_summary, plot_sweep, read_entries, run_sweep, summarize

    quiet = kw["quiet"]
    if json_out not in (None, "-"):
        raise ConfigError(f"--json {json_out}: only '-' (stdout); the lines are in --out")
    entries = read_entries(generated, list_file, generator)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if wanted == []:
        raise ConfigError("--metrics is empty; give at least one metric name")
    check_output_file(out, "--out", overwrite=True)  # appended to, never replaced
    history = open_history(history_file, required=False)
    xo = build_extract_options(kw)
    mo = build_metric_options(kw)

    loggers = []
    if log_specs:
        from ..integrations.loggers import from_spec, sweep_callback

        try:
            loggers = [from_spec(spec) for spec in log_specs]
        except ImportError as exc:
            raise ConfigError(f"--log: {exc}") from None
        logged = sweep_callback(loggers)

    def told(line: dict) -> None:
        if loggers:
            logged(line)
        if not quiet:
            click.echo(f"{line['checkpoint']}: " + ", ".join(
                f"{k}={v.get('value', v.get('mean')):.5g}" for k, v in line["metrics"].items()) +
                f" ({line['seconds']:.1f} s)", err=True)

    before = len(entries)
    try:
        lines = run_sweep(entries, reference, out, metrics=wanted, extract_options=xo, metric_options=mo,
                          generator=generator, name=run_name, history=history, project_dir=project_dir, on_entry=told)
    finally:
        for logger in loggers:
            logger.close()
    if not is_main_process():
        return
    summary = summarize(lines, rank_by)
    if not quiet:
        click.echo(f"{len(lines)} of {before} entries recorded in {out}", err=True)
    text = format_summary(summary)
    if json_out == "-":
        if not quiet:
            click.echo(text, err=True)
        click.echo(json.dumps({"best": summary.best and summary.best["checkpoint"],
                               "runner_up": summary.runner_up and summary.runner_up["checkpoint"],
                               "metric": summary.metric, "p_best_beats_runner_up": summary.p_best_beats_runner_up,
                               "entries": [{k: v for k, v in line.items() if k != "provenance"} for line in lines]},
                              indent=2))
    else:
        click.echo(text)
    if plot_prefix != "-":
        prefix = plot_prefix or str(Path(out).with_suffix(""))
        for path in plot_sweep(summary, prefix):
            if not quiet:
                click.echo(f"wrote {path}", err=True)
