"""``genbench probe`` through click's runner: JSON fields, files written, exit codes of every refusal."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from genbench.api import extract
from genbench.cli.app import main
from genbench.stats.io import save_features
from tests.conftest import make_images, needs_fashion_mnist

TINY = ["--extractor", "test-tiny", "--quiet", "--no-cache"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    train = make_images(500, seed=0)
    paths = {"train": root / "train.npy", "test": root / "test.npy", "copies": root / "copies.npy",
             "fresh": root / "fresh.npy", "few": root / "few.npy"}
    np.save(paths["train"], train)
    np.save(paths["test"], make_images(250, seed=1))
    np.save(paths["copies"], train[np.random.default_rng(3).choice(500, 150, replace=False)])
    np.save(paths["fresh"], make_images(150, seed=9))
    np.save(paths["few"], make_images(15, seed=4))
    paths["root"] = root
    return paths


def memorization(arrays, samples, *extra):
    return run("probe", "memorization", arrays[samples], "--train", arrays["train"], "--test", arrays["test"],
               "--n-cells", 5, *TINY, *extra)


# ----------------------------------------------------------------------------- memorization


def test_memorization_json_and_gallery_for_copies(arrays, tmp_path):
    gallery = tmp_path / "gallery.png"
    res = memorization(arrays, "copies", "--json", "-", "--gallery", gallery, "--gallery-count", 4)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "copying"
    for name in ("ct", "memorized_fraction", "authenticity", "train_test_gap"):
        assert isinstance(doc[name], float)
    assert doc["memorized_fraction"] == 1.0 and doc["authenticity"] == 0.0
    assert doc["heldout"]["memorized_fraction"] == 0.0
    assert {"ct_copying", "ct_underfitting", "nn_ratio_excess", "authenticity_drop", "gap_excess",
            "ratio_threshold"} <= set(doc["thresholds"])
    prov = doc["provenance"]
    assert prov["extractor"] == "test-tiny" and prov["inputs"]["generated"]["n"] == 150
    assert prov["inputs"]["train"]["n"] == 500 and prov["options"]["n_cells"] == 5
    assert len(doc["suspicious"]) == 4 and doc["gallery"] == str(gallery)
    with Image.open(gallery) as img:
        assert img.format == "PNG"


def plain_ct_one_cell(train: np.ndarray, test: np.ndarray, generated: np.ndarray) -> float:
    """C_T with a single cell, written out: each sample's distance to its nearest training point, then the
    Mann-Whitney U of generated against test (scipy) Z-scored with Meehan et al.'s continuity correction."""
    from scipy.stats import mannwhitneyu

    def nearest(x):
        return np.sqrt(((x[:, None, :].astype(np.float64) - train[None].astype(np.float64)) ** 2).sum(-1)).min(1)

    m, n = len(generated), len(test)
    u = mannwhitneyu(nearest(generated), nearest(test)).statistic  # pairs with generated > test, ties 1/2
    return (u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12)


@pytest.mark.parametrize("samples, max_train", [("fresh", None), ("copies", 250)])
def test_memorization_ct_equals_a_plain_computation(arrays, samples, max_train):
    limit = ("--max-train", max_train) if max_train else ()
    res = run("probe", "memorization", arrays[samples], "--train", arrays["train"], "--test", arrays["test"],
              "--n-cells", 1, "--seed", 4, *limit, "--json", "-", *TINY)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    features = {k: extract(str(arrays[k]), extractor="test-tiny", cache=False).features
                for k in ("train", "test", samples)}
    train = features["train"]
    if max_train:  # the documented draw: a sorted seeded subsample, default_rng([seed, 2]) (stream 2: --train)
        keep = np.sort(np.random.default_rng([4, 2]).choice(len(train), max_train, replace=False))
        train = train[keep]
        assert doc["provenance"]["inputs"]["train"]["n"] == max_train
    expected = plain_ct_one_cell(train, features["test"], features[samples])
    assert doc["ct"] == pytest.approx(expected, rel=1e-9)
    if samples == "copies":  # about half of the copied images lost their original: less copying than with all
        assert -30 < expected < -3 and 0.3 < doc["memorized_fraction"] < 0.7


def test_memorization_fail_on_copying_exit_codes(arrays):
    assert memorization(arrays, "copies", "--fail-on-copying").exit_code == 1
    assert memorization(arrays, "fresh", "--fail-on-copying").exit_code == 0


def test_memorization_independent_draws_and_same_seed(arrays):
    first = json.loads(memorization(arrays, "fresh", "--json", "-", "--seed", 3).stdout)
    second = json.loads(memorization(arrays, "fresh", "--json", "-", "--seed", 3).stdout)
    assert first["verdict"] == "no-evidence"
    for key in ("ct", "memorized_fraction", "authenticity", "train_test_gap", "details"):
        assert first[key] == second[key]


def test_memorization_text_output_prints_the_thresholds(arrays):
    res = run("probe", "memorization", arrays["copies"], "--train", arrays["train"], "--test", arrays["test"],
              "--n-cells", 5, "--extractor", "test-tiny", "--no-cache")
    assert res.exit_code == 0
    # The summary is the result: on stdout, progress and messages on stderr.
    assert "verdict: copying" in res.stdout and "< -3" in res.stdout and "> 0.01" in res.stdout
    assert "verdict:" not in res.stderr


def test_memorization_refusals_exit_2(arrays, tmp_path):
    few = memorization(arrays, "few")
    assert few.exit_code == 2 and "at least 21 are needed" in few.stderr
    cells = memorization(arrays, "copies", "--n-cells", 10000)
    assert cells.exit_code == 2 and "--n-cells" in cells.stderr
    chunk = memorization(arrays, "copies", "--chunk-size", 5000, "--max-memory", "1M")
    assert chunk.exit_code == 2 and "chunk_size=5000" in chunk.stderr
    bad_mem = memorization(arrays, "copies", "--max-memory", "lots")
    assert bad_mem.exit_code == 2 and "--max-memory" in bad_mem.stderr
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    again = memorization(arrays, "copies", "--json", existing)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_memorization_refuses_train_and_test_from_different_extractors(arrays, tmp_path):
    train_ff = extract(str(arrays["train"]), extractor="test-tiny", cache=False)
    test_ff = extract(str(arrays["test"]), extractor="test-tiny", cache=False)
    test_ff.meta["weights_sha256"] = "0" * 64
    save_features(tmp_path / "train.npz", train_ff)
    save_features(tmp_path / "test.npz", test_ff)
    res = run("probe", "memorization", arrays["copies"], "--train", tmp_path / "train.npz",
              "--test", tmp_path / "test.npz", "--n-cells", 5, *TINY)
    assert res.exit_code == 2
    assert "weights_sha256" in res.stderr and "train input" in res.stderr


# ----------------------------------------------------------------------------- sensitivity


def test_sensitivity_json_csv_and_plots(arrays, tmp_path):
    out = tmp_path / "sens"
    res = run("probe", "sensitivity", "--samples", arrays["test"], "--ref", arrays["train"],
              "--transforms", "brightness,gaussian-blur", "--strengths", "brightness=0,0.1,0.3",
              "--strengths", "gaussian-blur=0,1,2", "--metrics", "fd,kid", "--kid-subset-size", 50,
              "--kid-subsets", 5, "--max-samples", 200, "--out", out, "--json", "-", *TINY)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc["curves"]) == {"brightness", "gaussian-blur"}
    curve = doc["curves"]["brightness"]["fd_tiny"]
    assert [s for s, _ in curve] == [0.0, 0.1, 0.3]
    assert doc["monotone"]["brightness"]["fd_tiny"] is True
    assert isinstance(doc["monotone"]["gaussian-blur"]["kid_tiny"], bool)
    assert doc["provenance"]["inputs"]["samples"]["n"] == 200
    assert sorted(p.name for p in out.iterdir()) == ["sensitivity.csv", "sensitivity_fd_tiny.png",
                                                     "sensitivity_kid_tiny.png"]


def test_sensitivity_refusals_exit_2(arrays):
    base = ("probe", "sensitivity", "--samples", arrays["test"], "--ref", arrays["train"], *TINY)
    unknown = run(*base, "--transforms", "swirl")
    assert unknown.exit_code == 2 and "gaussian-blur" in unknown.stderr  # lists the valid names
    bad = run(*base, "--transforms", "shift", "--strengths", "0,x")
    assert bad.exit_code == 2 and "--strengths" in bad.stderr
    nothing = run(*base, "--transforms", "none")
    assert nothing.exit_code == 2 and "nothing to do" in nothing.stderr


# ----------------------------------------------------------------------------- modes


def plain_kl_to_uniform(modes: np.ndarray, n_modes: int) -> float:
    """KL(p || uniform over n_modes) in nats of the empirical distribution of ``modes``, term by term."""
    values, counts = np.unique(modes, return_counts=True)
    return sum(c / len(modes) * math.log(c / len(modes) * n_modes) for c in counts)


def test_modes_cli_single_channel(arrays):
    from tests.unit.test_probes_modes import stacked_from_classes

    classes = np.repeat([0, 1, 1, 2, 2, 2, 7], 9)  # 63 grey images of 4 classes, unevenly
    path = arrays["root"] / "grey.npy"
    np.save(path, stacked_from_classes(np.stack([classes] * 3, axis=1)))
    res = run("probe", "modes", path, "--channels", 1, "--ref", "none", "--extractor", "test-brightness10", "--quiet",
              "--no-cache", "--json", "-")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["n_modes"] == 10 and doc["modes_covered"] == 4
    # p = (1, 2, 3, 1) / 7 over 10 classes
    expected = sum(k / 7 * math.log(k / 7 * 10) for k in (1, 2, 3, 1))
    assert doc["kl_to_uniform"] == pytest.approx(expected, rel=1e-12)
    assert doc["generated"]["histogram"] == [9, 18, 27, 0, 0, 0, 0, 9, 0, 0]
    bad = run("probe", "modes", path, "--channels", 2, "--ref", "none", "--extractor", "test-brightness10", "-q")
    assert bad.exit_code == 2 and "--channels" in bad.stderr


def test_modes_cli_json(arrays):
    from tests.unit.test_probes_modes import stacked_from_classes  # also registers the test-brightness10 classifier

    classes = np.random.default_rng(0).integers(0, 2, size=(64, 3))
    path = arrays["root"] / "stacked.npy"
    np.save(path, stacked_from_classes(classes))
    res = run("probe", "modes", path, "--ref", "none", "--extractor", "test-brightness10", "--quiet", "--no-cache",
              "--json", "-")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["modes_covered"] == len(np.unique(classes @ [100, 10, 1])) and doc["n_modes"] == 1000
    assert doc["reference"] is None
    assert doc["kl_to_uniform"] == pytest.approx(plain_kl_to_uniform(classes @ [100, 10, 1], 1000), rel=1e-12)
    refused = run("probe", "modes", path, "--ref", "none", "--extractor", "test-tiny", "--quiet", "--no-cache",
                  "--min-confidence", 0.5)
    assert refused.exit_code == 2 and "10-class" in refused.stderr


# ----------------------------------------------------------------------------- results history


def test_probe_reports_are_recorded_in_the_history(arrays, tmp_path):
    from genbench.results.history import History

    hist = tmp_path / "h.sqlite"
    res = memorization(arrays, "copies", "--json", tmp_path / "m.json", "--history", hist, "--name", "copier")
    assert res.exit_code == 0, res.output
    assert "recorded as #" not in res.output  # --quiet silences messages
    assert "verdict: copying" in res.stdout  # but never the result
    report = json.loads((tmp_path / "m.json").read_text())
    (record,) = History(hist).records()
    assert record.name == "copier" and record.kind == "probe"
    doc = record.document
    assert doc["verdict"] == "copying" and doc["report"] == report
    for stat in ("ct", "memorized_fraction", "authenticity", "train_test_gap"):
        assert doc["metrics"][stat]["value"] == report[stat]
    assert doc["provenance"]["extractor"] == "test-tiny" and "created_at" in doc["provenance"]
    listed = run("results", "list", "--history", hist)
    assert listed.exit_code == 0 and "copier" in listed.stdout


def test_a_bad_history_path_is_refused_before_the_probe_runs(arrays, tmp_path):
    res = memorization(arrays, "copies", "--history", tmp_path)  # a folder, not a database file
    assert res.exit_code == 2 and "--history" in res.stderr


@needs_fashion_mnist  # the default --samples and --ref: the Fashion-MNIST splits
def test_sensitivity_bootstrap_gives_intervals_for_the_error_bars():
    import json as _json

    from click.testing import CliRunner

    from genbench.cli.app import main as _main

    res = CliRunner().invoke(_main, ["probe", "sensitivity", "--max-samples", "60", "--max-reference", "120",
                                     "--transforms", "gaussian-blur", "--strengths", "gaussian-blur=0,1",
                                     "--metrics", "fd", "--bootstrap", "10", "--json", "-", "-q"])
    assert res.exit_code == 0, res.stderr
    points = _json.loads(res.stdout)["points"]
    assert len(points) == 2
    for point in points:
        lo, hi = point["ci95"]
        assert lo <= point["value"] <= hi and lo < hi
