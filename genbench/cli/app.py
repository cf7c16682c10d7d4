"""The ``genbench`` command line: a click group of domain verbs.

Results go to stdout: the result table, or the JSON with ``--json -`` (then the
table goes to stderr); ``--json PATH`` writes the JSON to a file as well. Progress
and messages go to stderr, and ``-q/--quiet`` silences them, never the result.
Every user error exits with code 2 and a one-line message.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import DemoOptions, ExtractOptions
from ..errors import ConfigError
from ..results.outputs import check_output_file
from ..version import __version__
from .boundary import GenbenchGroup
from .options import (  # noqa: F401  (_extract_options, device_option: the old imports from here)
    _extract_options,
    build_extract_options,
    build_metric_options,
    config_option,
    config_options,
    device_option,
    extraction_options,
    metric_options,
    option_values,
    seed_option,
)
from .prepare import prep_options, prepared_input
from .results import show_result

_Made = TypeVar("_Made")


def _show_warnings(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(cls=GenbenchGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="genbench")
def main() -> None:
    """genbench: FID, IS, KID and more for image generative models."""
    warnings.showwarning = _show_warnings


# ----------------------------------------------------------------------------- score


@main.command()
@click.argument("generated")
@click.option("--ref", "reference", required=True,
              help="Reference: folder, archive, array/feature/statistics file, or a reference id such as fashion-mnist:train.")
@click.option("--metrics", default=None, help="Comma-separated metric names (default: fd, is, and kid when the reference has features).")
@click.option("--json", "json_out", default=None, metavar="PATH|-",
              help="Write the result as JSON to PATH, or to stdout with '-' (instead of the table).")
@seed_option(help="Seed for every random step (IS splits, KID subsets, bootstrap).")
@metric_options()  # --is-splits, --kid-subsets, --kid-subset-size, --bootstrap, --pr-k, --dc-k
@click.option("--train", "train", default=None, help="Training set (folder, archive, array or feature file): for fld "
              "and fld_gap, and instead of the reference for mifid and authenticity.")
@click.option("--test", "test", default=None, help="Held-out test set (as --train), for fld and fld_gap.")
@click.option("--per-sample", "per_sample", default=None, metavar="FILE.csv",
              help="Write one row per generated image: realism, rarity, nearest training image and distance, "
                   "authenticity flag, class confidence.")
@click.option("--gallery", "gallery", default=None, metavar="FILE.html",
              help="Write the report page with a gallery: the 8 best and worst samples by realism and the 8 closest "
                   "to the training set (--train, else the reference), each beside its nearest training image with "
                   "the distance. Needs the images of both sets.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json, --per-sample or --gallery file.")
@click.option("--name", "run_name", default=None, help="Model/run name recorded in provenance and the history.")
@click.option("--history", "history_file", default=None, envvar="GENBENCH_HISTORY",
              help="Also append the result to this SQLite results history (also $GENBENCH_HISTORY).")
@click.option("--project-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Git checkout whose commit is recorded (default: the current directory).")
@extraction_options
def score(generated: str, reference: str, metrics: str | None, json_out: str | None, train: str | None,
          test: str | None, per_sample: str | None, gallery: str | None, overwrite: bool, run_name: str | None,
          history_file: str | None, project_dir: str | None, **kw) -> None:
    """Score GENERATED images against a reference."""
    from ..api import run_score
    from ..extraction.ranks import is_main_process
    from ..results.history import open_history, stamp_result
    from ..util.atomic import write_text_atomic

    quiet = kw["quiet"]
    xo = build_extract_options(kw)
    mo = build_metric_options(kw)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if wanted == []:
        raise ConfigError("--metrics is empty; give at least one metric name")
    check_output_file(json_out, "--json", overwrite)
    check_output_file(per_sample, "--per-sample", overwrite)
    check_output_file(gallery, "--gallery", overwrite)
    pictures = None
    if gallery is not None:  # the images must open before any extraction
        from ..results.pages.gallery import open_gallery_images

        pictures = (open_gallery_images(generated, "GENERATED", xo.data_dir),
                    open_gallery_images(train or reference, "--train" if train else "--ref", xo.data_dir))
    history = open_history(history_file, required=False)  # a bad history path fails before extraction
    result = run_score(generated, reference, wanted, xo, mo, train=train, test=test,
                       per_sample=per_sample is not None or gallery is not None)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    stamp_result(result, run_name, project_dir)
    if xo.protocol is not None:  # the paper's table (ADM: Inception Score, FID, sFID, Precision, Recall)
        from ..protocols import paper_table

        table = paper_table(result)
    else:
        table = result.format_table()
    if "precision_check" in result.provenance:
        from ..extraction.engine import format_precision_deviation

        table += "\n" + format_precision_deviation(result.provenance["precision_check"])
    show_result(table, json_out, quiet)
    if json_out == "-":
        click.echo(result.to_json())
    elif json_out:
        write_text_atomic(json_out, result.to_json() + "\n")
    if per_sample is not None and result.samples is not None:
        from ..results.per_sample import write_per_sample_csv

        write_per_sample_csv(per_sample, result.samples, overwrite=overwrite)
    if pictures is not None and gallery is not None and result.samples is not None:
        from ..results.pages.gallery import write_gallery_page

        write_gallery_page(gallery, result.to_dict(), result.samples, *pictures, overwrite=overwrite)
    if history is not None and result.metrics:  # under torchrun only rank 0 has metrics to record
        record_id = history.add(result)
        if not quiet:
            click.echo(f"recorded as #{record_id} in {history.path}", err=True)


# ----------------------------------------------------------------------------- extract / stats


def _writes_one_file(output_help: str, *more: Callable) -> Callable[[Callable[..., None]], click.Command]:
    """The options of a verb that extracts SOURCE once and writes one file (-o): ``extract``, ``stats``; ``more``
    option decorators go after the extraction options' in ``--help``."""
    def wrap(fn: Callable[..., None]) -> click.Command:
        for decorate in (extraction_options, *more,
                         click.option("--overwrite", is_flag=True, help="Replace an existing output file."),
                         click.option("-o", "--output", required=True, help=output_help), click.argument("source")):
            fn = decorate(fn)
        return main.command()(fn)
    return wrap


def _extract_and_write(source: str, output: str, overwrite: bool, kw: dict[str, Any], compute: Callable[..., _Made],
                       save: Callable[[str, _Made, bool], object], summary: Callable[[_Made], str]) -> None:
    """Check -o, ``compute(source, **extract options)``, then (rank 0 only under torchrun) ``save`` and report."""
    from ..extraction.ranks import is_main_process

    check_output_file(output, "-o", overwrite)
    made = compute(source, **option_values(ExtractOptions, kw))  # as given: the API settles what was not
    if not is_main_process():  # under torchrun, rank 0 writes
        return
    save(output, made, overwrite)
    if not kw["quiet"]:
        click.echo(f"wrote {output}: {summary(made)}", err=True)


@_writes_one_file("Feature file to write (.npz).")
def extract(source: str, output: str, overwrite: bool, **kw: Any) -> None:
    """Write per-image features (and logits) of SOURCE to a .npz feature file."""
    from ..api import extract as run_extract
    from ..stats.io import save_features

    _extract_and_write(source, output, overwrite, kw, run_extract,
                       lambda path, ff, replace: save_features(path, ff, overwrite=replace),
                       lambda ff: f"{ff.features.shape[0]} x {ff.features.shape[1]} features")


@main.command()
@click.argument("source")
@click.option("-o", "--output", required=True, help="Statistics file to write (.npz with mu, sigma, n, meta); with "
              "--shard a partial statistics file for `genbench merge`.")
@click.option("--shard", default=None, metavar="K/N",
              help="Only shard K of N (K from 0) of SOURCE: write its partial sums for `genbench merge`.")
@click.option("--bank", type=click.IntRange(1), default=None, metavar="ROWS",
              help="Also keep a seeded uniform sample of at most ROWS per-sample features (KID, precision/recall and "
                   "IS against the statistics need one).")
@seed_option(help="Seed of the --bank sample.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@prep_options
@extraction_options
def stats(source: str, output: str, shard: str | None, bank: int | None, seed: int, overwrite: bool, prep: str | None,
          resolution: int | None, **kw) -> None:
    """Write reference statistics (mean and covariance of features) of SOURCE, or of one shard of it."""
    from ..api import compute_layer_stats
    from ..extraction.ranks import is_main_process
    from ..stats.io import save_stats

    check_output_file(output, "-o", overwrite)
    where = None
    if shard is not None or bank is not None:
        from ..stats.shards import parse_shard

        where = parse_shard(shard) if shard is not None else (0, 1)  # a bad --shard fails before any work
    given, recorded = prepared_input(source, prep, resolution, kw.get("data_dir"), kw.get("protocol"))
    if where is not None:
        from ..shards import compute_partial_stats, merge_stats
        from ..stats.shards import save_partial

        xo = build_extract_options(kw)
        part = compute_partial_stats(given, where, xo, bank=bank, seed=seed)
        if recorded:
            part.source["prepared"] = recorded
        if not is_main_process():
            return
        if shard is None:  # --bank alone: one pass, saved as a statistics file with its bank
            merged = merge_stats([part], output, overwrite=overwrite)
            message = f"n={merged.stats.n}, d={merged.stats.dim}, bank of {(merged.meta or {})['bank']['rows']} rows"
        else:
            save_partial(output, part, overwrite=overwrite)
            message = (f"shard {part.shard}/{part.shards}, images {part.start}..{part.stop - 1} of "
                       f"{part.identity['source_n']}, d={part.stats.dim}"
                       + (f", bank of {len(part.bank_features)} rows" if part.bank_features is not None else ""))
        if not kw["quiet"]:
            click.echo(f"wrote {output}: {message}", err=True)
        return
    # as given: the API settles what was not; a second layer (sFID's spatial, --protocol adm) is kept beside pool3
    st, layers, meta = compute_layer_stats(given, **option_values(ExtractOptions, kw))
    if not is_main_process():  # under torchrun, rank 0 writes
        return
    layer_ids = {name: {k: v for k, v in meta.items() if k not in ("source", "n", "layer", "feature_dim")}
                 for name in layers}
    save_stats(output, st, {**meta, **recorded}, overwrite=overwrite, layers=layers, layer_identities=layer_ids)
    if not kw["quiet"]:
        extra = "".join(f", {name} d={ls.dim}" for name, ls in layers.items())
        click.echo(f"wrote {output}: n={st.n}, d={st.dim}{extra}", err=True)


@main.command()
@click.argument("parts", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Statistics file to write (.npz with mu, sigma, n, meta).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No messages on stderr.")
def merge(parts: tuple[str, ...], output: str, overwrite: bool, quiet: bool) -> None:
    """Merge partial statistics (PARTS, from `genbench stats --shard K/N`) into one statistics file, exactly.

    Refuses damaged or incomplete parts, overlapping or missing shards and shards made under different settings,
    naming the shard. The order of PARTS does not matter.
    """
    from ..shards import merge_stats

    check_output_file(output, "-o", overwrite)
    merged = merge_stats(list(parts), output, overwrite=overwrite)
    if not quiet:
        bank = (merged.meta or {}).get("bank")
        click.echo(f"wrote {output}: n={merged.stats.n}, d={merged.stats.dim} from {len(parts)} shards"
                   + (f", bank of {bank['rows']} rows" if bank else ""), err=True)


# ----------------------------------------------------------------------------- list


@main.command("list")
def list_plugins() -> None:
    """List extractors, preprocessing policies, metrics, protocols, dataset preparations and references."""
    from ..features import extractor_names
    from ..metrics.registry import METRICS  # complete on import (genbench.metrics imports every registration)
    from ..stats.reference import all_entries

    click.echo("extractors:    " + ", ".join(extractor_names()))
    try:
        from ..features.preprocess import PREPROCESSING

        aliases = ", ".join(f"{a} = {n}" for a, n in PREPROCESSING.aliases().items())
        click.echo("preprocessing: " + ", ".join(PREPROCESSING.names()) + (f" (aliases: {aliases})" if aliases else ""))
        from ..features.vit_preprocess import CLIP_PREPROCESSING, DINOV2_PREPROCESSING

        for label, registry in (("  dinov2-*:", DINOV2_PREPROCESSING), ("  clip-*:", CLIP_PREPROCESSING)):
            aliases = ", ".join(f"{a} = {n}" for a, n in registry.aliases().items())
            click.echo(f"{label:<15}" + ", ".join(registry.names()) + f" (aliases: {aliases})")
    except ImportError:
        pass
    click.echo("metrics:       " + ", ".join(METRICS.names()))
    from ..protocols import PROTOCOLS
    from ..sources.prep import PREPS

    click.echo("protocols:     " + ", ".join(PROTOCOLS.names()) + " (--protocol)")
    click.echo("preparations:  " + ", ".join(PREPS.names()) + " (--prep, with --resolution)")
    click.echo("references:    " + (", ".join(e.id for e in all_entries()) or "(none)"))


@main.command()
@config_options(DemoOptions, "reference", "samples")
@seed_option()
@config_option(ExtractOptions, "data_dir")
@click.option("--json", "json_out", default=None, metavar="PATH|-",
              help="Write the rows as JSON to PATH, or to stdout with '-' (instead of the table).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
@config_option(ExtractOptions, "progress", help="No messages on stderr (the table or JSON still prints).")
def demo(reference: str, samples: str, seed: int, data_dir: str | None, json_out: str | None, overwrite: bool,
         quiet: bool) -> None:
    """Offline demo: the Fashion-MNIST test split and blurred/noised copies against bundled statistics."""
    import time

    from ..util.atomic import write_text_atomic
    from .demo import format_rows, run_demo

    check_output_file(json_out, "--json", overwrite)
    started = time.perf_counter()
    if not quiet:
        click.echo(f"scoring {samples} and degraded copies against {reference} ...", err=True)
    rows = run_demo(reference, samples, seed=seed, data_dir=data_dir, progress=not quiet)
    show_result(format_rows(rows), json_out, quiet)
    if not quiet:
        click.echo(f"total {time.perf_counter() - started:.1f} s", err=True)
    if json_out:
        doc = json.dumps([{"name": r.name, "metrics": r.metrics, "seconds": r.seconds} for r in rows], indent=2)
        click.echo(doc) if json_out == "-" else write_text_atomic(json_out, doc + "\n")


from .baselines import baselines, leaderboard  # noqa: E402
from .ref import ref  # noqa: E402  (registers the `ref` group)

main.add_command(ref)
main.add_command(baselines)
main.add_command(leaderboard)

from .probe import probe  # noqa: E402  (memorization, sensitivity and mode probes)

main.add_command(probe)

from .cache import cache  # noqa: E402  (the feature cache: info, clear)

main.add_command(cache)

from .gate import check  # noqa: E402  (the CI quality gate)
from .results import report, results  # noqa: E402  (results history, HTML/Markdown reports)

main.add_command(check)
main.add_command(results)

from .sweep import sweep  # noqa: E402  (checkpoint sweeps against one reference)

main.add_command(sweep)

from .prepare import prepare  # noqa: E402  (a data set through a paper's preparation)

main.add_command(prepare)
main.add_command(report)


def run() -> None:  # pragma: no cover - thin wrapper for python -m genbench
    main(prog_name="genbench")


if __name__ == "__main__":  # pragma: no cover
    run()
