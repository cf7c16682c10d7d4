"""Reports for one result document: a self-contained HTML page and a Markdown summary (standard library + PIL).

Every document genbench writes is accepted: ``score`` (and ``results show``), the probes' reports
(``probe memorization|sensitivity|modes|conditional --json``), a leaderboard's ``results.json``, ``demo
--json`` and ``check --json``; what each page shows is in :mod:`genbench.results.pages.report_page`. Pictures are
PNG data URIs, so the page is one file. The Markdown summary has the main table and key provenance, and
links the PNGs of a score's ``artifacts``, which are copied beside it.

``artifacts`` maps a name (``sample_grid``, ``memorization_gallery``, ``sensitivity``, ...) to a
PNG path, relative to the result file's folder or absolute, or to ``{"path": ..., "caption": ...}``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import ConfigError, InputError
from ..util.atomic import atomic_path, write_text_atomic
from .pages.artifacts import artifact_list, read_png
from .pages.metrics import headline as page_headline

HTML_NAME, MARKDOWN_NAME = "report.html", "summary.md"


# ----------------------------------------------------------------------------- inputs


def load_result_document(path: str | os.PathLike) -> dict | list:
    """Read a result JSON of any kind genbench writes (see the module docstring); InputError naming the file.

    Callers that need a score document check it further (``genbench check``: :func:`genbench.gate.validate_result_document`).
    """
    from .pages.report_page import document_kind

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: result file not found")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON result file ({exc})") from None
    if document_kind(doc) is None:
        raise InputError(f"{path}: not a genbench result document; expected the JSON written by score, probe, "
                         "leaderboard (results.json), demo or check (--json)")
    return doc


# ----------------------------------------------------------------------------- formatting helpers


def _num(x) -> str:
    return f"{x:.6g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else ("" if x is None else str(x))


def metric_rows(doc: dict) -> list[dict]:
    """One row per metric: name, value, spread (± std), ci95 text and notes (splits, subsets, fit)."""
    rows = []
    for name, entry in doc["metrics"].items():
        if not isinstance(entry, dict):
            continue
        value = page_headline(entry)
        ci = entry.get("ci95")
        notes = []
        for key in ("splits", "subsets", "subset_size", "k"):
            if key in entry:
                notes.append(f"{key} {entry[key]}")
        if "slope" in entry:
            notes.append(f"1/N fit: slope {_num(entry['slope'])}, R² {_num(entry.get('r2'))}, {len(entry.get('points', []))} points")
        rows.append({
            "metric": str(name),
            "value": _num(value),
            "std": _num(entry.get("std")) if "std" in entry else "",
            "ci95": f"[{_num(ci[0])}, {_num(ci[1])}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else "",
            "notes": ", ".join(notes),
        })
    return rows


def key_facts(doc: dict) -> list[tuple[str, str]]:
    """The provenance lines worth a glance: name, time, commit, extractor, reference, n, seed, device."""
    p = (doc.get("provenance") or {}) if isinstance(doc, dict) else {}
    inputs = p.get("inputs") or {}
    gen, ref = inputs.get("generated") or {}, inputs.get("reference") or {}
    facts = [
        ("name", p.get("name")),
        ("created", p.get("created_at")),
        ("git commit", p.get("git_commit")),
        ("extractor", f"{p.get('extractor')} / {p.get('layer')} ({p.get('preprocessing')})" if p.get("extractor") else None),
        ("weights sha256", p.get("weights_sha256")),
        ("generated", f"{gen.get('location') or gen.get('kind')} (n={gen.get('n')})" if gen else None),
        ("reference", f"{ref.get('reference_id') or ref.get('location')} (n={ref.get('n')})" if ref else None),
        ("reference sha256", ref.get("sha256")),
        ("seed", p.get("seed")),
        ("device", p.get("device")),
        ("genbench", p.get("genbench_version")),
    ]
    return [(k, str(v)) for k, v in facts if v is not None]


# ----------------------------------------------------------------------------- HTML


def render_html(doc, base_dir: str | os.PathLike = ".", title: str | None = None, board="bundled") -> str:
    """The report page as one HTML string (:func:`genbench.results.pages.report_page.render_report`); artifact PNGs
    are read from ``base_dir`` and embedded; ``board``: the leaderboard a score is placed among."""
    from .pages.report_page import render_report

    return render_report(doc, base_dir, title, board)


def _resolve(base_dir: Path, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else base_dir / path


# ----------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc, title: str | None = None, image_links: dict[str, str] | None = None) -> str:
    """The Markdown summary; ``image_links`` maps artifact names to the paths the summary links."""
    from .pages.report_page import document_kind, unwrap

    kind = document_kind(doc)
    if kind != "score":
        return _other_markdown(unwrap(doc), kind, title)
    prov = doc.get("provenance") or {}
    title = title or prov.get("name") or "genbench result"
    lines = [f"# {title}", "", "| metric | value | ± std | 95% interval | notes |", "|---|---:|---:|---:|---|"]
    for row in metric_rows(doc):
        lines.append("| " + " | ".join(_md_cell(row[k]) for k in ("metric", "value", "std", "ci95", "notes")) + " |")
    lines.append("")
    lines += [f"- **{k}**: `{_md_cell(v)}`" for k, v in key_facts(doc)]
    for name, link in (image_links or {}).items():
        lines += ["", f"![{name}]({link})"]
    return "\n".join(lines) + "\n"


def _other_markdown(doc, kind: str | None, title: str | None) -> str:
    """The summary of a probe, leaderboard, demo or check document: its main numbers as a short list or table."""
    prov = (doc.get("provenance") or {}) if isinstance(doc, dict) else {}
    lines = [f"# {title or prov.get('name') or f'genbench {kind}'}", ""]
    if kind == "leaderboard":
        from .pages.leaderboard_page import markdown_table

        lines += markdown_table(doc.get("rows") or [])
    elif kind == "demo":
        for row in doc:
            shown = ", ".join(f"{k} {_num(v.get('value', v.get('mean')))}" for k, v in row["metrics"].items())
            lines.append(f"- **{_md_cell(str(row['name']))}**: {shown}")
    elif kind == "check":
        lines.append(f"**{'PASSED' if doc.get('passed') else 'REGRESSED'}**")
        lines += ["", "| metric | rule | baseline | new | status |", "|---|---|---:|---:|---|"]
        lines += [f"| {v.get('metric')} | {_md_cell(str(v.get('rule')))} | {_num(v.get('old'))} | {_num(v.get('new'))} | "
                  f"{v.get('status')} |" for v in doc.get("verdicts") or []]
    else:
        keys = ("verdict", "ct", "memorized_fraction", "authenticity", "train_test_gap", "modes_covered",
                "kl_to_uniform", "accuracy")
        lines += [f"- **{k}**: `{_num(doc[k])}`" for k in keys if k in doc]
        for t, per in (doc.get("direction") or {}).items():
            lines += [f"- **{t}**, {m}: {d}" for m, d in per.items()]
    lines.append("")
    lines += [f"- **{k}**: `{_md_cell(v)}`" for k, v in key_facts(doc)] if isinstance(doc, dict) else []
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- files


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "artifact"


def write_report(
    doc: dict | list,
    out_dir: str | os.PathLike,
    base_dir: str | os.PathLike = ".",
    title: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``report.html``, ``summary.md`` and the artifact PNGs (``artifact-<name>.png``) into ``out_dir``.

    Returns {"html": path, "markdown": path}. Raises ConfigError when the report files exist and
    ``overwrite`` is False, InputError for a missing or invalid artifact (before anything is written).
    """
    out_dir = Path(out_dir)
    targets = {"html": out_dir / HTML_NAME, "markdown": out_dir / MARKDOWN_NAME}
    for path in targets.values():
        if path.exists() and not overwrite:
            raise ConfigError(f"-o {out_dir}: {path.name} exists; pass --overwrite to replace it")
    page = render_html(doc, base_dir, title)  # validates every artifact first
    links: dict[str, str] = {}
    copies: list[tuple[Path, bytes]] = []
    for name, rel, _ in (artifact_list(doc) if isinstance(doc, dict) and "rows" not in doc else []):
        data, _size = read_png(_resolve(Path(base_dir), rel), name)
        file_name = f"artifact-{_safe_name(name)}.png"
        links[name] = file_name
        copies.append((out_dir / file_name, data))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, data in copies:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    write_text_atomic(targets["html"], page)
    write_text_atomic(targets["markdown"], render_markdown(doc, title, links))
    return targets
