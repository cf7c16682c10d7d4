"""genbench score with the metrics beyond FID: --train/--test roles, --per-sample CSV, --fd-check, exit codes.

The numbers are checked against the pure functions on the same extracted features (extract once with the CLI,
recompute directly), so this guards the wiring; the functions themselves are checked against their references
in tests/reference/.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.metrics.alpha_precision import authenticity
from genbench.metrics.vendi import vendi_score
from tests.conftest import make_images

TINY = ["--extractor", "test-tiny", "--quiet", "--no-cache"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def four_sets(tmp_path):
    paths = {}
    for name, n, seed, shift in (("gen", 90, 1, 0.1), ("ref", 110, 0, 0.0), ("train", 130, 2, 0.0), ("test", 60, 3, 0.0)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], make_images(n, seed=seed, shift=shift))
    return paths


def _features(path, tmp_path, name):
    out = tmp_path / f"{name}.npz"
    assert run("extract", path, "-o", out, *TINY).exit_code == 0
    with np.load(out) as f:
        return f["features"]


def test_roles_per_sample_and_fd_check(four_sets, tmp_path):
    p = four_sets
    out, samples = tmp_path / "r.json", tmp_path / "samples.csv"
    res = run("score", p["gen"], "--ref", p["ref"], "--train", p["train"], "--test", p["test"], "--metrics",
              "fd,vendi,authenticity,fld,fld_gap", "--fd-check", "--json", out, "--per-sample", samples, *TINY)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert set(doc["provenance"]["inputs"]) == {"generated", "reference", "train", "test"}
    gen, train = _features(p["gen"], tmp_path, "g"), _features(p["train"], tmp_path, "t")
    assert doc["metrics"]["vendi"]["value"] == pytest.approx(vendi_score(gen), rel=1e-9)
    auth = authenticity(train, gen)
    assert doc["metrics"]["authenticity"]["value"] == auth.value  # against --train, not the reference
    assert doc["metrics"]["fd_tiny"]["diagnostics"]["check"]["relative_difference"] < 1e-6
    assert isinstance(doc["metrics"]["fld"]["value"], float) and isinstance(doc["metrics"]["fld_gap"]["value"], float)
    rows = list(csv.DictReader(samples.open()))
    assert len(rows) == 90
    np.testing.assert_array_equal([int(r["nearest_train_index"]) for r in rows], auth.nearest_train_index)
    assert {"realism", "rarity", "authentic", "class_confidence"} <= set(rows[0])
    again = run("score", p["gen"], "--ref", p["ref"], "--metrics", "fd", "--per-sample", samples, *TINY)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_missing_roles_and_bad_counts_exit_2(four_sets):
    p = four_sets
    res = run("score", p["gen"], "--ref", p["ref"], "--metrics", "fld", "--train", p["train"], *TINY)
    assert res.exit_code == 2 and "--test" in res.output
    res = run("score", p["gen"], "--ref", p["ref"], "--metrics", "rarity", "--rarity-k", 200, *TINY)
    assert res.exit_code == 2 and "at least 201 reference" in res.output
