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

import html
import io
import json
import os
import re
from pathlib import Path

from ..errors import ConfigError, InputError
from ..util.atomic import atomic_path, write_text_atomic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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


def _artifact_list(doc: dict) -> list[tuple[str, str, str]]:
    """(name, path, caption) for each artifact; InputError on a malformed entry."""
    artifacts = doc.get("artifacts") or {}
    if not isinstance(artifacts, dict):
        raise InputError(f"'artifacts' must map names to PNG paths, got {type(artifacts).__name__}")
    out = []
    for name, spec in artifacts.items():
        if isinstance(spec, str):
            out.append((str(name), spec, str(name).replace("_", " ")))
        elif isinstance(spec, dict) and isinstance(spec.get("path"), str):
            out.append((str(name), spec["path"], str(spec.get("caption") or name)))
        else:
            raise InputError(f"artifact {name!r}: expected a PNG path or {{'path': ..., 'caption': ...}}, got {spec!r}")
    return out


def read_png(path: Path, name: str) -> tuple[bytes, tuple[int, int]]:
    """The bytes and (width, height) of a PNG file; InputError when missing or not a valid PNG."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"artifact {name!r}: {path} not found")
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(f"artifact {name!r}: {path} is not a PNG file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            size = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"artifact {name!r}: {path} is a damaged PNG ({exc})") from None
    return data, size


# ----------------------------------------------------------------------------- formatting helpers


def _num(x) -> str:
    return f"{x:.6g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else ("" if x is None else str(x))


def metric_rows(doc: dict) -> list[dict]:
    """One row per metric: name, value, spread (± std), ci95 text and notes (splits, subsets, fit)."""
    rows = []
    for name, entry in doc["metrics"].items():
        if not isinstance(entry, dict):
            continue
        value = entry.get("value", entry.get("mean"))
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


def fit_plot_svg(entry: dict, width: int = 360, height: int = 220) -> str | None:
    """An SVG scatter of [N, value] points against 1/N with the fitted line; None without points."""
    points = entry.get("points")
    if not points or "value" not in entry or "slope" not in entry:
        return None
    xs = [1.0 / float(n) for n, _ in points]
    ys = [float(v) for _, v in points]
    a, b = float(entry["value"]), float(entry["slope"])
    x_max = max(xs) * 1.05
    line_y = [a, a + b * x_max]
    y_lo, y_hi = min(ys + line_y), max(ys + line_y)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    left, right, top, bottom = 56, 10, 10, 34

    def sx(x: float) -> float:
        return left + (width - left - right) * x / x_max

    def sy(y: float) -> float:
        return top + (height - top - bottom) * (y_hi - y) / (y_hi - y_lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#999"/>',
        f'<line x1="{sx(0):.1f}" y1="{sy(line_y[0]):.1f}" x2="{sx(x_max):.1f}" y2="{sy(line_y[1]):.1f}" stroke="#c33" stroke-width="1.5"/>',
        f'<circle cx="{sx(0):.1f}" cy="{sy(a):.1f}" r="4" fill="#c33"/>',
    ]
    parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="#236"/>' for x, y in zip(xs, ys)]
    for y in (y_lo + pad, y_hi - pad):
        parts.append(f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" font-size="10" text-anchor="end">{html.escape(_num(y))}</text>')
    parts.append(f'<text x="{sx(0):.1f}" y="{height - 20}" font-size="10" text-anchor="middle">0</text>')
    parts.append(f'<text x="{sx(max(xs)):.1f}" y="{height - 20}" font-size="10" text-anchor="middle">1/{min(int(n) for n, _ in points)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle">1/N (red: fit, intercept = value at N = infinity)</text>')
    parts.append("</svg>")
    return "".join(parts)


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
    doc: dict,
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
    for name, rel, _ in (_artifact_list(doc) if isinstance(doc, dict) and "rows" not in doc else []):
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
