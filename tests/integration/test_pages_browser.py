"""The HTML pages in a real headless Chromium: they load without errors, the chart and the table are there,
the pictures decode, and clicking a column header sorts the table; a screenshot of each page is saved.

Chromium comes from the Debian package ``chromium`` (``scripts/setup.sh --test`` installs it where apt-get
exists); without it these tests are skipped. No Python driver is needed: each page is loaded once with
``--dump-dom`` after a small harness script has been added to a copy of it (it records errors, clicks the
headers and writes what it saw into an attribute of ``<body>``), and once more for ``--screenshot``.
Screenshots go to the test's temporary folder, or to ``$GENBENCH_SCREENSHOTS`` when set (the checkout's
``reports/screenshots/`` were made that way); a test run never writes into the checkout.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BOARD = ROOT / "reports" / "fashion-mnist" / "results.json"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-extensions", "--mute-audio"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium not found: install the Debian package 'chromium' "
                "(scripts/setup.sh --test does where apt-get exists) to run the browser tests")


def run_chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="genbench-chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                               *args], capture_output=True, text=True, timeout=timeout)


HARNESS_HEAD = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
(function (original) {
  console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
})(console.error);
</script>"""

#: Runs after the page's own script: for each job, in order, clicks a header twice and reads a column
#: before, after the first click (ascending) and after the second (descending).
HARNESS_TAIL = """<script>
window.addEventListener("load", function () {
  var out = {errors: window.__errors, height: document.documentElement.scrollHeight, sorts: {}, images: []};
  Array.prototype.forEach.call(document.images, function (img) {
    var fig = img.closest("figure");
    out.images.push({id: (fig && fig.id) || "", width: img.naturalWidth, complete: img.complete});
  });
  var asked = %s;
  asked.forEach(function (job) {
    var table = document.getElementById(job.table);
    if (!table) { out.sorts[job.name] = null; return; }
    function column(i) { return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[i].textContent.trim(); }); }
    var button = table.tHead.rows[0].cells[job.column].querySelector("button");
    var result = {before: column(job.read)};
    button.click(); result.asc = column(job.read); result.aria = table.tHead.rows[0].cells[job.column].getAttribute("aria-sort");
    button.click(); result.desc = column(job.read);
    out.sorts[job.name] = result;
  });
  document.body.setAttribute("data-harness", JSON.stringify(out));
});
</script>"""


def inspect(page: Path, jobs: list[dict], tmp_path: Path) -> tuple[dict, str]:
    """Load a copy of ``page`` with the harness; returns what the harness saw and Chromium's log."""
    text = page.read_text()
    assert text.count("<head>") == 1 and text.count("</body>") == 1
    probe = tmp_path / f"harness-{page.stem}.html"
    probe.write_text(text.replace("<head>", "<head>" + HARNESS_HEAD, 1)
                     .replace("</body>", HARNESS_TAIL % json.dumps(jobs) + "</body>", 1))
    res = run_chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r'<body[^>]*data-harness="([^"]*)"', res.stdout)
    assert found, "the page never finished loading (no harness record in the DOM)"
    return json.loads(html.unescape(found.group(1))), res.stderr


def screenshot(page: Path, name: str, height: int, folder: Path, width: int = 1280) -> Path:
    """A PNG of ``page`` in ``folder`` (a test's tmp_path), or in ``$GENBENCH_SCREENSHOTS`` when set (to refresh
    reports/screenshots/: GENBENCH_SCREENSHOTS=reports/screenshots scripts/test.sh tests/integration/test_pages_browser.py)."""
    folder = Path(os.environ.get("GENBENCH_SCREENSHOTS", folder))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    res = run_chromium(f"--window-size={width},{min(max(height, 600), 8000)}", f"--screenshot={target}",
                       "--virtual-time-budget=5000", page.as_uri())
    assert res.returncode == 0 and target.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(target) as im:
        assert im.size[0] == width and len(np.unique(np.asarray(im.convert("L")))) > 16  # a rendered page, not a blank
    return target


def assert_clean(seen: dict, log: str) -> None:
    assert seen["errors"] == [], seen["errors"]
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log), [line for line in log.splitlines() if "CONSOLE" in line]
    assert seen["images"] and all(i["complete"] and i["width"] > 0 for i in seen["images"]), seen["images"]


def number(text: str) -> float:
    """The leading number of a cell's text (an interval or a ± std may follow it without a space)."""
    found = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", text or "")
    return float(found.group(1)) if found else float("nan")


# ----------------------------------------------------------------------------- pages under test


def leaderboard_document() -> dict:
    """The bundled board when the checkout has it, else a small synthetic one."""
    if BOARD.is_file():
        return json.loads(BOARD.read_text())
    from tests.unit.test_pages import PROV, board_rows

    return {"rows": board_rows(), "provenance": PROV, "artifacts": {}}


def score_document(tmp_path: Path) -> tuple[dict, Path]:
    """A score with intervals: dcgan samples on fmnist-cnn when the data and checkpoint are here, else test-tiny."""
    from genbench.api import score
    from genbench.errors import GenbenchError
    from tests.conftest import make_images

    try:
        from genbench.baselines.api import sample_images
        from genbench.sources.datasets import open_dataset

        open_dataset("fashion-mnist:train")
        images = sample_images("dcgan", 1000, seed=0)
        np.save(tmp_path / "dcgan-1000.npy", images)
        result = score(str(tmp_path / "dcgan-1000.npy"), "fashion-mnist:train", extractor="fmnist-cnn",
                       metrics=["fd", "is"], bootstrap=50, cache=False)
        result.provenance["name"] = "dcgan, 1000 samples"
    except (GenbenchError, OSError, ImportError):  # no data set or checkpoint here: the tiny extractor, made-up images
        np.save(tmp_path / "gen.npy", make_images(60, seed=1, shift=0.1))
        np.save(tmp_path / "ref.npy", make_images(80, seed=0))
        result = score(str(tmp_path / "gen.npy"), str(tmp_path / "ref.npy"), extractor="test-tiny",
                       metrics=["fd", "is", "kid"], bootstrap=30, kid_subset_size=30, kid_subsets=10, cache=False)
        result.provenance["name"] = "tiny score"
    return result.to_dict(), tmp_path


# ----------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_leaderboard_page_in_a_browser(tmp_path):
    chromium()
    from genbench.results.pages.leaderboard_page import ordered_rows, render_document

    doc = leaderboard_document()
    page = tmp_path / "index.html"
    page.write_text(render_document(doc, BOARD.parent if BOARD.is_file() else tmp_path))
    board = ordered_rows(doc["rows"])
    header = ["rank", "model", "kind", "n", *[c for c in ("fd_fmnist", "is_fmnist", "kid_fmnist", "precision",
                                                            "recall", "density", "coverage", "fid", "is")
                                               if any(c in r.metrics for r in board)]]
    fd_col, model_col = header.index("fd_fmnist"), header.index("model")
    seen, log = inspect(page, [{"name": "fd", "table": "leaderboard", "column": fd_col, "read": model_col},
                               {"name": "model", "table": "leaderboard", "column": model_col, "read": model_col},
                               {"name": "fd cells", "table": "leaderboard", "column": fd_col, "read": fd_col}], tmp_path)
    assert_clean(seen, log)
    assert {"chart", "pr-scatter"} <= {i["id"] for i in seen["images"]}
    by_fd = seen["sorts"]["fd"]
    assert by_fd["before"] == [r.name for r in board]  # rank order without any click (and without JavaScript)
    values = {r.name: r.value("fd_fmnist") for r in board}
    assert by_fd["asc"] == sorted(values, key=lambda name: values[name]) and by_fd["aria"] == "ascending"
    assert by_fd["desc"] == by_fd["asc"][::-1]
    cells = seen["sorts"]["fd cells"]["asc"]  # the cells themselves, read back: ascending numbers
    assert [number(t) for t in cells] == sorted(number(t) for t in cells)
    by_name = seen["sorts"]["model"]
    assert by_name["asc"] == sorted((r.name for r in board), key=str.lower)
    screenshot(page, "leaderboard.png", seen["height"], tmp_path)


@pytest.mark.slow
def test_report_page_in_a_browser(tmp_path):
    chromium()
    from genbench.results.report import write_report

    doc, folder = score_document(tmp_path)
    (folder / "result.json").write_text(json.dumps(doc))
    paths = write_report(doc, folder / "report", base_dir=folder)
    seen, log = inspect(paths["html"], [{"name": "value", "table": "metrics", "column": 2, "read": 0},
                                        {"name": "metric", "table": "metrics", "column": 0, "read": 0}], tmp_path)
    assert_clean(seen, log)
    assert {"chart", "samples"} <= {i["id"] for i in seen["images"]}
    values = {name: entry.get("value", entry.get("mean")) for name, entry in doc["metrics"].items()}
    by_value = seen["sorts"]["value"]
    assert by_value["before"] == list(values)
    assert by_value["asc"] == sorted(values, key=values.get) and by_value["desc"] == by_value["asc"][::-1]
    assert seen["sorts"]["metric"]["asc"] == sorted(values, key=str.lower)
    screenshot(paths["html"], "report.png", seen["height"], tmp_path, width=1100)


@pytest.mark.slow
def test_gallery_in_a_browser(tmp_path):
    """``score --gallery``: the report page with the gallery loads cleanly, every pair's two pictures decode, and the
    rows show the samples a plain sort of the --per-sample CSV picks, each with its printed distance."""
    chromium()
    import csv

    from click.testing import CliRunner

    from genbench.cli.app import main
    from tests.conftest import make_images

    gen, train = make_images(30, seed=1, shift=0.1), make_images(40, seed=2)
    train[:2] = gen[[4, 9]]  # two copies: distance 0, marked copy-like
    for name, images in (("gen", gen), ("ref", make_images(40, seed=0)), ("train", train)):
        np.save(tmp_path / f"{name}.npy", images)
    page, table = tmp_path / "gallery.html", tmp_path / "samples.csv"
    res = CliRunner().invoke(main, ["score", str(tmp_path / "gen.npy"), "--ref", str(tmp_path / "ref.npy"), "--train",
                                    str(tmp_path / "train.npy"), "--metrics", "fd", "--gallery", str(page),
                                    "--per-sample", str(table), "--extractor", "test-tiny", "--quiet", "--no-cache"])
    assert res.exit_code == 0, res.output
    with table.open() as f:
        rows = list(csv.DictReader(f))
    realism = np.array([float(r["realism"]) for r in rows])
    distance = np.array([float(r["nearest_train_distance"]) for r in rows])
    seen, log = inspect(page, [], tmp_path)
    assert_clean(seen, log)
    assert len(seen["images"]) == 1 + 3 * 8 * 2  # the sample grid, then a generated and a training picture per pair
    dom = run_chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = {}
    for key in ("best", "worst", "closest"):
        section = re.search(rf'<section id="gallery-{key}">(.*?)</section>', dom.stdout, re.S)
        assert section, key
        shown[key] = [(int(i), text) for i, text in re.findall(r'<figure class="pair[^"]*" data-index="(\d+)".*?'
                                                              r'<span class="?distance"?>([^<]*)</span>', section.group(1))]
    assert [i for i, _ in shown["best"]] == list(np.argsort(realism, kind="stable")[::-1][:8])
    assert [i for i, _ in shown["worst"]] == list(np.argsort(realism, kind="stable")[:8])
    assert [i for i, _ in shown["closest"]] == list(np.argsort(distance, kind="stable")[:8])
    assert {i for i, _ in shown["closest"][:2]} == {4, 9}
    for i, text in shown["closest"]:
        assert float(text) == pytest.approx(distance[i], rel=1e-3, abs=1e-12)
    screenshot(page, "gallery.png", seen["height"], tmp_path, width=1100)
