"""`genbench leaderboard` on a tiny Fashion-MNIST: files written, same seed same numbers, bad n refused."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genbench.cli.app import main
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
    run(*args, "--out", tmp_path / "b")
    again = {r["name"]: r["metrics"] for r in json.loads((tmp_path / "b" / "results.json").read_text())["rows"]}
    assert again == {name: r["metrics"] for name, r in rows.items()}


def test_more_samples_than_a_reference_row_has_is_refused(stores, tmp_path):  # noqa: F811
    res = run("leaderboard", "-n", 100, "--families", "dcgan", "-q", "--out", tmp_path / "c")
    assert res.exit_code == 2 and "real test split" in res.stderr and "60 images" in res.stderr


def _rows(out):
    return {r["name"]: r for r in json.loads((out / "results.json").read_text())["rows"]}


@pytest.mark.slow
def test_added_models_score_like_the_same_samples_from_a_baseline(stores, tmp_path):  # noqa: F811
    """A folder, a .npz, a checkpoint path and a Python callable that all hold dcgan's samples for
    (n, seed) score exactly like the bundled dcgan row: four independent routes to the same images."""
    from genbench.baselines.checkpoint import CHECKPOINT_DIR

    n, seed = 30, 4
    assert run("baselines", "sample", "dcgan", "-n", n, "--seed", seed, "-o", tmp_path / "s.npz").exit_code == 0
    assert run("baselines", "sample", "dcgan", "-n", n, "--seed", seed, "-o", tmp_path / "folder").exit_code == 0
    (tmp_path / "mygen.py").write_text(
        "from genbench.baselines.api import sample_images\n\n"
        "def make(n, seed):\n    return sample_images('dcgan', n, seed=seed)\n")
    res = run("leaderboard", "-n", n, "--seed", seed, "--families", "dcgan", "--no-reference-rows", "-q",
              "--out", tmp_path / "out", "--add", f"npz={tmp_path / 's.npz'}", "--add", f"folder={tmp_path / 'folder'}",
              "--add", f"ckpt={CHECKPOINT_DIR / 'dcgan.pt'}", "--add", f"fn=py:{tmp_path / 'mygen.py'}:make")
    assert res.exit_code == 0, res.stderr
    rows = _rows(tmp_path / "out")
    assert {rows[k]["kind"] for k in ("npz", "folder", "ckpt", "fn")} == {"added"}
    for name in ("npz", "folder", "ckpt", "fn"):
        assert rows[name]["metrics"] == rows["dcgan"]["metrics"], name
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| folder | added |" in md and "--add" in md


@pytest.mark.parametrize("entry, expected", [
    ("nameonly", "expected NAME=SPEC"),
    ("x=/no/such/folder", "/no/such/folder"),
    ("x=/no/such/model.pt", "does not exist"),
    ("x=py:no_such_module_xyz:f", "cannot import"),
    ("dcgan=py:json:dumps", "already on the board"),
])
def test_bad_added_rows_are_refused(stores, tmp_path, entry, expected):  # noqa: F811
    res = run("leaderboard", "-n", 10, "--families", "dcgan", "--no-reference-rows", "-q", "--out", tmp_path / "o",
              "--add", entry)
    assert res.exit_code == 2 and expected in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_callable_returning_the_wrong_count_is_refused(stores, tmp_path):  # noqa: F811
    (tmp_path / "short.py").write_text("import numpy as np\n\ndef make(n, seed):\n"
                                       "    return np.zeros((n - 1, 28, 28), np.uint8)\n")
    res = run("leaderboard", "-n", 10, "--families", "dcgan", "--no-reference-rows", "-q", "--out", tmp_path / "o",
              "--add", f"short=py:{tmp_path / 'short.py'}:make")
    # refused on the first small call (n=2), before any row is scored
    assert res.exit_code == 2 and "returned 1 images for n=2" in res.stderr, res.stderr


@pytest.mark.slow
def test_inception_columns_with_a_weights_file(stores, tmp_path, monkeypatch):  # noqa: F811
    """With Inception weights at hand (seeded random ones here: the real file cannot be downloaded on the test
    machine) the board gains fid and is; FID equals the Frechet distance of the two feature sets computed with
    scipy's sqrtm from the features genbench extracts for the same images."""
    import numpy as np
    import scipy.linalg
    import torch

    from genbench.features.inception import random_state_dict

    monkeypatch.delenv("GENBENCH_INCEPTION_WEIGHTS", raising=False)
    auto = run("leaderboard", "-n", 10, "--reference-n", 12, "--families", "dcgan", "--no-reference-rows", "-q",
               "--out", tmp_path / "auto")
    assert auto.exit_code == 0, auto.stderr
    assert "fid" not in _rows(tmp_path / "auto")["dcgan"]["metrics"]  # auto: no weights at hand, no download

    weights = tmp_path / "random-inception.pth"
    torch.save(random_state_dict(seed=3), weights)
    res = run("leaderboard", "-n", 10, "--reference-n", 12, "--families", "dcgan", "--no-reference-rows", "-q",
              "--out", tmp_path / "out", "--weights", weights, "--allow-unverified-weights")
    assert res.exit_code == 0, res.stderr
    metrics = _rows(tmp_path / "out")["dcgan"]["metrics"]
    assert {"fid", "is", "fd_fmnist"} <= set(metrics)
    assert "fid ↓" in (tmp_path / "out" / "leaderboard.md").read_text()

    from genbench.baselines.api import sample_images
    from genbench.features import build_extractor
    from genbench.sources.datasets import open_dataset
    from genbench.sources.subset import SubsetSource

    net = build_extractor("inception-v3", weights=str(weights), allow_unverified=True)
    train = SubsetSource.seeded(open_dataset("fashion-mnist:train"), 12, 0, "train")

    def features(batch):
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(batch)))["features"].double().numpy()

    gen = features(np.repeat(sample_images("dcgan", 10, seed=0)[:, None], 3, axis=1))
    ref = features(train.read_batch(0, 12))
    covmean = scipy.linalg.sqrtm(np.cov(gen, rowvar=False) @ np.cov(ref, rowvar=False)).real
    expected = ((gen.mean(0) - ref.mean(0)) ** 2).sum() + np.trace(np.cov(gen, rowvar=False) + np.cov(ref, rowvar=False) - 2 * covmean)
    assert metrics["fid"]["value"] == pytest.approx(expected, rel=1e-3)


def test_weights_with_inception_off_is_refused(stores, tmp_path):  # noqa: F811
    res = run("leaderboard", "-n", 10, "--out", tmp_path / "o", "--weights", tmp_path / "w.pth", "--inception", "off")
    assert res.exit_code == 2 and "--inception off" in res.stderr


def test_leaderboard_rows_go_to_the_history(stores, tmp_path):  # noqa: F811
    from genbench.results.history import History

    hist = tmp_path / "h.sqlite"
    res = run("leaderboard", "-n", 12, "--families", "dcgan", "--no-reference-rows", "-q", "--out", tmp_path / "o",
              "--history", hist)
    assert res.exit_code == 0, res.stderr
    (record,) = History(hist).records()
    assert record.name == "dcgan" and record.kind == "leaderboard"
    assert record.document["metrics"] == _rows(tmp_path / "o")["dcgan"]["metrics"]
    assert record.document["provenance"]["extractor"] == "fmnist-cnn"
    assert len(record.document["provenance"]["weights_sha256"]) == 64


def test_a_module_callable_is_found_in_the_working_folder(stores, tmp_path, monkeypatch):  # noqa: F811
    """py:MODULE:FUNCTION imports MODULE from the folder the command runs in, as `python -m` would."""
    (tmp_path / "gb_test_sampler_mod.py").write_text(
        "import numpy as np\n\ndef make(n, seed):\n"
        "    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)\n")
    monkeypatch.chdir(tmp_path)
    res = run("leaderboard", "-n", 10, "--families", "dcgan", "--no-reference-rows", "-q", "--out", tmp_path / "o",
              "--add", "mine=py:gb_test_sampler_mod:make")
    assert res.exit_code == 0, res.stderr
    assert "mine" in _rows(tmp_path / "o")
    import sys

    assert str(tmp_path) not in sys.path  # the working folder is on the path only while importing


def test_a_row_of_repeated_images_is_refused(stores, tmp_path):  # noqa: F811
    import numpy as np

    x = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    x[5:] = x[:5]
    np.savez(tmp_path / "dup.npz", images=x)
    res = run("leaderboard", "-n", 10, "--families", "dcgan", "--no-reference-rows", "-q", "--out", tmp_path / "o",
              "--add", f"dup={tmp_path / 'dup.npz'}")
    assert res.exit_code == 2 and "--add dup" in res.stderr and "5 of 10 images repeat" in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_cyclegan_row_translates_each_held_out_source_once():
    from genbench.baselines.board import baseline_row_specs

    (spec,) = baseline_row_specs(["cyclegan"])
    source = spec.make(spec.n or 10_000, 0)
    assert spec.n == len(source) and spec.n >= 100 and source.repeats() == 0
    assert (spec.target_split, spec.target_class) == ("fashion-mnist:test", 5)
    assert {"train_steps", "train_device", "train_seconds"} <= set(spec.extra)


def test_a_row_as_large_as_its_reference_gets_a_kid_interval_that_is_one(stores):  # noqa: F811
    """A row whose n equals its reference's (cyclegan: 1,000 translations against the 1,000 held-out sandals; here
    6 images against the 6 of class 5) would draw the whole of both sets as every KID subset, a zero-width
    "interval"; the board halves the subset size there, so the subsets differ and the interval has a width."""
    import numpy as np

    from genbench.baselines.board import BOARD
    from genbench.leaderboard import MetricPlan, RowSpec, score_rows
    from genbench.sources.arrays import ArraySource

    images = np.random.default_rng(7).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    spec = RowSpec("six", "baseline", lambda n, seed: ArraySource(images), target_class=5,
                   target_split="fashion-mnist:test", n=6)
    (row,) = score_rows([spec], 10, 0, plans=[MetricPlan("fmnist-cnn", ("fd", "kid"))], bootstrap=20, board=BOARD)[0]
    kid = row.metrics["kid_fmnist"]
    assert row.n == 6 and kid["subset_size"] == 3
    lo, hi = kid["ci95"]
    assert hi - lo > 1e-6 * abs(kid["mean"])
