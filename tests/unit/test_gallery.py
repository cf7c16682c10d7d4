"""The report page's per-sample gallery: which samples it picks (against plain sorts and a brute-force nearest
neighbour), what each pair shows (images of the right indices, the distance printed), and the CLI's refusals."""
from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.distance import cdist

from genbench.cli.app import main
from genbench.config import MetricOptions
from genbench.errors import ConfigError
from genbench.metrics.inputs import Evaluated
from genbench.metrics.per_sample import per_sample_arrays
from genbench.results.pages.gallery import gallery_picks, gallery_section, open_gallery_images, write_gallery_page
from genbench.stats.feature_stats import FeatureStats
from tests.conftest import make_images


def _ev(role: str, x: np.ndarray) -> Evaluated:
    return Evaluated(role, role, None, FeatureStats.from_features(x), features=x)


@pytest.fixture
def columns() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    train = rng.standard_normal((70, 6))
    gen = rng.standard_normal((40, 6)) * 1.3
    gen[[3, 17, 25]] = train[[5, 40, 66]] + 1e-3 * rng.standard_normal((3, 6))  # near-copies
    cols = per_sample_arrays(_ev("generated", gen), _ev("reference", rng.standard_normal((60, 6))),
                             MetricOptions(), train=_ev("train", train))
    return cols, gen, train


def test_picks_are_the_sorted_extremes(columns) -> None:
    cols, gen, train = columns
    picks = gallery_picks(cols, 8)
    realism = cols["realism"]
    np.testing.assert_array_equal(picks["best"], np.argsort(realism)[::-1][:8])
    np.testing.assert_array_equal(picks["worst"], np.argsort(realism)[:8])
    brute = cdist(gen, train).min(axis=1)  # the nearest training distance, independently
    np.testing.assert_array_equal(picks["closest"], np.argsort(brute)[:8])
    assert set(picks["closest"][:3]) == {3, 17, 25}
    assert all(len(v) == 8 for v in picks.values())
    big = gallery_picks(cols, 100)  # k above the count: every sample, once
    assert sorted(big["best"]) == list(range(40)) and len(big["closest"]) == 40
    assert all(len(v) == 0 for v in gallery_picks(cols, 0).values())
    with pytest.raises(ConfigError, match="non-negative"):
        gallery_picks(cols, -1)


def test_nan_realism_goes_last_in_both_rows() -> None:
    cols = {"realism": np.array([0.5, np.nan, 2.0, 1.0]), "nearest_train_distance": np.array([3.0, 1.0, 2.0, 0.5]),
            "nearest_train_index": np.zeros(4, dtype=np.int64)}
    picks = gallery_picks(cols, 4)
    assert list(picks["best"]) == [2, 3, 0, 1] and list(picks["worst"]) == [0, 3, 2, 1]
    assert list(picks["closest"]) == [3, 1, 2, 0]


def test_section_shows_each_pick_beside_its_nearest_training_image(columns) -> None:
    cols, _, _ = columns
    asked: dict[str, list[int]] = {"generated": [], "train": []}

    def reader(role: str):
        def read(i: int) -> np.ndarray:
            asked[role].append(i)
            return np.full((3, 8, 8), i % 256, dtype=np.uint8)
        return read

    page = gallery_section(cols, reader("generated"), reader("train"), k=5)
    picks = gallery_picks(cols, 5)
    figures = re.findall(r'<figure class="pair[^"]*" data-index="(\d+)" data-train-index="(\d+)" '
                         r'data-distance="([^"]+)">(.*?)</figure>', page)
    shown = [int(i) for i, _, _, _ in figures]
    assert shown == [*picks["best"], *picks["worst"], *picks["closest"]]
    assert asked["generated"] == shown
    assert asked["train"] == [int(cols["nearest_train_index"][i]) for i in shown]
    for i, j, d, body in figures:
        assert int(j) == cols["nearest_train_index"][int(i)]
        assert float(d) == cols["nearest_train_distance"][int(i)]
        assert f"<span class=distance>{cols['nearest_train_distance'][int(i)]:.4g}</span>" in body
        assert body.count('src="data:image/png;base64,') == 2
        assert ("copy-like" in body) == (not cols["authentic"][int(i)])


def test_page_write_refuses_overwrite_and_mismatched_images(columns, tmp_path) -> None:
    cols, _, _ = columns
    np.save(tmp_path / "gen.npy", make_images(40, seed=1))
    np.save(tmp_path / "train.npy", make_images(70, seed=2))
    gen, train = open_gallery_images(str(tmp_path / "gen.npy"), "GENERATED"), open_gallery_images(
        str(tmp_path / "train.npy"), "--train")
    doc = {"metrics": {"fd": {"value": 1.0}}, "provenance": {"name": "gallery test"}}
    out = write_gallery_page(tmp_path / "g.html", doc, cols, gen, train)
    assert out.read_text().count('<figure class="pair') == 24
    with pytest.raises(ConfigError, match="exists"):
        write_gallery_page(tmp_path / "g.html", doc, cols, gen, train)
    write_gallery_page(tmp_path / "g.html", doc, cols, gen, train, overwrite=True)
    with pytest.raises(ConfigError, match="generated images"):
        write_gallery_page(tmp_path / "h.html", doc, cols, train, train)
    np.save(tmp_path / "few.npy", make_images(10, seed=3))
    with pytest.raises(ConfigError, match="training images"):
        write_gallery_page(tmp_path / "h.html", doc, cols, gen, open_gallery_images(str(tmp_path / "few.npy"), "--train"))
    assert not (tmp_path / "h.html").exists()


def test_cli_refuses_before_extraction(tmp_path) -> None:
    np.save(tmp_path / "gen.npy", make_images(30, seed=1))
    np.save(tmp_path / "ref.npy", make_images(30, seed=0))
    feats = tmp_path / "train.npz"
    np.savez(feats, features=np.zeros((30, 4), dtype=np.float32))
    tiny = ["--extractor", "test-tiny", "--quiet", "--no-cache"]
    base = ["score", str(tmp_path / "gen.npy"), "--ref", str(tmp_path / "ref.npy"), "--metrics", "fd"]
    res = CliRunner().invoke(main, [*base, "--train", str(feats), "--gallery", str(tmp_path / "g.html"), *tiny])
    assert res.exit_code == 2 and "--gallery needs the images of --train" in res.output
    (tmp_path / "old.html").write_text("mine")
    res = CliRunner().invoke(main, [*base, "--gallery", str(tmp_path / "old.html"), *tiny])
    assert res.exit_code == 2 and "--gallery" in res.output and "--overwrite" in res.output
    assert (tmp_path / "old.html").read_text() == "mine"
    res = CliRunner().invoke(main, [*base, "--gallery", str(tmp_path / "g.html"), *tiny])  # the reference as train
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g.html").read_text().count('<figure class="pair') == 24
