"""``genbench probe``: memorization, transform sensitivity, mode coverage and class-conditional probes.

Each verb prints a readable summary on stdout and, with ``--json PATH``, writes a JSON document
(``--json -``: the JSON on stdout instead, the summary on stderr); ``-q`` silences progress and
messages, never the result. Errors exit with code 2 (see :mod:`genbench.cli.app`).
"""
from __future__ import annotations

import json
import math

import click

from ..errors import ConfigError
from ..results.outputs import check_output_file, check_output_folder
from .options import build_extract_options, build_metric_options, extraction_options, metric_options, seed_option
from .results import show_result


def _memory_bytes(text: str) -> int:
    """``"256M"``, ``"1G"``, ``"1.5GiB"`` or a plain byte count -> bytes (ConfigError otherwise)."""
    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
             "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
    raw = text.strip().lower()
    number = raw.rstrip("abgikm")
    unit = raw[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or not math.isfinite(value) or value * units[unit] < 1:
        raise ConfigError(f"--max-memory {text!r}: expected a finite size of at least 1 byte such as 256M, 2G or 1000000")
    return int(value * units[unit])


def history_options(func):
    """``--history PATH`` and ``--name NAME``: also record the probe's report in a results history.

    The history is opened (and a bad path refused) before the probe runs; the command finds it in
    ``kw["history"]`` as (History or None, name).
    """
    import functools

    @click.option("--name", "run_name", default=None, help="Model/run name recorded with the report in the history.")
    @click.option("--history", "history_file", default=None, envvar="GENBENCH_HISTORY",
                  help="Also append the report to this SQLite results history (also $GENBENCH_HISTORY).")
    @functools.wraps(func)
    def wrapper(*args, history_file: str | None, run_name: str | None, **kw):
        from ..results.history import open_history

        kw["history"] = (open_history(history_file, required=False), run_name)
        return func(*args, **kw)

    return wrapper


def _emit(doc: dict, json_out: str | None, overwrite: bool, kw: dict | None = None) -> None:
    from ..util.atomic import write_text_atomic

    text = json.dumps(_finite(doc), indent=2, allow_nan=False, default=_json_default)
    if json_out == "-":
        click.echo(text)
    elif json_out:
        write_text_atomic(json_out, text + "\n")
    history, name = (kw or {}).get("history", (None, None))
    if history is not None:
        from ..results.history import probe_document

        record_id = history.add(probe_document(json.loads(text)), name=name, kind="probe")
        if not (kw or {}).get("quiet"):
            click.echo(f"recorded as #{record_id} in {history.path}", err=True)


def _finite(obj):
    """NaN and infinities -> None (JSON has no such numbers), recursively."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@click.group()
def probe() -> None:
    """Probes: memorization (copying the training set), transform sensitivity, mode coverage."""


# ----------------------------------------------------------------------------- memorization


@probe.command("memorization")
@click.argument("samples")
@click.option("--train", default="fashion-mnist:train", show_default=True,
              help="The generator's training set: images, data set NAME:SPLIT, or a feature file.")
@click.option("--test", default="fashion-mnist:test", show_default=True,
              help="Held-out real data of the same distribution (never trained on): images or a feature file.")
@click.option("--n-cells", type=int, default=50, show_default=True, help="k-means cells of C_T (fitted on --train).")
@seed_option(0, help="Seed of the k-means cells and of subsampling.")
@click.option("--max-samples", type=click.IntRange(min=1), default=None,
              help="Use at most this many generated and test samples (seeded subsample).")
@click.option("--max-train", type=click.IntRange(min=1), default=None,
              help="Use at most this many training samples (default: all; copies of dropped ones go unnoticed).")
@click.option("--gallery", default=None, help="Write a PNG of the most suspicious samples beside their nearest training images.")
@click.option("--gallery-count", type=click.IntRange(min=0), default=16, show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Rows per block of nearest-neighbour distances (default: as many as --max-memory allows).")
@click.option("--max-memory", default="256M", show_default=True, help="Memory budget of one distance block.")
@click.option("--json", "json_out", default=None, help="Write the report as JSON to PATH, or to stdout with '-'.")
@click.option("--overwrite", is_flag=True, help="Replace existing --json / --gallery files.")
@click.option("--fail-on-copying", is_flag=True, help="Exit with code 1 when the verdict is copying (for CI).")
@extraction_options
@history_options
def memorization(samples: str, train: str, test: str, n_cells: int, seed: int, max_samples: int | None,
                 max_train: int | None, gallery: str | None, gallery_count: int, chunk_size: int | None,
                 max_memory: str, json_out: str | None, overwrite: bool, fail_on_copying: bool, **kw) -> None:
    """Is SAMPLES copying its training set? C_T, memorized fraction, authenticity, train-test gap, verdict.

    Verdict "copying" when the memorized fraction exceeds the test split's by more than 0.01 or the
    train-test gap is below -0.10; "underfitting" when C_T > 3; else "no-evidence" (C_T < -3 and an
    authenticity drop > 0.10 are shown as signals). Extractor: --extractor; else what feature files
    were built with; else fmnist-cnn for Fashion-MNIST data; else inception-v3.
    """
    from ..probes.memorization import MemorizationOptions, run_memorization_probe

    check_output_file(json_out, "--json", overwrite)
    check_output_file(gallery, "--gallery", overwrite)
    quiet = kw["quiet"]
    xo = build_extract_options(kw)
    options = MemorizationOptions(seed=seed, n_cells=n_cells, max_samples=max_samples, max_train=max_train,
                                  chunk_size=chunk_size, max_memory_bytes=_memory_bytes(max_memory),
                                  gallery_count=gallery_count)
    report = run_memorization_probe(samples, train, test, options=options, extract_options=xo, gallery=gallery)
    show_result(report.format_text(), json_out, quiet)
    _emit(report.to_dict(), json_out, overwrite, kw)
    if fail_on_copying and report.verdict == "copying":
        click.get_current_context().exit(1)


# ----------------------------------------------------------------------------- sensitivity


@probe.command("sensitivity")
@click.option("--samples", default="fashion-mnist:test", show_default=True,
              help="Held-out real images to degrade (never the reference itself).")
@click.option("--ref", "reference", default="fashion-mnist:train", show_default=True,
              help="Reference: images, a feature file, or a statistics file (FD only).")
@click.option("--transforms", default="all", show_default=True,
              help="Comma-separated transform names, 'all', or 'none' (with --compare-preprocessing).")
@click.option("--strengths", multiple=True,
              help="Ladder for every transform (0,0.5,1) or for one (gaussian-blur=0,1,2); repeatable. "
                   "Default: each transform's own ladder.")
@click.option("--metrics", default="fd,kid", show_default=True,
              help="Comma-separated metrics. precision/recall/density/coverage recompute the reference's k-NN "
                   "radii at every point: use --max-reference with them.")
@click.option("--max-samples", type=click.IntRange(min=2), default=2000, show_default=True,
              help="Held-out images used (seeded subsample).")
@click.option("--max-reference", type=click.IntRange(min=2), default=None,
              help="Reference images used (seeded subsample; default all).")
@seed_option(0, help="Seed of subsampling, transforms and metrics.")
@click.option("--compare-preprocessing", default=None,
              help="Comma-separated resize policies to compare, e.g. tf1-bilinear,torch-bilinear,pil-bicubic.")
@metric_options("kid_subsets", "kid_subset_size", "bootstrap", show_default=True,
                help={"bootstrap": "Bootstrap replicates for seeded 95% intervals of FD and KID, drawn as error bars "
                                   "(0 = none)."})
@click.option("--out", "out_dir", default=None, help="Folder for sensitivity.csv and one PNG plot per metric.")
@click.option("--json", "json_out", default=None, help="Write the report as JSON to PATH, or to stdout with '-'.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
@extraction_options
@history_options
def sensitivity(samples: str, reference: str, transforms: str, strengths: tuple[str, ...], metrics: str,
                max_samples: int, max_reference: int | None, seed: int, compare_preprocessing: str | None,
                out_dir: str | None, json_out: str | None, overwrite: bool, **kw) -> None:
    """Degrade held-out images step by step; is each metric monotone in each transform's strength?"""
    from ..probes.sensitivity import SensitivityOptions, parse_strengths, run_sensitivity_probe

    check_output_file(json_out, "--json", overwrite)
    if out_dir:
        check_output_folder(out_dir, "--out", overwrite)
    quiet = kw["quiet"]
    xo = build_extract_options(kw)
    names = [t.strip() for t in transforms.split(",") if t.strip()]
    chosen = None if names == ["all"] else (() if names == ["none"] else tuple(names))
    wanted = tuple(m.strip() for m in metrics.split(",") if m.strip())
    if not wanted and chosen != ():
        raise ConfigError("--metrics is empty; give at least one metric name")
    from ..features.preprocess import PREPROCESSING

    policies = tuple(PREPROCESSING.canonical(p.strip()) for p in compare_preprocessing.split(",")
                     if p.strip()) if compare_preprocessing else ()  # clean-fid's names are recorded as ours
    options = SensitivityOptions(transforms=chosen, strengths=parse_strengths(strengths), metrics=wanted,
                                 max_samples=max_samples, max_reference=max_reference, seed=seed,
                                 compare_preprocessing=policies)
    mo = build_metric_options(kw, seed=seed, kid_subset_size=min(kw["kid_subset_size"], max_samples))
    report = run_sensitivity_probe(samples, reference, options, xo, mo)
    if out_dir:
        written = report.write_outputs(out_dir)
        if not quiet:
            click.echo("wrote " + ", ".join(str(p) for p in written), err=True)
    show_result(report.format_text(), json_out, quiet)
    _emit(report.to_dict(), json_out, overwrite, kw)


# ----------------------------------------------------------------------------- modes


@probe.command("modes")
@click.argument("samples")
@click.option("--ref", "reference", default=None,
              help="Real images scored the same way as a reference row (default: stacked-fashion-mnist:test, "
                   "or fashion-mnist:test with --channels 1); 'none' for no reference row.")
@click.option("--channels", type=click.Choice(["3", "1"]), default="3", show_default=True,
              help="3: Stacked Fashion-MNIST, each channel classified (1000 modes); 1: the 10 classes of gray images.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Count only samples whose every channel is classified with at least this softmax probability.")
@click.option("--max-samples", type=click.IntRange(min=1), default=None, help="Seeded subsample of SAMPLES and --ref.")
@seed_option(0)
@click.option("--json", "json_out", default=None, help="Write the report as JSON to PATH, or to stdout with '-'.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
@extraction_options
@history_options
def modes(samples: str, reference: str | None, channels: str, min_confidence: float, max_samples: int | None,
          seed: int, json_out: str | None, overwrite: bool, **kw) -> None:
    """How many modes does SAMPLES cover, and how far is its mode histogram from uniform (KL)?"""
    from ..probes.modes import run_modes_probe

    check_output_file(json_out, "--json", overwrite)
    quiet = kw["quiet"]
    xo = build_extract_options(kw)
    ref = "default" if reference is None else (None if reference.lower() == "none" else reference)
    report = run_modes_probe(samples, ref, channels=int(channels), min_confidence=min_confidence,
                             max_samples=max_samples, seed=seed, extract_options=xo)
    show_result(report.format_text(), json_out, quiet)
    _emit(report.to_dict(), json_out, overwrite, kw)


@probe.command("conditional")
@click.argument("samples")
@click.option("--labels", "labels_file", default=None,
              help="The intended class of each sample: a .npy int array (default: the labels stored with SAMPLES).")
@click.option("--ref", "reference", default="fashion-mnist:train", show_default=True,
              help="Labelled real images for the per-class Frechet distances.")
@click.option("--max-reference", type=click.IntRange(min=2), default=None, help="Seeded subsample of --ref.")
@seed_option(0)
@click.option("--json", "json_out", default=None, help="Write the report as JSON to PATH, or to stdout with '-'.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
@extraction_options
@history_options
def conditional(samples: str, labels_file: str | None, reference: str, max_reference: int | None, seed: int,
                json_out: str | None, overwrite: bool, **kw) -> None:
    """Class-conditional SAMPLES: classifier accuracy on the intended classes and per-class Frechet distance."""
    import numpy as np

    from ..errors import InputError
    from ..probes.modes import conditional_scores

    check_output_file(json_out, "--json", overwrite)
    quiet = kw["quiet"]
    xo = build_extract_options(kw)
    labels = None
    if labels_file:
        try:
            labels = np.load(labels_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"--labels {labels_file}: not a readable .npy array ({exc})") from None
    report = conditional_scores(samples, labels, reference, max_reference=max_reference, seed=seed, extract_options=xo)
    show_result(report.format_text(), json_out, quiet)
    _emit(report.to_dict(), json_out, overwrite, kw)
