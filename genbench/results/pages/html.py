"""Building blocks of genbench's self-contained HTML pages: the page shell, sortable tables, inline pictures.

Pages are one file: pictures are PNG data URIs, the style sheet and the few lines of sorting script are
inline, nothing is fetched. Tables are written already in their meaningful order, so a page reads fine
without JavaScript; with it, clicking a column header (a button, so the keyboard works too) sorts by
that column, numerically where the cells carry numbers (``data-sort``), again to reverse.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CSS = """
:root { --ink: #1e1e1e; --muted: #5a5a5a; --rule: #d5d5d5; --soft: #f5f5f5; --accent: #0072b2; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 2em auto;
       max-width: 1180px; padding: 0 1.2em; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid var(--rule); padding-bottom: 0.2em; }
p.lead { color: var(--muted); margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border-bottom: 1px solid var(--rule); padding: 5px 9px; text-align: left; vertical-align: top; }
thead th { background: var(--soft); border-bottom: 2px solid #bbb; white-space: nowrap; }
th button { all: unset; cursor: pointer; } th button:focus-visible { outline: 2px solid var(--accent); }
th[aria-sort=ascending] button::after { content: " ▲"; } th[aria-sort=descending] button::after { content: " ▼"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num small, .ci { color: var(--muted); font-size: 0.85em; white-space: nowrap; }
tr.reference td { background: #fafafa; color: #444; } tr.added td:first-child { font-weight: 600; }
tr.highlight td { background: #fff4d6; }
td.notes { font-size: 0.8em; color: var(--muted); min-width: 12em; max-width: 20em; }
.scroll { overflow-x: auto; }
.arrow { color: var(--accent); font-weight: 600; }
.status-ok { color: #0a7a3d; font-weight: 600; } .status-regressed { color: #b3261e; font-weight: 700; }
figure { margin: 1em 0; } figcaption { color: var(--muted); font-size: 0.9em; margin-top: 0.3em; }
figure.chart img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
.grids { display: flex; flex-wrap: wrap; gap: 14px; }
.grids figure { margin: 0; width: 292px; }
.grids img, img.samples { image-rendering: pixelated; border: 1px solid #ddd; max-width: 100%; height: auto; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 0.88em; }
dl.prov dt { font-weight: 600; } dl.prov dd { margin: 0; word-break: break-all; }
code { font-size: 0.92em; } .note { color: var(--muted); font-size: 0.9em; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 700; background: var(--soft); }
"""

#: Sorting for every ``table.sortable``: numbers (``data-sort``) compare as numbers, empty cells go last.
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    var button = th.querySelector("button");
    if (!button) return;
    button.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col], raw = cell.getAttribute("data-sort");
        if (raw === null) raw = cell.textContent.trim();
        var num = parseFloat(raw);
        return raw === "" ? null : (isNaN(num) ? raw.toLowerCase() : num);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return (x === null) - (y === null);
        if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def esc(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def png_uri(data: bytes) -> str:
    """PNG bytes as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_bytes(image) -> bytes:
    """A PIL image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def picture_bytes(picture: bytes | str | Path) -> bytes:
    """PNG bytes of a picture given as bytes or as a file path."""
    return picture if isinstance(picture, bytes) else Path(picture).read_bytes()


def figure(data: bytes, alt: str, caption: str = "", *, cls: str = "chart", fig_id: str | None = None,
           width: int | None = None, height: int | None = None) -> str:
    """A ``<figure>`` holding one inline PNG and its caption."""
    ident = f' id="{esc(fig_id)}"' if fig_id else ""
    size = (f' width="{width}"' if width else "") + (f' height="{height}"' if height else "")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="{esc(cls)}"{ident}><img src="{png_uri(data)}" alt="{esc(alt)}"{size}>{cap}</figure>'


@dataclass(frozen=True)
class Cell:
    """A table cell: its HTML, an optional sort key and CSS class."""

    html: str
    sort: float | str | None = None
    cls: str = ""


def cell(text: object, sort: float | str | None = None, cls: str = "") -> Cell:
    return Cell(esc(text), sort, cls)


def table(headers: Sequence[tuple[str, str]], rows: Sequence[tuple[str, Sequence[Cell]]], *, table_id: str = "",
          sortable: bool = True, caption: str = "") -> str:
    """A table; ``headers`` are (HTML label, CSS class), ``rows`` are (row CSS class, cells)."""
    head = "".join(f'<th class="{cls}" scope="col">' + (f"<button type=button>{label}</button>" if sortable else label)
                   + "</th>" for label, cls in headers)
    body = []
    for row_cls, cells in rows:
        tds = "".join(
            f'<td class="{c.cls}"' + (f' data-sort="{esc(c.sort)}"' if c.sort is not None else "") + f">{c.html}</td>"
            for c in cells)
        body.append(f'<tr class="{esc(row_cls)}">{tds}</tr>')
    ident = f' id="{esc(table_id)}"' if table_id else ""
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="scroll"><table{ident} class="{"sortable" if sortable else ""}">{cap}<thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table></div>")


def definition_list(items: Sequence[tuple[str, object]]) -> str:
    """Provenance as a two-column definition list (values shown as code)."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>" for k, v in items if v not in (None, ""))
    return f'<dl class="prov">{rows}</dl>'


def page(title: str, body: str, *, lead: str = "") -> str:
    """The whole document: shell, style, heading, body and the sorting script."""
    intro = f'<p class="lead">{lead}</p>' if lead else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>{esc(title)}</h1>{intro}\n{body}\n<script>{SORT_JS}</script>\n</body></html>\n")
