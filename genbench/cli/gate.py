"""``genbench check``: the CI quality gate (rules and verdicts live in :mod:`genbench.gate`).

The verdict table goes to stdout (with ``--json -`` the JSON does, and the table to stderr).
Exit codes: 0 all rules hold, 1 a regression, 2 a usage error (bad option, missing baseline,
a metric missing from a result, incompatible provenance).
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click

from ..errors import ConfigError, InputError
from ..gate import PROVENANCE_FIELDS, Rule, evaluate, parse_rule, validate_result_document
from .options import build_extract_options, extraction_options, given_flags, metric_options, option_values, seed_option
from .results import show_result


def load_baseline(spec: str, history_file: str | None) -> tuple[dict, dict]:
    """The baseline document and a short description: from a JSON file, a history id, or ``latest[:NAME]``."""
    from ..results.history import open_history, parse_record_ref
    from ..results.report import load_result_document

    path = Path(spec)
    if path.is_file():
        return validate_result_document(load_result_document(path), f"--baseline {path}"), {}
    ref = parse_record_ref(spec)
    if ref is None:
        raise InputError(
            f"--baseline {spec}: no such file, and not a history record (a number such as 12, or latest, or latest:NAME)"
        )
    history = open_history(history_file, create=False)
    record = history.get(ref) if isinstance(ref, int) else history.latest(ref[1])
    document = validate_result_document(record.document, f"--baseline {spec} (history record #{record.id})")
    return document, {"history_id": record.id, "name": record.name, "git_commit": record.git_commit}


def _describe(doc: dict, where: str | None) -> dict:
    prov = doc.get("provenance") or {}
    return {"source": where, "name": prov.get("name"), "git_commit": prov.get("git_commit"), "created_at": prov.get("created_at")}


def _score_new(new: str, baseline: dict | None, options: dict, kw: dict):
    """Score NEW with score's options; options not given follow the baseline's provenance."""
    from ..api import run_score
    from ..config import ExtractOptions, MetricOptions

    prov = (baseline or {}).get("provenance") or {}
    given = option_values(ExtractOptions, kw)
    xo = build_extract_options(kw, extractor=given["extractor"] or prov.get("extractor"),
                               preprocessing=given["preprocessing"] or (prov.get("preprocessing") if not given["extractor"] else None))
    known = {f.name for f in fields(MetricOptions)}
    settings = {k: v for k, v in (prov.get("metric_options") or {}).items() if k in known}
    settings.update({k: v for k, v in options.items() if v is not None and k in known})
    mo = MetricOptions(**settings)
    reference = options.get("reference") or _baseline_reference(prov)
    if reference is None:
        raise ConfigError(f"NEW {new} is not a result JSON, so it is scored: pass --ref (the baseline names no reference)")
    metrics = options.get("metrics")
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list((baseline or {}).get("metrics") or []) or None
    return run_score(new, reference, wanted, xo, mo)


def _baseline_reference(prov: dict) -> str | None:
    ref = (prov.get("inputs") or {}).get("reference") or {}
    if ref.get("reference_id"):
        return ref["reference_id"]
    location = ref.get("location")
    return location if location and Path(location).exists() else None


@click.command()
@click.argument("new")
@click.option("--baseline", default=None,
              help="Baseline: a result JSON file, a history record id (12), or latest / latest:NAME from the history.")
@click.option("--history", "history_file", default=None, envvar="GENBENCH_HISTORY",
              help="Results history for record ids and --record (also $GENBENCH_HISTORY).")
@click.option("--max", "max_rules", multiple=True, metavar="METRIC=V", help="New value must be <= V (repeatable).")
@click.option("--min", "min_rules", multiple=True, metavar="METRIC=V", help="New value must be >= V (repeatable).")
@click.option("--max-increase", "increase_rules", multiple=True, metavar="METRIC=D",
              help="Allowed rise over the baseline for a lower-is-better metric (repeatable).")
@click.option("--max-decrease", "decrease_rules", multiple=True, metavar="METRIC=D",
              help="Allowed fall below the baseline for a higher-is-better metric (repeatable).")
@click.option("--within-uncertainty", is_flag=True,
              help="Regressed only when the new 95% interval lies wholly on the worse side of the baseline's "
                   "(every metric with ci95; score with --bootstrap N).")
@click.option("--ignore-provenance", multiple=True, type=click.Choice(PROVENANCE_FIELDS),
              help="Waive one compatibility check (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table",
              help="Verdict table for terminals, or Markdown for a pull-request comment.")
@click.option("--json", "json_out", default=None, metavar="PATH|-",
              help="Write the verdicts as JSON to PATH, or to stdout with '-' (instead of the table).")
@click.option("--overwrite", is_flag=True, help="Replace existing --json / --save-result files.")
@click.option("--record", is_flag=True, help="Append the new result to the history.")
@click.option("--name", "run_name", default=None, help="Model/run name for a result scored here.")
@click.option("--save-result", default=None, type=click.Path(dir_okay=False), help="Write a result scored here as JSON.")
@click.option("--project-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Git checkout whose commit is recorded for a result scored here.")
@click.option("--ref", "reference", default=None, help="When NEW is scored: the reference (default: the baseline's).")
@click.option("--metrics", default=None, help="When NEW is scored: metric names (default: the baseline's).")
@seed_option(None, help="When NEW is scored (default: the baseline's, else 0).")
@metric_options("is_splits", "kid_subsets", "kid_subset_size", "bootstrap",  # None: follow the baseline
                defaults=dict.fromkeys(("is_splits", "kid_subsets", "kid_subset_size", "bootstrap")),
                help={"bootstrap": "When NEW is scored (default: the baseline's)."})
@extraction_options
@click.pass_context
def check(ctx: click.Context, new: str, baseline: str | None, history_file: str | None, max_rules, min_rules,
          increase_rules, decrease_rules, within_uncertainty: bool, ignore_provenance, fmt: str, json_out: str | None,
          overwrite: bool, record: bool, run_name: str | None, save_result: str | None, project_dir: str | None, reference, metrics,
          **kw) -> None:
    """Compare NEW (a result JSON, or images scored here with score's options) against a baseline.

    Exit 0 when every rule holds, 1 on a regression, 2 on a usage error.
    """
    from ..config import MetricOptions
    from ..results.history import open_history, stamp_result
    from ..results.outputs import check_output_file
    from ..results.report import load_result_document
    from ..util.atomic import write_text_atomic

    check_output_file(json_out, "--json", overwrite)
    check_output_file(save_result, "--save-result", overwrite)
    if save_result and json_out and json_out != "-" and Path(save_result).absolute() == Path(json_out).absolute():
        raise ConfigError(f"--json and --save-result both name {json_out}; give them different files")
    quiet = kw["quiet"]
    rules: list[Rule] = []
    for texts, kind in ((max_rules, "max"), (min_rules, "min"), (increase_rules, "max_increase"),
                        (decrease_rules, "max_decrease")):
        rules += [parse_rule(t, kind) for t in texts]
    if not rules and not within_uncertainty:
        raise ConfigError("no rules: give --max, --min, --max-increase, --max-decrease or --within-uncertainty")
    history = open_history(history_file) if record else None  # only --record writes (and so creates) a history
    base_doc, base_desc = load_baseline(baseline, history_file) if baseline else (None, {})

    new_path = Path(new)
    if new_path.suffix.lower() == ".json":  # a result document (InputError when missing)
        scoring = {"--name": run_name, "--save-result": save_result, "--project-dir": project_dir, "--ref": reference,
                   "--metrics": metrics, **given_flags(MetricOptions, kw), "--extractor": kw["extractor"],
                   "--weights": kw["weights"], "--preprocessing": kw["preprocessing"]}
        given = [flag for flag, value in scoring.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} apply to images scored here, but NEW {new} is already a result JSON")
        new_doc, new_where = validate_result_document(load_result_document(new_path), f"NEW {new}"), new
    else:
        options = {"reference": reference, "metrics": metrics, **option_values(MetricOptions, kw)}
        result = _score_new(new, base_doc, options, kw)
        stamp_result(result, run_name, project_dir)
        if save_result:
            write_text_atomic(save_result, result.to_json() + "\n")
        new_doc, new_where = result.to_dict(), f"scored {new}"

    report = evaluate(new_doc, base_doc, rules, within_uncertainty, tuple(ignore_provenance))
    report.baseline = {**_describe(base_doc, baseline), **base_desc} if base_doc else {}
    report.new = _describe(new_doc, new_where)
    if history is not None:
        record_id = history.add(new_doc)
        report.new["history_id"] = record_id
    text = report.format_markdown() if fmt == "markdown" else report.format_table()
    show_result(text, json_out, quiet)  # the verdict table on stdout, or on stderr when the JSON goes there
    if json_out == "-":
        click.echo(report.to_json())
    elif json_out:
        write_text_atomic(json_out, report.to_json() + "\n")
    ctx.exit(report.exit_code)
