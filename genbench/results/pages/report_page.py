"""The report page of one result document, whatever genbench verb wrote it.

Kinds (:func:`document_kind`), and what their page shows beyond the provenance at the bottom:

- ``score`` (``genbench score --json``, ``results show``, ``check --save-result``): the metrics with their
  direction, spread and 95% interval; the intervals as a plot, with the bundled leaderboard's rows on each
  metric's axis when the result is in their space (same extractor, weights and preprocessing; FD and KID
  also against the same reference); a sample grid when the generated images can be opened; the 1/N fits
  of ``*_infinity`` metrics; the pictures listed in ``artifacts``; with ``score --gallery``, the per-sample
  gallery (:mod:`genbench.results.pages.gallery`).
- ``memorization``, ``sensitivity``, ``modes``, ``conditional`` (``genbench probe ... --json``; also as
  kept in a results history, ``{"kind": "probe", "report": ...}``): the verdict and statistics with the
  gallery of suspicious samples; the sensitivity curves against each transform's strength; mode
  coverage; per-class scores with a chart.
- ``leaderboard`` (``results.json`` of ``genbench leaderboard``): the leaderboard page itself.
- ``demo`` (``genbench demo --json``): its rows as a table and a chart.
- ``check`` (``genbench check --json``): the verdicts, and old against new values with their intervals.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from ..plots import Strip, render_hbar_chart, render_interval_strips
from . import html as h
from .metrics import arrow, arrow_title, axis_label, direction, fmt, fmt_interval, fmt_spread, headline, interval

PROBE_KINDS = ("memorization", "sensitivity", "modes", "conditional")
#: Where the bundled leaderboard's rows are, in a source checkout (not installed with the package).
BUNDLED_BOARD = Path(__file__).resolve().parents[3] / "reports" / "fashion-mnist" / "results.json"


def document_kind(doc: object) -> str | None:
    """``score``, a probe name, ``leaderboard``, ``demo``, ``check``, or None for anything else."""
    if isinstance(doc, list):
        ok = bool(doc) and all(isinstance(r, dict) and isinstance(r.get("metrics"), dict) and "name" in r for r in doc)
        return "demo" if ok else None
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "probe" and isinstance(doc.get("report"), dict):
        return document_kind(doc["report"])
    if doc.get("probe") in PROBE_KINDS:
        return str(doc["probe"])
    if isinstance(doc.get("rows"), list) and isinstance(doc.get("provenance"), dict):
        return "leaderboard"
    if isinstance(doc.get("verdicts"), list) and "passed" in doc:
        return "check"
    if isinstance(doc.get("metrics"), dict):
        return "score"
    return None


def unwrap(doc):
    """A probe kept in a results history is shown as the probe report it holds."""
    if isinstance(doc, dict) and doc.get("kind") == "probe" and isinstance(doc.get("report"), dict):
        return doc["report"]
    return doc


# ----------------------------------------------------------------------------- shared pieces


def _facts(prov: Mapping) -> list[tuple[str, object]]:
    inputs = prov.get("inputs") or {}
    facts: list[tuple[str, object]] = [("name", prov.get("name")), ("created", prov.get("created_at")),
                                       ("git commit", prov.get("git_commit"))]
    if prov.get("extractor"):
        facts.append(("extractor", f"{prov.get('extractor')} / {prov.get('layer')} ({prov.get('preprocessing')})"))
        facts.append(("weights sha256", prov.get("weights_sha256")))
    for role, entry in inputs.items():
        if isinstance(entry, Mapping):
            where = entry.get("reference_id") or entry.get("location") or entry.get("kind")
            facts.append((f"input: {role}", f"{where} (n = {entry.get('n')})"))
    facts += [("seed", prov.get("seed")), ("device", prov.get("device")), ("precision", prov.get("precision")),
              ("wall time (s)", prov.get("wall_time_s")), ("genbench", prov.get("genbench_version")),
              ("command", prov.get("command"))]
    return facts


def _raw(value) -> str:
    """Any JSON value as nested tables (keys verbatim), for the full provenance."""
    import json

    if isinstance(value, Mapping):
        rows = "".join(f"<tr><td><code>{h.esc(k)}</code></td><td>{_raw(v)}</td></tr>" for k, v in value.items())
        return f"<table class=raw>{rows}</table>" if rows else "<em>{}</em>"
    if isinstance(value, list):
        return "<code>" + h.esc(json.dumps(value)) + "</code>"
    return "<em>null</em>" if value is None else "<code>" + h.esc(value) + "</code>"


def _provenance(prov: Mapping) -> str:
    """Key facts, then every provenance field verbatim (folded)."""
    return ("<h2>Provenance</h2>" + h.definition_list(_facts(prov))
            + f"<details><summary>all provenance fields</summary>{_raw(prov)}</details>")


def _unverified(prov: Mapping) -> str:
    if prov.get("weights_verified") is False:
        return ("<p class=verdict style='background:#fde7e4'>Unverified weights: the extractor's sha256 "
                f"{h.esc(prov.get('weights_sha256'))} is not the published one; these numbers are not comparable "
                "with published ones.</p>")
    return ""


def _resolve(base_dir: Path, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else base_dir / path


def _picture(base_dir: Path, rel: object, alt: str, caption: str, cls: str = "samples") -> str:
    """A picture file embedded as a figure, or a note when it cannot be read."""
    from ...errors import InputError
    from .artifacts import read_png

    if not isinstance(rel, str) or not rel:
        return ""
    path = _resolve(base_dir, rel)
    if not path.is_file() and Path(rel).is_file():  # a path as given on the command line, from here
        path = Path(rel)
    try:
        data, (w, hgt) = read_png(path, alt)
    except InputError as exc:
        return f"<p class=note>{h.esc(exc)}</p>"
    return h.figure(data, alt, h.esc(caption), cls=cls, width=w, height=hgt)


def sample_grid(location: object, limit: int = 64) -> bytes | None:
    """A PNG grid of the first images of ``location`` (a folder, array file or data set) when it opens, else None."""
    from ...errors import GenbenchError
    from ...sources.resolve import is_feature_file, open_source
    from ..pictures import image_grid

    if not isinstance(location, str) or not location:
        return None
    path = Path(location)
    try:
        if path.is_file() and is_feature_file(path):
            return None
        source = open_source(location)
        count = min(limit, len(source))
        if count == 0:
            return None
        batch = source.read_batch(0, count)
    except (GenbenchError, OSError, ValueError):
        return None
    if isinstance(batch, list):  # images of several sizes: those of the first one's size
        batch = [im for im in batch if im.shape == batch[0].shape]
    import numpy as np

    images = np.asarray(batch, dtype=np.uint8)
    side = images.shape[-1]
    scale = max(1, min(3, 64 // max(side, 1)))
    return h.png_bytes(image_grid(images[: 16 if side > 128 else count], columns=8, scale=scale))


# ----------------------------------------------------------------------------- score


def _six(x) -> str:
    """A number as the terminal table prints it (6 significant digits)."""
    return f"{x:.6g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else ""


def metrics_table(metrics: Mapping) -> str:
    """Name, direction, value, ± std and 95% interval of each metric, with the digits ``genbench score`` prints."""
    headers = [("metric", ""), ("better", ""), ("value", "num"), ("± std", "num"), ("95% interval", "num"),
               ("notes", "")]
    rows = []
    for name, entry in metrics.items():
        if not isinstance(entry, Mapping):
            continue
        value = headline(entry)
        notes = [f"{k} {entry[k]}" for k in ("splits", "subsets", "subset_size", "k") if k in entry]
        if "slope" in entry:
            notes.append(f"1/N fit: slope {fmt(name, entry['slope'])}, R² {entry.get('r2')}, "
                         f"{len(entry.get('points') or [])} points")
        rows.append(("", [h.cell(name), h.Cell(f"<span class=arrow>{arrow(name)}</span> {h.esc(arrow_title(name))}",
                                               direction(name) or ""),
                          h.cell(_six(value), value, "num"),
                          h.cell(fmt_spread(name, value or 0.0, entry.get("std")), entry.get("std"), "num"),
                          h.cell(f"[{_six(ci[0])}, {_six(ci[1])}]" if (ci := interval(entry)) else "", None, "num"),
                          h.cell(", ".join(notes))]))
    return h.table(headers, rows, table_id="metrics")


def load_board(path: str | Path | None = None) -> dict | None:
    """The bundled leaderboard document (or the one at ``path``), None when there is none or it is unreadable."""
    import json

    target = Path(path) if path is not None else BUNDLED_BOARD
    try:
        doc = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    return doc if document_kind(doc) == "leaderboard" else None


def comparable_metrics(doc: Mapping, board: Mapping | None) -> dict[str, str]:
    """Metric name -> why the board's rows may be shown on its axis, for the metrics in the board's space.

    The extractor identity (extractor, weights sha256, preprocessing) must match the board's. IS needs
    nothing more (it depends on the generated samples alone). FD needs the same reference statistics;
    KID, precision, recall, density and coverage the same reference features, which a score against a
    statistics id does not have, so they are only placed when the reference location matches.
    """
    if not board:
        return {}
    prov, bprov = doc.get("provenance") or {}, board.get("provenance") or {}
    ident = bprov.get("extractor") or {}
    if not ident or any(prov.get(k) != ident.get(k) for k in ("extractor", "weights_sha256", "preprocessing")):
        return {}
    ref = ((prov.get("inputs") or {}).get("reference") or {})
    board_refs = [r for r in (bprov.get("references") or {}).values() if isinstance(r, Mapping)]
    same_stats = any(ref.get("reference_id") and ref.get("reference_id") == r.get("reference_id") for r in board_refs)
    same_features = any(ref.get("location") and ref.get("location") in (r.get("feature_subset"), r.get("location"))
                        for r in board_refs)
    n = ((prov.get("inputs") or {}).get("generated") or {}).get("n")
    size_note = "" if n == bprov.get("n") else f"; the board's rows have n = {bprov.get('n')}, this result n = {n}"
    out = {}
    for name in doc.get("metrics") or {}:
        head = name.split("_", 1)[0]
        if head == "is":
            out[name] = "IS depends on the generated samples only" + size_note
        elif head in ("fd", "fid") and same_stats:
            out[name] = "same reference statistics" + size_note + (" (FD grows as n shrinks)" if size_note else "")
        elif same_features:
            out[name] = "same reference features" + size_note
    return out


def intervals_figure(doc: Mapping, board: Mapping | None) -> tuple[bytes | None, list[str]]:
    """The metrics with an interval or a place among the board's rows, one strip each; and the notes."""
    metrics = doc.get("metrics") or {}
    placed = comparable_metrics(doc, board)
    board_rows = (board or {}).get("rows") or []
    strips, notes = [], []
    for name, entry in metrics.items():
        value = headline(entry)
        ci = interval(entry)
        std = entry.get("std") if isinstance(entry, Mapping) else None
        if ci is None and isinstance(std, (int, float)) and value is not None and std > 0:
            ci = (value - std, value + std)
            notes.append(f"{name}: bar = ± 1 std (no bootstrap interval)")
        others: list[tuple[str, float]] = []
        if name in placed:
            named = [(str(r.get("name")), headline((r.get("metrics") or {}).get(name))) for r in board_rows]
            others = [(n, v) for n, v in named if v is not None]
            notes.append(f"{name}: among the bundled leaderboard's rows ({placed[name]})")
        if value is None or (ci is None and not others):
            continue
        text = " ".join(t for t in (f"{name} ({arrow_title(name)}):", fmt(name, value), fmt_interval(name, ci)) if t)
        strips.append(Strip(text, axis_label(name), value, ci, others))
    if not strips:
        return None, notes
    image = render_interval_strips(strips, title="This result (orange: value and interval) "
                                                 + ("among the bundled leaderboard rows (grey)" if placed else ""),
                                   note="Interval: seeded 95% bootstrap interval where scored with --bootstrap, "
                                        "else ± 1 std over splits or subsets.")
    return h.png_bytes(image), notes


def score_body(doc: Mapping, base_dir: Path, board: Mapping | None) -> str:
    from .artifacts import artifact_list, fit_plot_svg

    prov = doc.get("provenance") or {}
    parts = [_unverified(prov), "<h2>Metrics</h2>", metrics_table(doc.get("metrics") or {}),
             "<p class=note>± std: spread over IS splits or KID subsets. 95% interval: seeded bootstrap over the "
             "generated samples (reference fixed), where asked for with --bootstrap.</p>"]
    chart, notes = intervals_figure(doc, board)
    if chart:
        parts += ["<h2>Intervals</h2>", h.figure(chart, "the metrics with their intervals", "; ".join(map(h.esc, notes)),
                                                 fig_id="chart")]
    for name, entry in (doc.get("metrics") or {}).items():
        svg = fit_plot_svg(entry) if isinstance(entry, Mapping) else None
        if svg:
            parts.append(f"<figure>{svg}<figcaption>{h.esc(name)}: metric on N samples against 1/N</figcaption></figure>")
    generated = ((prov.get("inputs") or {}).get("generated") or {}).get("location")
    grid = sample_grid(generated)
    parts.append("<h2>Samples</h2>")
    parts.append(h.figure(grid, "generated samples", f"The first images of {h.esc(generated)}.", cls="samples",
                          fig_id="samples") if grid else
                 f"<p class=note>The generated images ({h.esc(generated or 'not recorded')}) are not at hand here.</p>")
    artifacts = artifact_list(dict(doc))
    if artifacts:  # listed pictures must be there: InputError (naming the file) before anything is written
        from .artifacts import read_png

        parts.append("<h2>Pictures</h2>")
        for name, rel, caption in artifacts:
            data, (w, hgt) = read_png(_resolve(base_dir, rel), name)
            parts.append(h.figure(data, name, h.esc(caption), cls="samples", width=w, height=hgt))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- probes


def memorization_body(doc: Mapping, base_dir: Path) -> str:
    held = doc.get("heldout") or {}
    thr = doc.get("thresholds") or {}
    details = doc.get("details") or {}
    signals = set(doc.get("signals") or [])
    rows = [
        ("C_T", doc.get("ct"), None, f"< {thr.get('ct_copying')} (underfitting > {thr.get('ct_underfitting')})", "ct"),
        ("memorized fraction", doc.get("memorized_fraction"), held.get("memorized_fraction"),
         f"exceeds held-out by > {thr.get('nn_ratio_excess')}", "nn_ratio"),
        ("authenticity", doc.get("authenticity"), held.get("authenticity"),
         f"below held-out by > {thr.get('authenticity_drop')}", "authenticity"),
        ("train-test gap", doc.get("train_test_gap"), held.get("train_test_gap"), f"< {thr.get('gap_excess')}", "gap"),
    ]
    table = h.table([("statistic", ""), ("generated", "num"), ("held-out", "num"), ("copying signal when", ""),
                     ("signal", "")],
                    [("highlight" if key in signals else "",
                      [h.cell(name), h.cell(_num(gen), gen, "num"), h.cell(_num(hv), hv, "num"), h.cell(rule),
                       h.cell("SIGNAL" if key in signals else "")]) for name, gen, hv, rule, key in rows],
                    table_id="statistics")
    parts = [f"<p>Verdict: <span class=verdict>{h.esc(doc.get('verdict'))}</span> "
             f"(C_T cells used {h.esc(details.get('ct_cells_used'))} of {h.esc(details.get('ct_n_cells'))})</p>",
             "<h2>Statistics</h2>", table]
    gallery = doc.get("gallery")
    parts.append("<h2>Most suspicious samples</h2>")
    parts.append(_picture(base_dir, gallery, "memorization gallery", "Generated sample (left) beside its nearest "
                                                                     "training image (right).", cls="chart")
                 if gallery else "<p class=note>No gallery was written (probe memorization --gallery PATH).</p>")
    suspicious = doc.get("suspicious") or []
    if suspicious:
        parts.append(h.table([("generated", ""), ("nearest training", ""), ("distance", "num"), ("ratio d1/d2", "num")],
                             [("", [h.cell(s.get("generated_key", s.get("generated_index"))),
                                    h.cell(s.get("train_key", s.get("train_index"))),
                                    h.cell(_num(s.get("distance")), s.get("distance"), "num"),
                                    h.cell(_num(s.get("ratio")), s.get("ratio"), "num")]) for s in suspicious],
                             table_id="suspicious"))
    return "\n".join(parts)


def sensitivity_body(doc: Mapping) -> str:
    from ..probe_figures import render_sensitivity_figure

    parts = []
    metrics = [m for m in doc.get("metrics") or [] if isinstance(m, str)]
    transforms = doc.get("transforms") or {}
    for i, metric in enumerate(metrics):
        image = render_sensitivity_figure(doc.get("points") or [], transforms, metric)
        parts.append(h.figure(h.png_bytes(image), f"sensitivity of {metric}", f"{h.esc(metric)} against each "
                              "transform's strength.", fig_id="chart" if i == 0 else None))
    mono, rho, way = doc.get("monotone") or {}, doc.get("spearman_rho") or {}, doc.get("direction") or {}
    rows = []
    for t in transforms:
        for m in metrics:
            r = (rho.get(t) or {}).get(m)
            rows.append(("", [h.cell(t), h.cell((transforms[t] or {}).get("unit", "")), h.cell(m),
                              h.cell((way.get(t) or {}).get(m, "")), h.cell("yes" if (mono.get(t) or {}).get(m) else "no"),
                              h.cell(_num(r), r, "num")]))
    parts = ["<h2>Curves</h2>", *parts, "<h2>Monotonicity</h2>",
             h.table([("transform", ""), ("strength unit", ""), ("metric", ""), ("direction", ""), ("monotone", ""),
                      ("Spearman rho", "num")], rows, table_id="monotone")]
    pre = doc.get("preprocessing")
    if pre:
        keys = list(pre[0])
        parts += ["<h2>Preprocessing</h2>",
                  h.table([(h.esc(k), "") for k in keys],
                          [("", [h.cell(_num(r.get(k)), r.get(k) if isinstance(r.get(k), (int, float)) else None)
                                 for k in keys]) for r in pre], table_id="preprocessing")]
    return "\n".join(parts)


def modes_body(doc: Mapping) -> str:
    rows = []
    for name in ("generated", "reference"):
        s = doc.get(name)
        if isinstance(s, Mapping):
            rows.append(("", [h.cell(name), h.cell(s.get("n"), s.get("n"), "num"),
                              h.cell(s.get("n_counted"), s.get("n_counted"), "num"),
                              h.cell(f"{s.get('modes_covered')} / {s.get('n_modes')}", s.get("modes_covered"), "num"),
                              h.cell(_num(s.get("kl_to_uniform")), s.get("kl_to_uniform"), "num"),
                              h.cell(_num(s.get("max_mode_share")), s.get("max_mode_share"), "num"),
                              h.cell(_num(s.get("accuracy")), s.get("accuracy"), "num")]))
    parts = [f"<p>{h.esc(doc.get('modes_covered'))} of {h.esc(doc.get('n_modes'))} modes covered; KL to uniform "
             f"{h.esc(_num(doc.get('kl_to_uniform')))} nats (0 = balanced).</p>",
             h.table([("set", ""), ("n", "num"), ("counted", "num"), ("modes covered", "num"), ("KL to uniform", "num"),
                      ("largest mode share", "num"), ("triple accuracy", "num")], rows, table_id="modes")]
    hist = (doc.get("generated") or {}).get("histogram")
    if isinstance(hist, list) and hist:
        top = sorted(range(len(hist)), key=lambda m: -hist[m])[:20]
        image = render_hbar_chart([f"mode {m}" for m in top], [float(hist[m]) for m in top],
                                  title="the 20 most frequent modes of the generated set", xlabel="samples", log=False)
        parts.append(h.figure(h.png_bytes(image), "mode histogram", "Samples per mode.", fig_id="chart"))
    return "\n".join(parts)


def conditional_body(doc: Mapping) -> str:
    per_class = doc.get("per_class") or []
    fd_name = next((k.removeprefix("mean_class_") for k in doc if k.startswith("mean_class_")), "fd")
    rows = [("", [h.cell(r.get("class"), r.get("class"), "num"), h.cell(r.get("n"), r.get("n"), "num"),
                  h.cell(r.get("n_reference"), r.get("n_reference"), "num"),
                  h.cell(_num(r.get("accuracy")), r.get("accuracy"), "num"),
                  h.cell(fmt(fd_name, r.get(fd_name)), r.get(fd_name), "num")]) for r in per_class]
    parts = [f"<p>Accuracy on the intended classes {h.esc(_num(doc.get('accuracy')))}; mean per-class "
             f"{h.esc(fd_name)} {h.esc(_num(doc.get(f'mean_class_{fd_name}')))}.</p>",
             h.table([("class", "num"), ("n", "num"), ("n reference", "num"), ("accuracy", "num"),
                      (f"{h.esc(fd_name)} {arrow(fd_name)}", "num")], rows, table_id="classes")]
    values = [r.get(fd_name) for r in per_class]
    if any(isinstance(v, (int, float)) for v in values):
        image = render_hbar_chart([f"class {r.get('class')}" for r in per_class],
                                  [float(v) if isinstance(v, (int, float)) else math.nan for v in values],
                                  title=f"per-class {fd_name} ({arrow_title(fd_name)})", xlabel=axis_label(fd_name))
        parts.append(h.figure(h.png_bytes(image), f"per-class {fd_name}", "", fig_id="chart"))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- demo and check


def demo_body(rows: Sequence[Mapping]) -> str:
    names = list(dict.fromkeys(n for r in rows for n in (r.get("metrics") or {})))
    table = h.table([("images", "")] + [(f"{h.esc(n)} {arrow(n)}", "num") for n in names] + [("seconds", "num")],
                    [("", [h.cell(r.get("name"))]
                      + [h.cell(" ".join(t for t in (fmt(n, headline(r["metrics"].get(n))),
                                                    fmt_spread(n, headline(r["metrics"].get(n)) or 0.0,
                                                               (r["metrics"].get(n) or {}).get("std"))) if t),
                                headline(r["metrics"].get(n)), "num") for n in names]
                      + [h.cell(_num(r.get("seconds")), r.get("seconds"), "num")]) for r in rows], table_id="demo")
    parts = ["<h2>Rows</h2>", table]
    if names:
        first = names[0]
        image = render_hbar_chart([str(r.get("name")) for r in rows],
                                  [headline(r["metrics"].get(first)) or math.nan for r in rows],
                                  title=f"{first} per row ({arrow_title(first)})", xlabel=axis_label(first))
        parts.append(h.figure(h.png_bytes(image), f"{first} per row", "", fig_id="chart"))
    return "\n".join(parts)


def check_body(doc: Mapping) -> str:
    verdicts = doc.get("verdicts") or []
    rows = [("highlight" if v.get("status") == "regressed" else "",
             [h.cell(v.get("metric")), h.cell(v.get("rule")), h.cell(fmt(v.get("metric", ""), v.get("old")), v.get("old"), "num"),
              h.cell(fmt(v.get("metric", ""), v.get("new")), v.get("new"), "num"),
              h.cell(fmt(v.get("metric", ""), v.get("delta")), v.get("delta"), "num"),
              h.Cell(f"<span class='status-{h.esc(v.get('status'))}'>{h.esc(v.get('status'))}</span>", v.get("status")),
              h.cell(v.get("detail"))]) for v in verdicts]
    passed = doc.get("passed")
    parts = [f"<p>Verdict: <span class=verdict>{'PASSED' if passed else 'REGRESSED'}</span> (exit code "
             f"{h.esc(doc.get('exit_code'))})</p>",
             h.table([("metric", ""), ("rule", ""), ("baseline", "num"), ("new", "num"), ("delta", "num"),
                      ("status", ""), ("detail", "")], rows, table_id="verdicts")]
    strips = []
    for v in verdicts:
        new, old = v.get("new"), v.get("old")
        if not isinstance(new, (int, float)):
            continue
        name = str(v.get("metric"))
        others = [("baseline", old)] if isinstance(old, (int, float)) else []
        ci = v.get("new_ci95")
        strips.append(Strip(f"{name} ({arrow_title(name)}): new {fmt(name, new)} {fmt_interval(name, ci)}".rstrip(),
                            axis_label(name), float(new), tuple(ci) if ci else None, others))
    if strips:
        image = render_interval_strips(strips, title="new result (orange, with its interval) against the baseline (grey)")
        parts.append(h.figure(h.png_bytes(image), "new against baseline", "", fig_id="chart"))
    for side in ("baseline", "new"):
        info = doc.get(side) or {}
        if info:
            parts.append(f"<h2>{side}</h2>" + h.definition_list(list(info.items())))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the page


def _num(x) -> str:
    if x is None:
        return ""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return "n/a" if not math.isfinite(x) else f"{x:.4g}"


_TITLES = {"score": "score", "memorization": "memorization probe", "sensitivity": "sensitivity probe",
           "modes": "mode coverage probe", "conditional": "class-conditional probe", "demo": "demo",
           "check": "quality gate", "leaderboard": "leaderboard"}


def render_report(doc, base_dir: str | os.PathLike = ".", title: str | None = None,
                  board: Mapping | None | Literal["bundled"] = "bundled", gallery: str = "") -> str:
    """The page for ``doc`` (any kind of :func:`document_kind`); pictures are read from ``base_dir``.

    ``board``: the leaderboard document to place a score among ("bundled": the repository's, when present;
    None: none). ``gallery``: a score's per-sample gallery (:func:`genbench.results.pages.gallery.gallery_section`),
    placed after its samples. Raises InputError for a document of no known kind.
    """
    from ...errors import InputError
    from .leaderboard_page import render_document

    kind = document_kind(doc)
    if kind is None:
        raise InputError("not a genbench result document: expected the JSON of score, probe, leaderboard, demo or "
                         "check (--json)")
    base = Path(base_dir)
    doc = unwrap(doc)
    if kind == "leaderboard":
        return render_document(doc, base, title)
    prov = (doc.get("provenance") or {}) if isinstance(doc, Mapping) else {}
    heading = title or prov.get("name") or f"genbench {_TITLES[kind]}"
    if kind == "score":
        body = score_body(doc, base, load_board() if board == "bundled" else board) + ("\n" + gallery if gallery else "")
    elif kind == "memorization":
        body = memorization_body(doc, base)
    elif kind == "sensitivity":
        body = sensitivity_body(doc)
    elif kind == "modes":
        body = modes_body(doc)
    elif kind == "conditional":
        body = conditional_body(doc)
    elif kind == "demo":
        body = demo_body(doc)
    else:
        body = check_body(doc)
    lead = f"{h.esc(_TITLES[kind])} result" + (f", {h.esc(prov.get('created_at'))}" if prov.get("created_at") else "")
    return h.page(heading, body + ("\n" + _provenance(prov) if prov else ""), lead=lead)
