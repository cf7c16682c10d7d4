"""Checkpoint sweeps: many generated inputs scored against one reference, resolved and extracted once.

    genbench sweep ckpt-*/samples.npz --ref cifar10:train --out sweep.jsonl
    genbench sweep --generator py:gen.py:sample runs/ckpt-*.pt --num-samples 10000 --ref stats.npz --out sweep.jsonl

Each entry is anything ``genbench score`` takes as GENERATED; with ``generator`` each entry is a checkpoint
path handed to that ``py:`` generator (``py:gen.py:sample@ENTRY``, see :mod:`genbench.sources.generator`).
The first entry to score prepares the run (:func:`genbench.evaluate.prepare_run`: extractor, options, plan,
reference); every other entry is :meth:`~genbench.evaluate.Run.with_generated` of it, so the reference is
extracted once.

One JSON line per entry is appended to the ``.jsonl`` file (:func:`append_line`: one ``write`` on a file opened
with ``O_APPEND``, under an exclusive ``flock``, then ``fsync``): ``checkpoint`` (the entry as given), ``step``
(the last number in its file name, :func:`parse_step`), ``metrics`` (values with ``ci95`` where ``bootstrap``
asks), ``n``, ``n_reference``, ``seconds``, ``timestamp``, ``settings`` (:func:`settings_key`), the bootstrap
replicates of the ranking Frechet distance (``replicates``), the provenance, and the results history record.
A rerun skips every entry already recorded under the same settings.

The summary (:func:`summarize`) ranks the entries by one metric (``rank_by``, default the first FD) in its
declared direction and gives the probability that the best beats the runner-up: the share of paired
bootstrap replicates (the generated features resampled, the reference fixed, seeded per entry) in which the
best entry's FD is the better one; each replicate is centred on the entry's FD as the intervals are.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import ExtractOptions, MetricOptions
from .errors import ConfigError, InputError

__all__ = ["SweepEntry", "SweepSummary", "parse_step", "read_entries", "settings_key", "append_line", "read_lines",
           "run_sweep", "summarize", "format_summary", "plot_sweep"]

#: extraction options that change the numbers of a sweep's entries (the rest: speed, messages, places)
_SETTINGS_FIELDS = ("extractor", "weights", "preprocessing", "precision", "num_samples", "generator_seed",
                    "generator_batch_size", "value_range", "weights_sha256")


@dataclass(frozen=True)
class SweepEntry:
    """One entry: ``key`` as the user gave it (the checkpoint), ``spec`` what is scored, ``step`` parsed from it."""

    key: str
    spec: str
    step: int | None


def parse_step(name: str) -> int | None:
    """The training step a checkpoint's name gives: the last run of digits in its file name (the folder's, when the
    file name has none), e.g. ``ckpt-001000.pt`` -> 1000, ``network-snapshot-000400/samples.npz`` -> 400."""
    path = Path(str(name).split("@")[-1])
    for part in (path.stem, path.name, path.parent.name):
        found = re.findall(r"\d+", part)
        if found:
            return int(found[-1])
    return None


def read_entries(entries: Sequence[str], list_file: str | None = None, generator: str | None = None) -> list[SweepEntry]:
    """The entries in order (positional ones, then the lines of ``list_file``; blank lines and ``#`` comments
    skipped; repeats dropped). ``generator`` (a ``py:`` spec) turns each entry into ``generator@entry``."""
    given = list(entries)
    if list_file is not None:
        path = Path(list_file)
        if not path.is_file():
            raise InputError(f"--list {list_file}: no such file")
        given += [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not given:
        raise ConfigError("sweep: no entries; give GENERATED inputs or --list FILE")
    if generator is not None and not generator.startswith("py:"):
        raise ConfigError(f"--generator {generator}: expected py:MODULE:FUNCTION or py:FILE.py:FUNCTION")
    if generator is not None and "@" in generator:
        raise ConfigError(f"--generator {generator}: give the function only; each entry is its checkpoint")
    out, seen = [], set()
    for key in given:
        if key in seen:
            continue
        seen.add(key)
        out.append(SweepEntry(key, f"{generator}@{key}" if generator else key, parse_step(key)))
    return out


def settings_key(reference: Any, metrics: Sequence[str] | None, xo: ExtractOptions, mo: MetricOptions,
                 generator: str | None = None) -> str:
    """sha256 (16 hex digits) naming what the numbers of a sweep depend on besides the entry: the reference as
    given, the metrics and every metric option, the extraction options that change numbers, the generator."""
    doc = {"reference": str(reference), "metrics": list(metrics) if metrics else None, "metric_options": mo.to_dict(),
           "extract": {k: getattr(xo, k) for k in _SETTINGS_FIELDS}, "generator": generator}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- the .jsonl file


def append_line(path: str | os.PathLike, doc: dict) -> None:
    """Append ``doc`` as one JSON line: one ``write`` of the whole line on an ``O_APPEND`` descriptor, under an
    exclusive ``flock`` (so concurrent sweeps on one file interleave whole lines only), then ``fsync``."""
    line = (json.dumps(doc, sort_keys=False, allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            written = os.write(fd, line)
            if written != len(line):  # pragma: no cover - a full disk mid-line
                raise OSError(f"{path}: wrote {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_lines(path: str | os.PathLike) -> list[dict]:
    """Every whole JSON line of a sweep file (none when it does not exist); a line that does not parse (a write
    cut short by a full disk) is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            warnings.warn(f"{path}: line {number} is not JSON (an interrupted write?); ignored", RuntimeWarning,
                          stacklevel=2)
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


# ----------------------------------------------------------------------------- running


def _fd_names(metrics: dict) -> list[str]:
    from .metrics.registry import metric_kind

    return [name for name in metrics if metric_kind(name) == "fd"]


def _entry_seed(seed: int, key: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(key.encode())) % 2**32


def run_sweep(
    entries: Sequence[SweepEntry],
    reference: Any,
    out: str | os.PathLike,
    *,
    metrics: Sequence[str] | None = None,
    extract_options: ExtractOptions | None = None,
    metric_options: MetricOptions | None = None,
    generator: str | None = None,
    name: str | None = None,
    history: Any = None,
    project_dir: str | None = None,
    on_entry: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Score every entry not yet in ``out`` (under the same :func:`settings_key`), appending one line each; return
    every line of this sweep's settings, in the entries' order. ``history`` (a :class:`~genbench.results.history.
    History`) also records each result (kind ``sweep``); ``on_entry(line)`` is called after each line is written
    (the loggers of :mod:`genbench.integrations`). Nothing is opened or extracted when every entry is done.
    """
    from .evaluate import prepare_run
    from .metrics.bootstrap import bootstrap_frechet_values
    from .results.history import stamp_result, utc_now

    xo = extract_options or ExtractOptions(progress=False)
    mo = metric_options or MetricOptions()
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; expected a .jsonl file")
    key = settings_key(reference, metrics, xo, mo, generator)
    done = {line.get("checkpoint") for line in read_lines(out) if line.get("settings") == key}
    todo = [e for e in entries if e.key not in done]
    run = None
    for entry in todo:
        started = time.perf_counter()
        if run is None:
            run = prepare_run({"reference": reference, "generated": entry.spec}, xo, mo, metrics,
                              specs=[reference, entry.spec])
            current = run
        else:
            current = run.with_generated(entry.spec)
        result = current.score()
        if not result.metrics:  # under torchrun, ranks other than 0
            continue
        gen, ref = current.evaluated("generated"), current.evaluated("reference")
        replicates = None
        fds = _fd_names(result.metrics)
        if fds and mo.bootstrap and gen.features is not None:
            point, values = bootstrap_frechet_values(gen.features, ref.stats, mo.bootstrap, _entry_seed(mo.seed, entry.key))
            centred = point + values - float(np.median(values))
            replicates = {"metric": fds[0], "values": [float(v) for v in centred]}
        stamp_result(result, f"{name}@{entry.key}" if name else entry.key, project_dir)
        record_id = history.add(result, kind="sweep") if history is not None else None
        line = {"checkpoint": entry.key, "step": entry.step, "metrics": result.metrics, "n": gen.n,
                "n_reference": ref.n, "seconds": round(time.perf_counter() - started, 3), "timestamp": utc_now(),
                "settings": key, "sweep": name, "replicates": replicates, "history_id": record_id,
                "provenance": result.provenance}
        append_line(out, line)
        if on_entry is not None:
            on_entry(line)
    wanted = {e.key for e in entries}
    latest: dict[str, dict] = {}
    for line in read_lines(out):
        if line.get("settings") == key and line.get("checkpoint") in wanted:
            latest[line["checkpoint"]] = line
    return [latest[e.key] for e in entries if e.key in latest]


# ----------------------------------------------------------------------------- summary


@dataclass
class SweepSummary:
    """The ranking: ``best`` and ``runner_up`` lines, ``metric`` and its ``direction``, ``p_best_beats_runner_up``
    (None without replicates of both), the number of replicates it rests on."""

    lines: list[dict]
    metric: str | None
    direction: str | None
    best: dict | None = None
    runner_up: dict | None = None
    p_best_beats_runner_up: float | None = None
    replicates: int = 0
    notes: list[str] = field(default_factory=list)


def _headline(entry: dict | None) -> float | None:
    if not isinstance(entry, dict):
        return None
    from .metrics.values import headline

    try:
        return float(headline(entry))
    except (KeyError, TypeError, ValueError):
        return None


def summarize(lines: list[dict], rank_by: str | None = None) -> SweepSummary:
    """Rank ``lines`` by ``rank_by`` (default: the first Frechet distance of the first line) in its declared
    direction; the probability that the best beats the runner-up from their paired bootstrap replicates."""
    from .metrics.registry import direction

    if not lines:
        return SweepSummary(lines, None, None)
    names = list(lines[0]["metrics"])
    metric = rank_by or next(iter(_fd_names(lines[0]["metrics"])), names[0] if names else None)
    if metric is None or metric not in names:
        raise ConfigError(f"--rank-by {rank_by}: not a metric of this sweep; its metrics are {', '.join(names)}")
    better = direction(metric) or "lower"
    scored = [(v, line) for line in lines if (v := _headline(line["metrics"].get(metric))) is not None]
    scored.sort(key=lambda t: t[0] if better == "lower" else -t[0])
    summary = SweepSummary(lines, metric, better)
    if not scored:
        return summary
    summary.best = scored[0][1]
    if len(scored) < 2:
        return summary
    summary.runner_up = scored[1][1]
    a, b = (line.get("replicates") or {} for line in (summary.best, summary.runner_up))
    if a.get("metric") == metric and b.get("metric") == metric and a.get("values") and b.get("values"):
        va, vb = np.asarray(a["values"]), np.asarray(b["values"])
        k = min(len(va), len(vb))
        wins = va[:k] < vb[:k] if better == "lower" else va[:k] > vb[:k]
        summary.p_best_beats_runner_up = float(wins.mean())
        summary.replicates = k
    else:
        summary.notes.append(f"no bootstrap replicates of {metric} for both (pass --bootstrap N; replicates are kept "
                             "for Frechet distances only)")
    return summary


def _cell(entry: dict | None) -> str:
    value = _headline(entry)
    if value is None:
        return "-"
    text = f"{value:.5g}"
    ci = (entry or {}).get("ci95")
    if ci:
        text += f" [{ci[0]:.5g}, {ci[1]:.5g}]"
    return text


def format_summary(summary: SweepSummary) -> str:
    """The table (one row per entry, by step, the best marked ``*``) and the verdict, as plain text."""
    lines = sorted(summary.lines, key=lambda line: (line.get("step") is None, line.get("step") or 0))
    if not lines:
        return "no entries"
    metrics = list(lines[0]["metrics"])
    header = ["", "step", "checkpoint", *metrics, "n", "seconds"]
    rows = [["*" if line is summary.best else "", "-" if line.get("step") is None else str(line["step"]),
             str(line["checkpoint"]), *(_cell(line["metrics"].get(m)) for m in metrics), str(line.get("n")),
             f"{line.get('seconds', 0):.1f}"] for line in lines]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    if summary.best is not None:
        verdict = (f"best by {summary.metric} ({summary.direction} is better): {summary.best['checkpoint']} "
                   f"({_cell(summary.best['metrics'][summary.metric])})")
        if summary.runner_up is not None:
            verdict += f"; runner-up {summary.runner_up['checkpoint']}"
            if summary.p_best_beats_runner_up is not None:
                verdict += (f"; P(best beats runner-up) = {summary.p_best_beats_runner_up:.3f} over "
                            f"{summary.replicates} bootstrap replicates")
        text += ["", verdict, *summary.notes]
    return "\n".join(text)


def plot_sweep(summary: SweepSummary, prefix: str | os.PathLike) -> list[Path]:
    """One PNG per metric, ``PREFIX.<metric>.png``: the metric against the step (the entry's index where a name
    has no step), with 95% intervals where recorded."""
    from .results.plots import line_plot

    lines = sorted(summary.lines, key=lambda line: (line.get("step") is None, line.get("step") or 0))
    if not lines:
        return []
    use_steps = all(line.get("step") is not None for line in lines)
    xs = [float(line["step"]) if use_steps else float(i) for i, line in enumerate(lines)]
    written = []
    for metric in lines[0]["metrics"]:
        points, errors = [], []
        for x, line in zip(xs, lines):
            entry = line["metrics"].get(metric)
            value = _headline(entry)
            points.append((x, float("nan") if value is None else value))
            ci = (entry or {}).get("ci95")
            errors.append(None if not ci else (float(ci[0]), float(ci[1])))
        path = Path(f"{prefix}.{metric}.png")
        best = summary.best["checkpoint"] if summary.best is not None and metric == summary.metric else None
        line_plot({metric: points}, path, title=f"{metric} against the step" + (f" (best: {best})" if best else ""),
                  xlabel="step" if use_steps else "entry", ylabel=metric, errors={metric: errors},
                  xtick_labels=None if use_steps else {x: Path(str(line['checkpoint'])).name for x, line in zip(xs, lines)})
        written.append(path)
    return written
