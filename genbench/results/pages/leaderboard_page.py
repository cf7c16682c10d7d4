"""The leaderboard page (``index.html``): ranked table, headline chart, precision-recall scatter, sample grids.

Input: the rows of a leaderboard ``results.json`` (``{"name", "kind", "n", "metrics", "extra", "seconds"}``),
its provenance, its pictures (name -> PNG bytes or path; ``samples: <row>`` are the rows' sample grids), the
command that made it and the board's notes (what each metric is measured against; ``results.json``'s
``notes``). Nothing here is specific to one data set: the metric columns are the rows' metrics in the order
they were computed, and rows of kind ``baseline`` and ``added`` are ranked by the first column every one of
them has (``fd_fmnist`` on the Fashion-MNIST board), in the direction the metric registry declares for it;
reference rows follow, unranked, in their own order. Every metric column carries its direction; FD and KID
show their seeded 95% bootstrap interval where the row has one (``ci95``), IS its spread over splits (± std).

Only rows scored at one sample count are ranked against each other (:func:`ranked_n`): FD and the other
plug-in estimates are biased by n (fewer samples, a larger FD), so a row whose model fixes another n (CycleGAN:
its 1,000 held-out sources against the board's 10,000) is shown unranked, after the ranked rows, and the
table, the page and the chart say so.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..plots import PALETTE, ScatterPoint, render_hbar_chart, render_scatter_plot
from . import html as h
from .metrics import arrow, arrow_title, axis_label, fmt, fmt_interval, fmt_spread, headline, interval

#: Metric kinds shown with their spread (± std over splits is the only uncertainty IS has).
WITH_SPREAD_KINDS = ("is",)
RANKED_KINDS = ("baseline", "added")
KIND_COLOURS = {"baseline": PALETTE[0], "added": PALETTE[1], "reference": (150, 150, 150)}


@dataclass
class BoardRow:
    """One row as shown: its document fields plus its rank (None for reference rows)."""

    name: str
    kind: str
    n: int
    metrics: dict
    extra: dict = field(default_factory=dict)
    seconds: float = 0.0
    rank: int | None = None
    #: Why a row of a ranked kind is not ranked (its n differs from the ranked rows'), else None.
    unranked: str | None = None

    def value(self, metric: str) -> float | None:
        return headline(self.metrics.get(metric))

    def ci(self, metric: str) -> tuple[float, float] | None:
        return interval(self.metrics.get(metric))


def metric_columns(rows: Sequence[Mapping]) -> list[str]:
    """Every metric any row has, in the order they first appear (the order the board computed them)."""
    return list(dict.fromkeys(name for r in rows for name in (r.get("metrics") or {})))


def with_spread(column: str) -> bool:
    """Whether a column shows its ± std (IS: its spread over splits)."""
    from ...metrics.registry import metric_kind

    return metric_kind(column) in WITH_SPREAD_KINDS


def headline_metric(rows: Sequence[Mapping]) -> str:
    """The ranking metric: the first column that every ranked row has (``fd_fmnist`` on the Fashion-MNIST board)."""
    ranked = [r for r in rows if r.get("kind") in RANKED_KINDS] or list(rows)
    columns = metric_columns(rows)
    for column in columns:
        if ranked and all(headline((r.get("metrics") or {}).get(column)) is not None for r in ranked):
            return column
    return columns[0] if columns else ""


def ranked_n(rows: Sequence[Mapping], n: int | None = None) -> int | None:
    """The sample count of the rows that are ranked: the board's ``n`` where a row of a ranked kind has it, else the
    count most of those rows have (a tie: the larger, the less biased); None without such rows."""
    counts = [int(r.get("n") or 0) for r in rows if r.get("kind") in RANKED_KINDS]
    if not counts:
        return None
    if n is not None and n in counts:
        return n
    return max(set(counts), key=lambda c: (counts.count(c), c))


def ordered_rows(rows: Sequence[Mapping], metric: str | None = None, n: int | None = None) -> list[BoardRow]:
    """Ranked rows (1, 2, ... by ``metric`` in its better direction; ties share order of appearance), then rows of
    a ranked kind scored at another n than :func:`ranked_n` (unranked, ``unranked`` says why, same order), then
    the reference rows unranked, as the table, the chart and the grids show them. ``n``: the board's sample count."""
    from .metrics import direction

    metric = metric or headline_metric(rows)
    sign = -1.0 if direction(metric) == "higher" else 1.0
    board = [BoardRow(str(r.get("name")), str(r.get("kind", "")), int(r.get("n") or 0), _with_row_intervals(r),
                      dict(r.get("extra") or {}), float(r.get("seconds") or 0.0)) for r in rows]
    rankable = [r for r in board if r.kind in RANKED_KINDS]
    rankable.sort(key=lambda r: (r.value(metric) is None, sign * (r.value(metric) or 0.0)))
    at = ranked_n(rows, n)
    ranked = [r for r in rankable if r.n == at]
    for i, r in enumerate(ranked, 1):
        r.rank = i
    others = [r for r in rankable if r.n != at]
    for r in others:
        r.unranked = f"n = {r.n}, not the ranked rows' n = {at}"
    return ranked + others + [r for r in board if r.kind not in RANKED_KINDS]


def ranking_note(board: Sequence[BoardRow], metric: str) -> str | None:
    """The sentence that says which rows are left unranked for their n, or None when every row of a ranked kind is
    ranked."""
    others = [r for r in board if r.unranked is not None]
    ranked = [r for r in board if r.rank is not None]
    if not others or not ranked:
        return None
    listed = ", ".join(f"{r.name} (n = {r.n})" for r in others)
    return (f"Ranked by {metric} among the rows scored at n = {ranked[0].n} only: {metric} and the other estimates "
            f"depend on the sample count (fewer samples give a larger FD), so {listed} "
            f"{'is' if len(others) == 1 else 'are'} shown unranked, below the ranked rows.")


def _with_row_intervals(row: Mapping) -> dict:
    """The row's metrics, with an interval given beside them (``fd_fmnist_ci95: [lo, hi]``) moved into the entry."""
    metrics = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (row.get("metrics") or {}).items()}
    for name, entry in metrics.items():
        given = row.get(f"{name}_ci95")
        if isinstance(entry, dict) and "ci95" not in entry and isinstance(given, (list, tuple)) and len(given) == 2:
            entry["ci95"] = list(given)
    return metrics


def columns_of(rows: Sequence[BoardRow]) -> list[str]:
    return list(dict.fromkeys(name for r in rows for name in r.metrics))


def score_text(row: BoardRow, metric: str) -> str:
    """``fd_fmnist 82.85 [80.12, 85.61]`` (the interval where the row has one)."""
    value = row.value(metric)
    if value is None:
        return ""
    ci = fmt_interval(metric, row.ci(metric))
    spread = fmt_spread(metric, value, row.metrics.get(metric, {}).get("std")) if with_spread(metric) else ""
    return " ".join(t for t in (metric, fmt(metric, value), spread, ci) if t)


def _metric_cell(row: BoardRow, column: str) -> h.Cell:
    entry = row.metrics.get(column)
    value = headline(entry)
    if value is None:
        return h.Cell("", None, "num")
    text = h.esc(fmt(column, value))
    if with_spread(column):
        assert isinstance(entry, dict)  # headline() is None for anything but a dict
        spread = fmt_spread(column, value, entry.get("std"))
        text += f" <small>{h.esc(spread)}</small>" if spread else ""
    ci = fmt_interval(column, row.ci(column))
    if ci:
        text += f"<br><small title='95% bootstrap interval (seeded)'>{h.esc(ci)}</small>"
    return h.Cell(text, value, "num")


def _notes(extra: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in extra.items())


def leaderboard_table(board: Sequence[BoardRow], columns: Sequence[str]) -> str:
    headers = [("rank", "num"), ("model", ""), ("kind", ""), ("n", "num")]
    headers += [(f"{h.esc(c)} <span class=arrow title='{h.esc(arrow_title(c))}'>{arrow(c)}</span>", "num")
                for c in columns]
    headers += [("notes", ""), ("seconds", "num")]
    rows = []
    for r in board:
        rank = h.Cell(f"<span title='{h.esc(r.unranked)}'>–</span>", "", "num") if r.unranked else \
            h.cell(r.rank if r.rank is not None else "–", r.rank if r.rank is not None else "", "num")
        cells = [rank,
                 h.cell(r.name), h.cell(r.kind), h.cell(r.n, r.n, "num")]
        cells += [_metric_cell(r, c) for c in columns]
        cells += [h.cell(_notes(r.extra), cls="notes"), h.cell(f"{r.seconds:.1f}", round(r.seconds, 3), "num")]
        rows.append((r.kind, cells))
    return h.table(headers, rows, table_id="leaderboard")


def headline_chart(board: Sequence[BoardRow], metric: str) -> bytes | None:
    """Horizontal bars of the headline metric in table order, with the rows' 95% intervals."""
    shown = [r for r in board if r.value(metric) is not None]
    if not shown:
        return None
    labels = [f"#{r.rank} {r.name}" if r.rank is not None else f"{r.name} (unranked, n = {r.n})" if r.unranked
              else f"{r.name} (reference)" for r in shown]
    values = [v for v in (r.value(metric) for r in shown) if v is not None]  # all of them: shown has values
    intervals = [r.ci(metric) for r in shown]
    positive = all(v > 0 for v in values) and all(iv is None or iv[0] > 0 for iv in intervals)
    log = positive and max(values) / min(values) > 100
    has_ci = any(iv is not None for iv in intervals)
    note = ("Bars: baselines (blue), added models (orange), reference rows (grey). "
            + ("Error bars: seeded 95% bootstrap interval of the generated samples (reference fixed). " if has_ci
               else "No intervals: this board was scored without bootstrap replicates. ")
            + ("Log scale: the rows span more than two decades." if log else ""))
    image = render_hbar_chart(labels, values, title=f"{metric} per row ({arrow_title(metric)})", intervals=intervals,
                              xlabel=axis_label(metric) + (" (log scale)" if log else ""), log=log,
                              colours=[KIND_COLOURS.get(r.kind, PALETTE[2]) for r in shown],
                              value_text=[" ".join(t for t in (fmt(metric, v), fmt_interval(metric, iv)) if t)
                                          for v, iv in zip(values, intervals)], note=note, width=1100)
    return h.png_bytes(image)


def pr_scatter(board: Sequence[BoardRow]) -> bytes | None:
    """Precision against recall, one distinct labelled marker per row."""
    points = [ScatterPoint(r.name, recall, precision) for r in board
              if (recall := r.value("recall")) is not None and (precision := r.value("precision")) is not None]
    if not points:
        return None
    k = next((r.metrics["precision"].get("k") for r in board if isinstance(r.metrics.get("precision"), dict)), None)
    image = render_scatter_plot(points, title=f"precision vs recall{f' (k = {k})' if k else ''}: one marker per row",
                                xlabel=axis_label("recall"), ylabel=axis_label("precision"), xlim=(0, 1), ylim=(0, 1),
                                size=(1100, 640),
                                note="Top right is best: generated samples inside the real manifold (precision) "
                                     "and the real data reached by the generated one (recall).")
    return h.png_bytes(image)


def _provenance_items(provenance: Mapping, command: str) -> list[tuple[str, object]]:
    ex = provenance.get("extractor") or {}
    items: list[tuple[str, object]] = [
        ("extractor", f"{ex.get('extractor')} / {ex.get('layer')} ({ex.get('preprocessing')}), "
                      f"{ex.get('feature_dim')}-d" if ex else None),
        ("weights sha256", ex.get("weights_sha256")),
    ]
    for other in provenance.get("extractors") or []:
        if other != ex:
            items.append((f"also {other.get('extractor')}", f"{other.get('preprocessing')}, weights "
                                                             f"{other.get('weights_sha256')}"))
    items += [("samples per row (n)", provenance.get("n")), ("seed", provenance.get("seed")),
              ("reference subset", provenance.get("reference_n"))]
    for key, ref in (provenance.get("references") or {}).items():
        if isinstance(ref, Mapping):
            shown = ref.get("reference_id") or ref.get("location") or ref.get("kind")
            extra = ref.get("feature_subset")
            items.append((f"reference {key}", f"{shown}" + (f" + features of {extra}" if extra else "")
                          + (f" (sha256 {ref['sha256']})" if ref.get("sha256") else "")))
    items += [("genbench", provenance.get("genbench_version")), ("command", provenance.get("command") or command)]
    return items


def render_page(rows: Sequence[Mapping], provenance: Mapping, pictures: Mapping[str, bytes | str | Path],
                command: str, title: str = "Leaderboard", notes: Sequence[str] = ()) -> str:
    """The whole page as one HTML string (see the module docstring)."""
    n = provenance.get("n")
    board = ordered_rows(rows, n=n if isinstance(n, int) else None)
    metric = headline_metric(rows)
    columns = columns_of(board)
    ex = (provenance.get("extractor") or {}).get("extractor", "?")
    other_n = "".join(f", {h.esc(r.name)}: {r.n}" for r in board if r.unranked)
    lead = (f"{len(board)} rows, n = {h.esc(n)} samples each{other_n}, seed {h.esc(provenance.get('seed'))}; "
            f"ranked by {h.esc(metric)} ({h.esc(arrow_title(metric))}) with the {h.esc(ex)} network"
            + (", among the rows of equal n" if other_n else "") + ". "
            "Reference rows (grey) show what the metrics see in real, copied, collapsed and noise data. "
            "Click a column header to sort.")
    note = ranking_note(board, metric)
    parts = ["<h2>Table</h2>", leaderboard_table(board, columns),
             "<p class=note>↓ lower is better, ↑ higher is better. Small print under FD and KID: seeded 95% "
             "bootstrap interval over the generated samples (reference fixed), where scored with it; IS: ± std "
             "over its splits.</p>"]
    parts += [f"<p class=note id=ranking>{h.esc(note)}</p>"] if note else []
    parts += [f"<p class=note>{h.esc(line.replace('`', ''))}</p>" for line in notes]
    chart = headline_chart(board, metric)
    if chart:
        parts += ["<h2>Headline metric</h2>", h.figure(chart, f"bar chart of {metric} per row",
                                                       f"{h.esc(metric)} per row, in table order.", fig_id="chart")]
    scatter = pr_scatter(board)
    if scatter:
        parts += ["<h2>Precision and recall</h2>", h.figure(scatter, "precision against recall, one marker per row",
                                                            "Each row has its own colour and marker shape.",
                                                            fig_id="pr-scatter")]
    grids = []
    for r in board:
        picture = pictures.get(f"samples: {r.name}")
        if picture is None:
            continue
        rank = f"#{r.rank} " if r.rank is not None else f"unranked (n = {r.n}): " if r.unranked else "reference: "
        grids.append(h.figure(h.picture_bytes(picture), f"samples of {r.name}",
                              f"<b>{h.esc(rank + r.name)}</b><br>{h.esc(score_text(r, metric))}", cls="grid"))
    if grids:
        parts += ["<h2>Samples, in rank order</h2>", f'<div class="grids">{"".join(grids)}</div>']
    others = [(name, p) for name, p in pictures.items() if not name.startswith("samples: ")]
    if others:
        parts.append("<h2>Model pictures</h2>")
        parts += [h.figure(h.picture_bytes(p), name, h.esc(name), cls="samples") for name, p in others]
    parts += ["<h2>Provenance</h2>", h.definition_list(_provenance_items(provenance, command))]
    return h.page(title, "\n".join(parts), lead=lead)


def markdown_table(rows: Sequence[Mapping], n: int | None = None) -> list[str]:
    """The ranked table in Markdown: rank, model, kind, metrics with arrows and intervals, notes; below it, after a
    blank line, the sentence naming rows left unranked for their n (:func:`ranking_note`), if any. ``n``: the
    board's sample count."""
    board = ordered_rows(rows, n=n)
    columns = columns_of(board)
    head = "| rank | model | kind | " + " | ".join(f"{c} {arrow(c)}".rstrip() for c in columns) + " | notes |"
    lines = [head, "|---:|---|---|" + "---:|" * len(columns) + "---|"]
    for r in board:
        cells = []
        for c in columns:
            value = r.value(c)
            if value is None:
                cells.append("")
                continue
            text = fmt(c, value)
            if with_spread(c):
                text += f" {fmt_spread(c, value, r.metrics[c].get('std'))}".rstrip()
            ci = fmt_interval(c, r.ci(c))
            cells.append(f"{text} {ci}".rstrip())
        rank = str(r.rank) if r.rank is not None else "–"
        lines.append(f"| {rank} | {r.name} | {r.kind} | " + " | ".join(cells) + f" | {_notes(r.extra)} |")
    note = ranking_note(board, headline_metric(rows))
    return lines + (["", note] if note else [])


def render_document(doc: Mapping, base_dir: str | Path = ".", title: str | None = None) -> str:
    """The page of a leaderboard ``results.json`` document; its ``artifacts`` are read from ``base_dir``
    (pictures that are missing are left out, named in a note)."""
    base = Path(base_dir)
    pictures: dict[str, bytes] = {}
    missing = []
    for name, rel in (doc.get("artifacts") or {}).items():
        path = Path(rel) if Path(rel).is_absolute() else base / rel
        if path.is_file():
            pictures[str(name)] = path.read_bytes()
        else:
            missing.append(str(name))
    provenance = doc.get("provenance") or {}
    notes = [str(line) for line in doc.get("notes") or []]
    text = render_page(doc.get("rows") or [], provenance, pictures, str(provenance.get("command", "")),
                       title or str(doc.get("title") or "Leaderboard"), notes)
    if missing:
        note = f"<p class=note>Pictures not found beside the results file: {h.esc(', '.join(missing))}.</p>"
        text = text.replace("<h2>Provenance</h2>", note + "<h2>Provenance</h2>", 1)
    return text
