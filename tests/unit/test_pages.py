"""The HTML pages (genbench.results.pages) and the figures they embed (genbench.results.plots): ranks, arrows,
intervals, distinct markers, strength axes, every result kind accepted by the report."""
from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from genbench.errors import InputError
from genbench.results.pages.leaderboard_page import markdown_table, ordered_rows, render_page
from genbench.results.pages.metrics import arrow, fmt, fmt_spread
from genbench.results.pages.report_page import comparable_metrics, document_kind, render_report
from genbench.results.plots import MARKERS, PALETTE, ScatterPoint, render_scatter_plot, series_style, strength_axis

IDENT = {"extractor": "fmnist-cnn", "layer": "penultimate", "preprocessing": "luma-bilinear28",
         "weights_sha256": "ab" * 32, "feature_dim": 128}


def row(name, kind, fd, ci=None, precision=0.5, recall=0.5, is_mean=5.0):
    metrics = {"fd_fmnist": {"value": fd}, "is_fmnist": {"mean": is_mean, "std": 0.1, "splits": 10},
               "kid_fmnist": {"mean": fd / 10, "std": 1.0}, "precision": {"value": precision, "k": 3},
               "recall": {"value": recall, "k": 3}}
    if ci:
        metrics["fd_fmnist"]["ci95"] = list(ci)
        metrics["kid_fmnist"]["ci95"] = [ci[0] / 10, ci[1] / 10]
    return {"name": name, "kind": kind, "n": 100, "metrics": metrics, "extra": {"train_steps": 10}, "seconds": 1.5}


def board_rows():
    return [row("vae", "baseline", 238.1, (231.0, 247.7)), row("cgan", "baseline", 82.85, (80.4, 86.2)),
            row("real test split", "reference", 0.4972), row("mine", "added", 120.0, (110.0, 130.0)),
            row("uniform noise", "reference", 1109.0, precision=0.05, recall=0.0)]


PROV = {"genbench_version": "0.1.0", "extractor": IDENT, "extractors": [IDENT], "n": 100, "seed": 0,
        "reference_n": 1000, "references": {"fmnist-cnn/fashion-mnist:train": {
            "kind": "statistics+subset", "reference_id": "fashion-mnist-train_fmnist-cnn", "sha256": "cd" * 32,
            "feature_subset": "fashion-mnist:train[1000 images, seed 0]"}}}


def png(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), colour).save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- leaderboard


def test_ranks_follow_the_headline_metric_and_reference_rows_stay_unranked():
    board = ordered_rows(board_rows())
    assert [(r.name, r.rank) for r in board] == [("cgan", 1), ("mine", 2), ("vae", 3), ("real test split", None),
                                                 ("uniform noise", None)]


def test_the_page_has_ranks_arrows_intervals_charts_grids_in_rank_order_and_one_provenance():
    pictures = {f"samples: {name}": png() for name in ("vae", "cgan", "mine", "real test split")}
    pictures["cgan: samples by class"] = png((0, 0, 200))
    page = render_page(board_rows(), PROV, pictures, "genbench leaderboard -n 100")
    table = page[page.index('<table id="leaderboard"'):page.index("</table>")]
    headers = re.findall(r"<th[^>]*><button type=button>(.*?)</button></th>", table)
    assert [re.sub("<[^>]+>", "", t).strip() for t in headers] == [
        "rank", "model", "kind", "n", "fd_fmnist ↓", "is_fmnist ↑", "kid_fmnist ↓", "precision ↑", "recall ↑",
        "notes", "seconds"]
    body_rows = re.findall(r'<tr class="(\w+)"><td class="num" data-sort="([^"]*)">([^<]*)</td><td class="">([^<]*)<',
                           table)
    assert [(kind, rank, name) for kind, _, rank, name in body_rows] == [
        ("baseline", "1", "cgan"), ("added", "2", "mine"), ("baseline", "3", "vae"),
        ("reference", "–", "real test split"), ("reference", "–", "uniform noise")]
    assert "[80.4, 86.2]" in table and "[8.04, 8.62]" in table  # FD and KID intervals
    assert "± 0.1" in table  # IS spread
    # Pictures inline only: the two charts, the grids and the model picture; nothing fetched.
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert 'id="chart"' in page and 'id="pr-scatter"' in page
    captions = re.findall(r'<figure class="grid">.*?<figcaption><b>(.*?)</b><br>(.*?)</figcaption>', page)
    assert [c[0] for c in captions] == ["#1 cgan", "#2 mine", "#3 vae", "reference: real test split"]
    assert captions[0][1] == "fd_fmnist 82.85 [80.4, 86.2]"
    assert page.count("<h2>Provenance</h2>") == 1 and "genbench leaderboard -n 100" in page
    assert page.index("<h2>Provenance</h2>") > page.index("Model pictures")
    assert "<script>" in page and "table.sortable" in page


def test_markdown_table_ranks_arrows_and_intervals():
    lines = markdown_table(board_rows())
    assert lines[0].startswith("| rank | model | kind | fd_fmnist ↓ | is_fmnist ↑ | kid_fmnist ↓ | precision ↑ |")
    assert lines[2].startswith("| 1 | cgan | baseline | 82.85 [80.4, 86.2] | 5 ± 0.1 |")
    assert lines[5].startswith("| – | real test split | reference | 0.4972 |")


def test_an_interval_given_beside_the_metrics_is_shown_too():
    rows = [row("dcgan", "baseline", 166.1)]
    rows[0]["fd_fmnist_ci95"] = [161.1, 172.8]
    (shown,) = ordered_rows(rows)
    assert shown.ci("fd_fmnist") == (161.1, 172.8) and "[161.1, 172.8]" in markdown_table(rows)[2]
    assert "ci95" not in rows[0]["metrics"]["fd_fmnist"]  # the document itself is left as it was


def test_metric_text_directions_and_digits():
    assert (arrow("fd_fmnist"), arrow("fid"), arrow("kid_fmnist"), arrow("is"), arrow("coverage"), arrow("ct")) == (
        "↓", "↓", "↓", "↑", "↑", "")
    assert fmt("fd_fmnist", 82.84983329643956) == "82.85" and fmt("precision", 0.72150001) == "0.722"
    assert fmt("fd_fmnist", 1109.3) == "1109" and fmt("kid_fmnist", -0.0828) == "-0.0828"
    assert fmt_spread("is", 6.8, 0.0) == "± 0" and fmt_spread("is", 6.8, 1.08e-14) == "± 0"
    assert fmt_spread("is", 6.8, 0.13614) == "± 0.136"


# ----------------------------------------------------------------------------- figures


def test_fourteen_series_differ_in_colour_and_in_marker():
    styles = [series_style(i) for i in range(14)]
    assert len({c for c, _ in styles}) == 14 and len({m for _, m in styles}) == 14
    assert len({series_style(i) for i in range(196)}) == 196
    assert len(set(PALETTE)) == len(PALETTE) == 14 and len(set(MARKERS)) == 14


def test_the_scatter_draws_every_row_in_its_own_colour():
    rng = np.random.default_rng(0)
    points = [ScatterPoint(f"row {i}", float(x), float(y)) for i, (x, y) in enumerate(rng.uniform(0.05, 0.95, (14, 2)))]
    image = render_scatter_plot(points, title="t", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1))
    pixels = {tuple(p) for p in np.asarray(image).reshape(-1, 3)}
    assert all(colour in pixels for colour in PALETTE)


def test_jpeg_quality_is_plotted_on_a_reversed_axis_with_the_identity_as_none():
    xs, labels, reverse = strength_axis([0, 90, 70, 50, 30, 10])
    assert reverse and xs == [100.0, 90.0, 70.0, 50.0, 30.0, 10.0] and labels[100.0] == "none"
    xs, labels, reverse = strength_axis([0, 0.5, 1.0, 2.0])
    assert not reverse and xs == [0.0, 0.5, 1.0, 2.0] and labels is None


# ----------------------------------------------------------------------------- the report page


def score_doc(location=None, weights="ab" * 32, reference_id="fashion-mnist-train_fmnist-cnn"):
    return {"schema_version": 1,
            "metrics": {"fd_fmnist": {"value": 168.365, "ci95": [164.62, 173.862]},
                        "is_fmnist": {"mean": 4.65, "std": 0.2, "splits": 10}},
            "provenance": {**IDENT, "weights_sha256": weights, "name": "dcgan-2000", "weights_verified": True,
                           "inputs": {"generated": {"kind": "array", "location": location, "n": 2000},
                                      "reference": {"kind": "statistics", "reference_id": reference_id, "n": 60000}}}}


def test_every_result_kind_is_recognised():
    assert document_kind(score_doc()) == "score"
    assert document_kind({"rows": board_rows(), "provenance": PROV}) == "leaderboard"
    assert document_kind([{"name": "test split", "metrics": {"fd_fmnist": {"value": 1.0}}, "seconds": 1}]) == "demo"
    assert document_kind({"passed": True, "verdicts": []}) == "check"
    for probe in ("memorization", "sensitivity", "modes", "conditional"):
        assert document_kind({"probe": probe}) == probe
        assert document_kind({"kind": "probe", "report": {"probe": probe}, "metrics": {}}) == probe
    assert document_kind({"hello": 1}) is None and document_kind([1, 2]) is None and document_kind("x") is None


def test_load_refuses_what_is_no_result_naming_the_file(tmp_path):
    from genbench.results.report import load_result_document

    junk = tmp_path / "junk.json"
    junk.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="junk.json: not a genbench result document"):
        load_result_document(junk)
    with pytest.raises(InputError, match="not a genbench result document"):
        render_report({"hello": 1})


def test_a_score_is_placed_among_the_board_only_in_the_same_space():
    board = {"rows": board_rows(), "provenance": PROV}
    placed = comparable_metrics(score_doc(), board)
    assert set(placed) == {"fd_fmnist", "is_fmnist"} and "n = 100" in placed["fd_fmnist"]
    assert comparable_metrics(score_doc(weights="ff" * 32), board) == {}  # other weights: another space
    assert set(comparable_metrics(score_doc(reference_id="other"), board)) == {"is_fmnist"}  # FD needs the reference


def test_score_report_shows_intervals_the_board_and_the_samples(tmp_path):
    from tests.conftest import make_images

    images = tmp_path / "gen.npy"
    np.save(images, make_images(20, seed=0))
    page = render_report(score_doc(str(images)), tmp_path, board={"rows": board_rows(), "provenance": PROV})
    assert "168.365" in page and "[164.62, 173.862]" in page and "↓" in page
    assert 'id="chart"' in page and "among the bundled leaderboard" in page
    grid = re.search(r'<figure class="samples" id="samples"><img src="data:image/png;base64,([^"]+)"', page)
    assert grid is not None
    with Image.open(io.BytesIO(base64.b64decode(grid.group(1)))) as im:
        assert im.size[0] > 8 * 16  # eight columns of the 16-pixel images, enlarged
    missing = render_report(score_doc(str(tmp_path / "gone.npy")), tmp_path, board=None)
    assert "are not at hand here" in missing and 'id="samples"' not in missing


def test_probe_demo_check_and_leaderboard_reports(tmp_path):
    gallery = tmp_path / "gallery.png"
    gallery.write_bytes(png())
    memo = {"probe": "memorization", "verdict": "copying", "signals": ["nn_ratio"], "ct": -4.2,
            "memorized_fraction": 0.3, "authenticity": 0.5, "train_test_gap": -0.2,
            "heldout": {"memorized_fraction": 0.0, "authenticity": 0.8, "train_test_gap": 0.0},
            "thresholds": {"ct_copying": -3.0}, "details": {}, "gallery": "gallery.png",
            "suspicious": [{"generated_index": 3, "train_index": 7, "distance": 0.0, "ratio": 0.0}], "provenance": {}}
    page = render_report(memo, tmp_path)
    assert "copying" in page and base64.b64encode(gallery.read_bytes()).decode() in page and "SIGNAL" in page
    sens = {"probe": "sensitivity", "metrics": ["fd_tiny"], "transforms": {"jpeg": {"strengths": [0, 50], "unit": "q"}},
            "points": [{"transform": "jpeg", "level": 0, "strength": 0, "metric": "fd_tiny", "value": 1.0,
                        "std": None, "ci95": [0.5, 1.5]},
                       {"transform": "jpeg", "level": 1, "strength": 50, "metric": "fd_tiny", "value": 3.0,
                        "std": None, "ci95": [2.0, 4.0]}],
            "monotone": {"jpeg": {"fd_tiny": True}}, "direction": {"jpeg": {"fd_tiny": "increasing"}},
            "spearman_rho": {"jpeg": {"fd_tiny": 1.0}}, "provenance": {}}
    assert 'id="chart"' in render_report(sens) and "increasing" in render_report(sens)
    demo = [{"name": "test split", "metrics": {"fd_fmnist": {"value": 0.5}}, "seconds": 1.0},
            {"name": "blur sigma=1", "metrics": {"fd_fmnist": {"value": 50.0}}, "seconds": 1.0}]
    assert "blur sigma=1" in render_report(demo) and 'id="chart"' in render_report(demo)
    check = {"passed": False, "exit_code": 1, "regressions": ["fd_tiny"], "baseline": {}, "new": {},
             "verdicts": [{"metric": "fd_tiny", "rule": "max_increase 1", "old": 1.0, "new": 3.0, "delta": 2.0,
                           "status": "regressed", "detail": "", "old_ci95": None, "new_ci95": [2.5, 3.5]}]}
    page = render_report(check)
    assert "REGRESSED" in page and "status-regressed" in page and 'id="chart"' in page
    board = render_report({"rows": board_rows(), "provenance": PROV, "artifacts": {}}, tmp_path)
    assert 'id="leaderboard"' in board and 'id="pr-scatter"' in board


def rows_of_two_sizes():
    """cyclegan scored at its own n = 1000 with the best FD of the board; the other rows at the board's n = 100."""
    rows = board_rows()
    rows.insert(1, dict(row("cyclegan", "baseline", 50.0, (45.0, 55.0)), n=1000))
    return rows


def test_only_rows_of_the_boards_n_are_ranked_the_others_are_shown_unranked_and_said_so():
    board = ordered_rows(rows_of_two_sizes(), n=100)
    assert [(r.name, r.rank) for r in board] == [("cgan", 1), ("mine", 2), ("vae", 3), ("cyclegan", None),
                                                 ("real test split", None), ("uniform noise", None)]
    assert board[3].unranked == "n = 1000, not the ranked rows' n = 100"
    # Without the board's n: the n most ranked-kind rows have.
    assert [r.name for r in ordered_rows(rows_of_two_sizes()) if r.rank] == ["cgan", "mine", "vae"]
    lines = markdown_table(rows_of_two_sizes(), 100)
    assert lines[5].startswith("| – | cyclegan | baseline | 50 [45, 55] |")
    assert lines[-2] == "" and lines[-1].startswith("Ranked by fd_fmnist among the rows scored at n = 100 only")
    assert "cyclegan (n = 1000) is shown unranked" in lines[-1]
    assert not any(line.startswith("Ranked by") for line in markdown_table(board_rows(), 100))  # one n: no note
    page = render_page(rows_of_two_sizes(), PROV, {"samples: cyclegan": png()}, "genbench leaderboard -n 100")
    assert "cyclegan (n = 1000) is shown unranked" in page and "n = 100 samples each, cyclegan: 1000" in page
    assert "<span title='n = 1000, not the ranked rows&#x27; n = 100'>–</span>" in page
    assert "<b>unranked (n = 1000): cyclegan</b>" in page


def test_the_csv_rows_carry_the_same_ranks_and_order():
    from genbench.baselines.board import BOARD
    from genbench.leaderboard import Row, table_rows

    rows = [Row(r["name"], r["kind"], r["metrics"], n=r["n"]) for r in rows_of_two_sizes()]
    flat = table_rows(rows, BOARD, 100)
    assert [(f["rank"], f["model"], f["n"]) for f in flat] == [
        (1, "cgan", 100), (2, "mine", 100), (3, "vae", 100), ("", "cyclegan", 1000), ("", "real test split", 100),
        ("", "uniform noise", 100)]
