"""`genbench leaderboard` on a tiny Fashion-MNIST: files written, same seed same numbers, bad n refused."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genbench.cli import main
from tests.integration.test_ref_cli import stores  # noqa: F401  (tiny IDX data set and empty stores)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow
def test_leaderboard_renders_and_is_deterministic(stores, tmp_path):  # noqa: F811
    args = ["leaderboard", "-n", 40, "--families", "dcgan", "--batch-size", 20, "-q"]
    first = run(*args, "--out", tmp_path / "a")
    assert first.exit_code == 0, first.stderr
    for name in ("leaderboard.md", "leaderboard.csv", "index.html", "results.json", "grid-dcgan.png", "grid-uniform-noise.png"):
        assert (tmp_path / "a" / name).is_file(), name
    rows = {r["name"]: r for r in json.loads((tmp_path / "a" / "results.json").read_text())["rows"]}
    assert set(rows) >= {"dcgan", "real test split", "train copies", "uniform noise"}
    # Noise is far from the data; copies of training images are the closest rows.
    assert rows["uniform noise"]["metrics"]["fd_fmnist"]["value"] > rows["dcgan"]["metrics"]["fd_fmnist"]["value"]
    second = run(*args, "--out", tmp_path / "b")
    again = {r["name"]: r["metrics"] for r in json.loads((tmp_path / "b" / "results.json").read_text())["rows"]}
    assert again == {name: r["metrics"] for name, r in rows.items()}


def test_more_samples_than_a_reference_row_has_is_refused(stores, tmp_path):  # noqa: F811
    res = run("leaderboard", "-n", 100, "--families", "dcgan", "-q", "--out", tmp_path / "c")
    assert res.exit_code == 2 and "real test split" in res.stderr and "60 images" in res.stderr
