"""A leaderboard: rows of generated images, each scored under one or more metric plans, rendered as tables.

A *board* (:class:`Board`) says what is specific to one data set: its main metric plan, how its reference
set is built, its columns and its ranking metric. The Fashion-MNIST board of the bundled baselines is
:data:`genbench.baselines.board.BOARD`; this module scores and renders any board's rows:
``score_rows`` extracts each row once per plan and scores it through the metric registry, ``render``
writes leaderboard.md, leaderboard.csv, index.html and results.json. Rows come from the board's own
builders or from the user (``--add NAME=SPEC``, :func:`added_row_spec`); a row whose images repeat
(``ImageSource.repeats``) is refused, and with ``bootstrap`` replicates every FD and KID of the main
plan carries its seeded 95% interval.
"""
from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import BoardOptions, ExtractOptions, MetricOptions
from .errors import ConfigError, InputError, WeightsError
from .evaluate import Evaluated, Pending, build_run_extractor, prepare_run, repeats_message
from .metrics.kid import spread_subset_size
from .metrics.values import headline
from .results.pictures import image_grid, save_png
from .sources.arrays import ArraySource
from .sources.base import ImageSource, check_uint8_batch
from .sources.resolve import open_source
from .sources.subset import SubsetSource
from .util.atomic import write_text_atomic
from .version import __version__

if TYPE_CHECKING:
    from .sources.models import ImageGenerator


@dataclass
class Row:
    """One leaderboard line."""

    name: str
    kind: str  # "baseline" or "reference"
    metrics: dict[str, dict]
    extra: dict = field(default_factory=dict)
    n: int = 0
    seconds: float = 0.0
    provenance: dict = field(default_factory=dict)  # the main plan's run (genbench.evaluate.Run.provenance)


@dataclass(frozen=True)
class RowSpec:
    name: str
    kind: str
    make: Callable[[int, int], ImageSource]  # (n, seed) -> source
    target_class: int | None = None  # score against this class of ``target_split`` only
    extra: dict = field(default_factory=dict)
    #: (n, seed) -> None: cheap checks (image count, a first small sample) run before any row is scored.
    preflight: Callable[[int, int], None] | None = None
    n: int | None = None  # this row's sample count when fixed by the model (CycleGAN: its held-out sources)
    target_split: str | None = None  # with target_class: the split whose class is the reference


# ----------------------------------------------------------------------------- rows


# ----------------------------------------------------------------------------- the user's own rows


def added_row_spec(entry: str, data_dir: str | None = None, board: Board | None = None) -> RowSpec:
    """``NAME=SPEC`` (CLI ``--add``) as a leaderboard row of kind ``added``.

    SPEC is a checkpoint (``*.pt``) that ``board.load_generator`` reads, a Python callable ``py:MODULE:FUNCTION``
    or ``py:FILE.py:FUNCTION`` called as ``fn(n, seed)`` and returning uint8 images
    ([n, H, W], [n, H, W, C] or [n, C, H, W]) or an ImageSource, or anything ``genbench score``
    accepts (a folder, an archive, a ``.npz``/``.npy``, ``NAME:SPLIT``). Sources with more than
    ``n`` images contribute a seeded subset of ``n``; fewer is an InputError.
    """
    name, sep, spec = entry.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ConfigError(f"--add {entry!r}: expected NAME=SPEC, e.g. mymodel=samples/ or mymodel=ckpt.pt")
    preflight: Callable[[int, int], None] | None = None
    if spec.startswith("py:"):
        make = _callable_maker(spec, name)

        def preflight(n: int, seed: int) -> None:  # a first small call checks dtype, range and shape
            try:
                small = make(min(n, 2), seed)
                batch = small.read_batch(0, len(small))
            except InputError as exc:
                message = str(exc) if str(exc).startswith(f"--add {name}") else f"--add {name}: {exc}"
                raise InputError(message) from None
            for image in batch:
                check_uint8_batch(np.asarray(image)[None], f"--add {name} ({spec}), a first call with n={len(small)}")
    elif spec.lower().endswith(".pt"):
        if board is None or board.load_generator is None:
            raise ConfigError(f"--add {name}={spec}: this board reads no checkpoints; pass the model's samples "
                              "(a folder, an archive, a .npz) or py:MODULE:FUNCTION")
        if not Path(spec).is_file():
            raise InputError(f"--add {name}: checkpoint {spec} does not exist")
        from .sources.models import GeneratorSource

        model = board.load_generator(spec)
        def make(n: int, seed: int) -> ImageSource:
            return GeneratorSource(model, n, seed=seed)
    else:
        source = open_source(spec, data_dir=data_dir)
        def make(n: int, seed: int) -> ImageSource:
            return _take(source, n, seed, f"--add {name} ({spec})")

        def preflight(n: int, seed: int) -> None:
            if len(source) < n:
                raise InputError(f"--add {name}: {spec} has {len(source)} images, fewer than -n {n}; "
                                 f"pass -n {len(source)} or add images")
            repeated = repeats_message(source)
            if repeated:
                raise InputError(f"--add {name}: {repeated}")
    return RowSpec(name, "added", make, extra={"source": spec}, preflight=preflight)


def _take(source: ImageSource, n: int, seed: int, what: str) -> ImageSource:
    if len(source) == n:
        return source
    return SubsetSource.seeded(source, n, seed, what)


def _callable_maker(spec: str, name: str) -> Callable[[int, int], ImageSource]:
    from .sources.generator import CallableSource, GeneratorOptions, is_streamed, load_callable

    if not spec[3:].rpartition(":")[0] or not spec[3:].rpartition(":")[2]:
        raise ConfigError(f"--add {name}={spec}: expected py:MODULE:FUNCTION or py:FILE.py:FUNCTION")
    fn, identity = load_callable(spec, f"--add {name}")  # the one loader of py: specs (genbench.sources.generator)
    if is_streamed(fn) or "@" in spec:  # fn(n, seed, start) or a checkpoint: streamed as every verb streams it
        def make_streamed(n: int, seed: int) -> ImageSource:
            return CallableSource(spec, GeneratorOptions(n, seed), f"--add {name}")

        return make_streamed

    def make(n: int, seed: int) -> ImageSource:
        try:
            made = fn(n, seed)
        except Exception as exc:  # noqa: BLE001  the user's code: report it as theirs, with the option
            raise InputError(f"--add {name}: {spec} raised {type(exc).__name__}: {exc} when called as "
                             f"{identity.function}(n={n}, seed={seed})") from exc
        source = made if isinstance(made, ImageSource) else ArraySource(made, name=f"{spec}(n={n}, seed={seed})")
        if len(source) != n:
            raise InputError(f"--add {name}: {spec} returned {len(source)} images for n={n}")
        return source

    return make


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class MetricPlan:
    """An extractor and the metric kinds computed with it on every row."""

    extractor: str
    kinds: tuple[str, ...]
    weights: str | None = None
    allow_unverified: bool = False


@dataclass(frozen=True)
class Board:
    """What one data set's leaderboard needs besides its rows."""

    title: str
    plan: MetricPlan  # the main plan: ranked on, and the only one with bootstrap intervals
    #: (extractor, options, seed, data_dir, target, reference_n) -> the reference features (target: (split, class)
    #: for a row scored against one class, else None: the board's reference set)
    reference: Callable[..., Evaluated]
    reference_name: Callable[[tuple[str, int] | None], str]
    columns: tuple[str, ...]  # table columns, in order
    with_std: tuple[str, ...]  # columns whose std also goes into the CSV
    rank_by: str  # the metric that orders ranked rows
    notes: Callable[[dict], list[str]]  # provenance -> the lines under the markdown title
    reference_n: int  # default size of the reference subset
    #: checkpoint path -> a model to sample (``--add NAME=FILE.pt``); None: the board reads no checkpoints
    load_generator: Callable[[str], ImageGenerator] | None = None


INCEPTION_KINDS = ("fd", "is")


def inception_plan(mode: str, weights: str | None = None, allow_unverified: bool = False) -> MetricPlan | None:
    """FID and IS with Inception-v3, or None.

    ``mode``: ``off``; ``on`` (weights required: ``weights``, ``$GENBENCH_INCEPTION_WEIGHTS``, the
    cache, or a download); ``auto`` (on when a file is at hand without downloading, else off).
    """
    if mode == "off":
        return None
    if mode == "auto" and weights is None:
        from .features.inception import INCEPTION_V3_WEIGHTS
        from .features.weights import resolve_weights

        try:
            resolve_weights(INCEPTION_V3_WEIGHTS, allow_unverified=allow_unverified, allow_download=False)
        except WeightsError:
            return None
    return MetricPlan("inception-v3", INCEPTION_KINDS, weights, allow_unverified)


def score_rows(specs: list[RowSpec], n: int, seed: int, data_dir: str | None = None,
               batch_size: int = BoardOptions.batch_size,
               progress: bool = False, log: Callable[[str], None] = lambda s: None,
               plans: list[MetricPlan] | None = None, reference_n: int | None = None,
               bootstrap: int = 0, *, board: Board) -> tuple[list[Row], dict]:
    """Extract and score every row of ``board`` under every plan (default: the board's main plan only).

    ``n``: samples per row (a row whose model fixes its count, ``RowSpec.n``, keeps its own);
    ``reference_n``: size of the seeded training subset whose features serve KID, precision/recall/
    density/coverage, and FD where no bundled statistics match the extractor; ``bootstrap``: replicates
    for the seeded 95% intervals of FD and KID (0: none). A row whose images repeat is an InputError.

    Returns the rows and the sample images kept for pictures.
    """
    reference_n = board.reference_n if reference_n is None else reference_n
    plans = plans or [board.plan]
    options = [ExtractOptions(extractor=p.extractor, weights=p.weights, allow_unverified_weights=p.allow_unverified,
                              batch_size=batch_size, data_dir=data_dir, progress=progress) for p in plans]
    # One network per plan, built by the run rule (genbench.evaluate) and owned by this board run: every row's
    # prepared run is handed it, so the network is loaded once and never shared with another caller.
    extractors = [build_run_extractor(p.extractor, xo) for p, xo in zip(plans, options)]
    references: list[dict[tuple[str, int] | None, Evaluated]] = [{} for _ in plans]
    rows, samples = [], {}
    for spec in specs:
        started = time.perf_counter()
        source = spec.make(spec.n or n, seed)
        repeated = repeats_message(source)
        if repeated:
            raise InputError(f"leaderboard row {spec.name!r}: {repeated}")
        target: tuple[str, int] | None = None
        if spec.target_class is not None:
            if spec.target_split is None:
                raise ConfigError(f"leaderboard row {spec.name!r}: a target class needs its split (RowSpec.target_split)")
            target = (spec.target_split, spec.target_class)
        metrics: dict[str, dict] = {}
        row_provenance: dict = {}
        for plan, extractor, xo, refs in zip(plans, extractors, options, references):
            if target not in refs:
                refs[target] = board.reference(extractor, xo, seed, data_dir, target, reference_n)
            ref = refs[target]
            assert ref.features is not None  # a board's reference keeps its features (KID, precision/recall)
            # Intervals on the fmnist-cnn metrics (d=128, cheap); at Inception's d=2048 each bootstrap replicate
            # costs a matrix square root, so the optional fid/is columns go without.
            replicates = bootstrap if plan.extractor == board.plan.extractor else 0
            kid_size = spread_subset_size(len(source), ref.features.shape[0], MetricOptions().kid_subset_size)
            mo = MetricOptions(seed=seed, kid_subset_size=kid_size, bootstrap=replicates)
            run = prepare_run({"reference": ref, "generated": Pending("generated", source)}, xo, mo, list(plan.kinds),
                              extractor=extractor)
            gen = run.evaluated("generated")
            metrics.update(run.compute())
            if plan is plans[0]:
                row_provenance = run.provenance({"generated": gen, "reference": ref})
        extra = dict(spec.extra)
        if target is not None:
            extra["scored_against"] = f"{target[0]} class {target[1]} ({refs[target].n} images)"
        rows.append(Row(spec.name, spec.kind, metrics, extra, gen.n, time.perf_counter() - started, row_provenance))
        samples[spec.name] = source.read_batch(0, min(64, len(source)))
        shown = "  ".join(f"{k}={headline(metrics[k]):.3f}" for k in (board.rank_by, "fid") if k in metrics)
        log(f"{spec.name:<36} {shown}  ({rows[-1].seconds:.1f} s)")
    provenance = {
        "genbench_version": __version__, "extractor": extractors[0].identity().to_dict(),
        "extractors": [e.identity().to_dict() for e in extractors], "n": n, "seed": seed, "reference_n": reference_n,
        "references": {f"{p.extractor}/{board.reference_name(k)}": v.info for p, refs in zip(plans, references)
                       for k, v in refs.items()},
    }
    return rows, {"samples": samples, "provenance": provenance}


# ----------------------------------------------------------------------------- rendering


def table_rows(rows: list[Row], board: Board, n: int | None = None) -> list[dict]:
    """Flat dicts for the CSV: baselines and added models ranked by the board's metric among the rows of one n
    (``n``, the board's, where such rows exist: FD is biased by n), then those of another n (rank empty), then the
    reference rows; the order and the ranks of the pages (:func:`~genbench.results.pages.leaderboard_page.ordered_rows`)."""
    from .results.pages.leaderboard_page import ordered_rows

    columns, with_std = board.columns, board.with_std
    by_name = {r.name: r for r in rows}
    shown = ordered_rows([{"name": r.name, "kind": r.kind, "n": r.n, "metrics": r.metrics} for r in rows],
                         board.rank_by, n)
    out = []
    for s in shown:
        r = by_name[s.name]
        flat: dict[str, Any] = {"rank": s.rank if s.rank is not None else "", "model": r.name, "kind": r.kind,
                                "n": r.n}
        flat.update({c: headline(r.metrics[c]) for c in columns if c in r.metrics})
        flat.update({f"{c}_std": r.metrics[c]["std"] for c in with_std if c in r.metrics})
        for c in columns:  # seeded bootstrap 95% intervals, where the row was scored with them
            if c in r.metrics and "ci95" in r.metrics[c]:
                flat[f"{c}_ci95_lo"], flat[f"{c}_ci95_hi"] = (float(v) for v in r.metrics[c]["ci95"])
        flat["notes"] = ", ".join(f"{k}={v}" for k, v in r.extra.items())
        flat["seconds"] = round(r.seconds, 1)
        out.append(flat)
    return out


def to_markdown(rows: list[dict], provenance: dict, command: str, board: Board) -> str:
    """leaderboard.md from the rows of results.json: the ranked table (see :mod:`genbench.results.pages.leaderboard_page`)."""
    from .results.pages.leaderboard_page import markdown_table

    lines = [f"# {board.title}", "", *board.notes(provenance)]
    lines += ["", f"Reproduce: `{command}`", "", *markdown_table(rows, provenance.get("n")), "",
              "↓ lower is better, ↑ higher is better; [lo, hi]: seeded 95% bootstrap interval; ± std over IS splits."]
    return "\n".join(lines) + "\n"


def to_csv(flat: list[dict]) -> str:
    buffer = io.StringIO()
    fieldnames = list(dict.fromkeys(key for f in flat for key in f))
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def to_html(rows: list[dict], pictures: dict[str, Path], provenance: dict, command: str, board: Board) -> str:
    """index.html from the rows of results.json (see :mod:`genbench.results.pages.leaderboard_page`)."""
    from .results.pages.leaderboard_page import render_page

    return render_page(rows, provenance, pictures, command, board.title, board.notes(provenance))


def render(rows: list[Row], artifacts: dict, out_dir: Path, command: str, extra_pictures: dict[str, Path],
           board: Board) -> dict[str, Path]:
    """Write leaderboard.md, leaderboard.csv, index.html, results.json and a grid PNG per row into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures: dict[str, Path] = {}
    for name, images in artifacts["samples"].items():
        slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        pictures[f"samples: {name}"] = save_png(image_grid(images, columns=8, scale=2), out_dir / f"grid-{slug}.png")
    pictures.update(extra_pictures)
    provenance = artifacts["provenance"]
    flat = table_rows(rows, board, provenance.get("n"))
    doc: dict[str, Any] = {"rows": [{"name": r.name, "kind": r.kind, "n": r.n, "metrics": r.metrics, "extra": r.extra,
                     "seconds": r.seconds} for r in rows],
           "provenance": {**provenance, "command": command},
           "title": board.title, "notes": board.notes(provenance),
           "artifacts": {k: str(v.relative_to(out_dir)) for k, v in pictures.items()}}
    write_text_atomic(out_dir / "leaderboard.md", to_markdown(doc["rows"], provenance, command, board))
    write_text_atomic(out_dir / "leaderboard.csv", to_csv(flat))
    write_text_atomic(out_dir / "index.html", to_html(doc["rows"], pictures, doc["provenance"], command, board))
    write_text_atomic(out_dir / "results.json", json.dumps(doc, indent=2) + "\n")
    return pictures


def row_documents(rows: list[Row], provenance: dict, command: str) -> list[dict]:
    """One result document per row (for a results history): its metrics and the provenance its prepared run built
    (:meth:`genbench.evaluate.Run.provenance`), plus the board's keys."""
    board_keys = {k: provenance[k] for k in ("n", "seed", "reference_n", "references", "extractors") if k in provenance}
    return [{"metrics": r.metrics,
             "provenance": {**r.provenance, **board_keys, "name": r.name, "row_kind": r.kind, "extra": r.extra,
                            "command": command}}
            for r in rows]
