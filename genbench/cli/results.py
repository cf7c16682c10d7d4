"""``genbench results`` (list, show, export the SQLite results history) and ``genbench report``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..results.pages.metrics import headline as page_headline


def json_option(what: str):
    """``--json PATH|-``, as every verb has it: write ``what`` as JSON to PATH, or to stdout with ``-``.

    A bare ``--json`` (the boolean flag these listing verbs once had) still means ``-``.
    """
    return click.option("--json", "json_out", is_flag=False, flag_value="-", default=None, metavar="PATH|-",
                        help=f"Write {what} as JSON to PATH, or to stdout with '-' (a bare --json means '-').")


def emit_json(text: str, json_out: str) -> None:
    """``text`` (a JSON document) to stdout for ``-``, else atomically to the file ``json_out``."""
    from ..util.atomic import write_text_atomic

    if json_out == "-":
        click.echo(text)
    else:
        write_text_atomic(json_out, text + "\n")


def show_result(text: str, json_out: str | None, quiet: bool) -> None:
    """A verb's result table: on stdout, unless ``--json -`` puts the JSON there (then on stderr, unless quiet)."""
    if json_out != "-":
        click.echo(text)
    elif not quiet:
        click.echo(text, err=True)


_HISTORY = click.option(
    "--history", "history_file", default=None, envvar="GENBENCH_HISTORY",
    help="The SQLite results history (also $GENBENCH_HISTORY).",
)


@click.group()
def results() -> None:
    """The results history: an SQLite file written by `genbench score --history PATH`."""


def _short_metrics(record) -> str:
    parts = []
    for name, entry in record.metrics.items():
        value = page_headline(entry)
        if value is not None:
            parts.append(f"{name}={value:.4g}")
    return " ".join(parts)


@results.command("list")
@_HISTORY
@click.option("--name", default=None, help="Only records with this model/run name.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest N records.")
@json_option("the records")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def results_list(history_file: str | None, name: str | None, limit: int | None, json_out: str | None,
                 overwrite: bool) -> None:
    """List stored results, oldest first."""
    from ..results.history import open_history
    from ..results.outputs import check_output_file

    check_output_file(json_out, "--json", overwrite)
    history = open_history(history_file, create=False)
    records = history.records(name=name, limit=limit, newest_first=True)[::-1]
    if json_out:
        emit_json(json.dumps([r.to_dict() for r in records], indent=2), json_out)
        if json_out == "-":
            return
    if not records:
        click.echo("(no results)" + (f" named {name!r}" if name else ""))
        return
    for r in records:
        n = ((r.provenance.get("inputs") or {}).get("generated") or {}).get("n")
        commit = (r.git_commit or "-")[:10]
        click.echo(f"#{r.id:<5} {r.created_at}  {r.name or '-':<20} {r.extractor or '-':<14} n={n!s:<6} git {commit:<10}  "
                   + _short_metrics(r))


@results.command("show")
@click.argument("record_id", type=int)
@_HISTORY
def results_show(record_id: int, history_file: str | None) -> None:
    """Print the stored result RECORD_ID as JSON (accepted by `genbench check` and `genbench report`)."""
    from ..results.history import open_history

    click.echo(json.dumps(open_history(history_file, create=False).get(record_id).to_dict(), indent=2))


@results.command("export")
@_HISTORY
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: one row per (record, metric); json: the full documents.")
@click.option("--name", default=None, help="Only records with this model/run name.")
@click.option("-o", "--output", default=None, help="Write to PATH instead of stdout.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def results_export(history_file: str | None, fmt: str, name: str | None, output: str | None, overwrite: bool) -> None:
    """Export the history as CSV or JSON."""
    from ..results.history import open_history
    from ..results.outputs import check_output_file
    from ..util.atomic import write_text_atomic

    check_output_file(output, "-o", overwrite)
    history = open_history(history_file, create=False)
    text = history.export_csv(name) if fmt == "csv" else history.export_json(name) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    write_text_atomic(output, text)


@click.command()
@click.argument("result_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for report.html (self-contained) and summary.md (+ the artifact PNGs it links).")
@click.option("--title", default=None, help="Page title (default: the run name or the file name).")
@click.option("--overwrite", is_flag=True, help="Replace existing report files in the folder.")
@click.option("--quiet", "-q", is_flag=True, help="No messages on stderr.")
def report(result_file: str, out_dir: str, title: str | None, overwrite: bool, quiet: bool) -> None:
    """Render RESULT_FILE (a result JSON) as an HTML page and a Markdown summary."""
    from ..results.report import load_result_document, write_report

    doc = load_result_document(result_file)
    paths = write_report(doc, out_dir, base_dir=Path(result_file).resolve().parent, title=title, overwrite=overwrite)
    for path in paths.values():
        if not quiet:
            click.echo(f"wrote {path}", err=True)
