"""The CLI through click's runner: score, extract, stats, and their exit codes."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import genbench
from genbench.cli.app import main
from genbench.metrics.fid import frechet_distance
from genbench.metrics.inception_score import inception_score
from tests.conftest import TinyExtractor

TINY = ["--extractor", "test-tiny", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_score_json_matches_independent_computation(image_arrays, tmp_path):
    gen, ref = image_arrays
    out = tmp_path / "result.json"
    res = run("score", gen, "--ref", ref, "--json", out, "--kid-subset-size", 50, "--kid-subsets", 10, *TINY)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    # Recompute with the network applied directly, and numpy's mean/cov.
    import torch

    net = TinyExtractor()
    with torch.no_grad():
        fg = net(torch.from_numpy(np.load(gen)).permute(0, 3, 1, 2).contiguous())
        fr = net(torch.from_numpy(np.load(ref)).permute(0, 3, 1, 2).contiguous())
    a, b = fg["features"].double().numpy(), fr["features"].double().numpy()
    expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert doc["metrics"]["fd_tiny"]["value"] == pytest.approx(expected, rel=1e-6)
    assert doc["metrics"]["is_tiny"]["mean"] == pytest.approx(inception_score(fg["logits"].numpy(), 10, seed=0).mean, rel=1e-6)
    assert set(doc["metrics"]) == {"fd_tiny", "is_tiny", "kid_tiny"}
    prov = doc["provenance"]
    assert prov["extractor"] == "test-tiny" and prov["inputs"]["generated"]["n"] == 100 and prov["seed"] == 0


def test_same_seed_same_numbers_and_json_to_stdout(image_arrays):
    gen, ref = image_arrays
    args = ("score", gen, "--ref", ref, "--json", "-", "--kid-subset-size", 50, "--kid-subsets", 5, "--seed", 7, *TINY)
    first, second = json.loads(run(*args).stdout), json.loads(run(*args).stdout)
    assert first["metrics"] == second["metrics"]


def test_batch_size_and_workers_do_not_change_results(image_arrays):
    gen, ref = image_arrays
    base = ("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd,is", *TINY)
    a = json.loads(run(*base, "--batch-size", 7).stdout)["metrics"]
    b = json.loads(run(*base, "--batch-size", 64, "--workers", 2).stdout)["metrics"]
    # float32 kernels may round differently at another batch size (~1e-7); statistics are exact in float64.
    assert a["fd_tiny"]["value"] == pytest.approx(b["fd_tiny"]["value"], rel=1e-6)
    assert a["is_tiny"]["mean"] == pytest.approx(b["is_tiny"]["mean"], rel=1e-6)


def test_stats_and_feature_files_give_the_same_fd(image_arrays, tmp_path):
    gen, ref = image_arrays
    stats, feats = tmp_path / "ref_stats.npz", tmp_path / "gen_feats.npz"
    assert run("stats", ref, "-o", stats, *TINY).exit_code == 0
    assert run("extract", gen, "-o", feats, *TINY).exit_code == 0
    with np.load(feats, allow_pickle=False) as data:
        assert data["features"].shape == (100, 16) and data["logits"].shape == (100, 5) and len(data["files"]) == 100
    direct = json.loads(run("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY).stdout)
    via_files = json.loads(run("score", feats, "--ref", stats, "--json", "-", "--quiet").stdout)
    assert set(via_files["metrics"]) == {"fd_tiny", "is_tiny"}  # no KID: the reference keeps only mean and covariance
    assert via_files["metrics"]["fd_tiny"]["value"] == pytest.approx(direct["metrics"]["fd_tiny"]["value"], rel=1e-6)


def test_folder_of_pngs_scores_like_the_array(image_arrays, tmp_path):
    gen, ref = image_arrays
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, im in enumerate(np.load(gen)):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    a = json.loads(run("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY).stdout)
    b = json.loads(run("score", folder, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY).stdout)
    assert a["metrics"]["fd_tiny"]["value"] == pytest.approx(b["metrics"]["fd_tiny"]["value"], rel=1e-9)


def test_bootstrap_interval_brackets_the_value(image_arrays):
    gen, ref = image_arrays
    doc = json.loads(run("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", "--bootstrap", 50, *TINY).stdout)
    fd = doc["metrics"]["fd_tiny"]
    assert fd["ci95"][0] < fd["value"] < fd["ci95"][1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--metrics", "fid"), "belongs to another extractor"),
        (("--metrics", "nonsense"), "unknown metric"),
        (("--is-splits", "500"), "--is-splits"),
        (("--kid-subset-size", "5000"), "--kid-subset-size"),
        (("--extractor", "nope"), "unknown extractor"),
    ],
)
def test_bad_options_exit_2_with_a_message(image_arrays, extra, message):
    gen, ref = image_arrays
    args = ["score", gen, "--ref", ref, "--quiet", *extra]
    if "--extractor" not in extra:
        args += ["--extractor", "test-tiny"]
    res = run(*args)
    assert res.exit_code == 2
    assert message in res.stderr


def test_missing_inputs_and_mismatched_statistics_exit_2(image_arrays, tmp_path):
    gen, ref = image_arrays
    res = run("score", tmp_path / "nope", "--ref", ref, *TINY)
    assert res.exit_code == 2 and "nope" in res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("score", empty, "--ref", ref, *TINY)
    assert res.exit_code == 2 and "empty" in res.stderr
    # Statistics whose metadata names other preprocessing are refused, naming the field.
    stats = tmp_path / "s.npz"
    run("stats", ref, "-o", stats, *TINY)
    with np.load(stats, allow_pickle=False) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    meta["preprocessing"] = "something-else"
    arrays["meta"] = np.str_(json.dumps(meta))
    np.savez(stats, **arrays)
    res = run("score", gen, "--ref", stats, *TINY)
    assert res.exit_code == 2 and "preprocessing" in res.stderr


def test_outputs_are_not_overwritten_without_asking(image_arrays, tmp_path):
    gen, ref = image_arrays
    out = tmp_path / "f.npz"
    out.write_bytes(b"user data")
    res = run("extract", gen, "-o", out, *TINY)
    assert res.exit_code == 2 and "--overwrite" in res.stderr
    assert out.read_bytes() == b"user data"
    assert run("extract", gen, "-o", out, "--overwrite", *TINY).exit_code == 0


def test_plain_mu_sigma_file_loads_with_a_warning(image_arrays, tmp_path):
    gen, ref = image_arrays
    stats = tmp_path / "s.npz"
    run("stats", ref, "-o", stats, *TINY)
    with np.load(stats, allow_pickle=False) as data:
        plain = tmp_path / "plain.npz"
        np.savez(plain, mu=data["mu"], sigma=data["sigma"])
    res = run("score", gen, "--ref", plain, "--json", "-", "--metrics", "fd", *TINY)
    assert res.exit_code == 0
    assert "provenance" in res.stderr or "unknown" in res.stderr


def test_pickled_statistics_are_refused(image_arrays, tmp_path):
    gen, _ = image_arrays
    evil = tmp_path / "evil.npz"
    np.savez(evil, mu=np.zeros(16), sigma=np.array([{"a": 1}], dtype=object))
    res = run("score", gen, "--ref", evil, *TINY)
    assert res.exit_code == 2 and "pickle" in res.stderr


def test_python_api_mirrors_cli(image_arrays):
    import genbench

    gen, ref = image_arrays
    images = np.load(gen)
    result = genbench.score(images, str(ref), metrics=["fd"], extractor="test-tiny")
    cli = json.loads(run("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY).stdout)
    assert result.value("fd_tiny") == pytest.approx(cli["metrics"]["fd_tiny"]["value"], rel=1e-12)
    assert result.to_dict()["metrics"].keys() == cli["metrics"].keys()


def test_precision_recall_density_coverage_through_the_cli(image_arrays):
    from genbench.metrics.prdc import prdc

    gen, ref = image_arrays
    doc = json.loads(run("score", gen, "--ref", ref, "--json", "-", "--metrics", "precision,recall,density,coverage",
                         "--pr-k", 3, "--dc-k", 5, *TINY).stdout)
    # The features as the pipeline extracts them (batches of 64): a single direct batch may differ in the last
    # float32 bits, and this data has pairs within 1e-4 of a ball boundary.
    fg = genbench.extract(str(gen), extractor="test-tiny").features
    fr = genbench.extract(str(ref), extractor="test-tiny").features
    expected = prdc(fr, fg, precision_recall_k=3, density_coverage_k=5)
    for name in ("precision", "recall", "density", "coverage"):
        assert doc["metrics"][name]["value"] == pytest.approx(getattr(expected, name), abs=1e-9)


def test_pr_k_changes_precision_as_a_plain_k_nn_computation_says(image_arrays):
    from scipy.spatial.distance import cdist

    gen, ref = image_arrays
    fg = genbench.extract(str(gen), extractor="test-tiny").features.astype(np.float64)
    fr = genbench.extract(str(ref), extractor="test-tiny").features.astype(np.float64)
    real_to_real, real_to_gen = cdist(fr, fr), cdist(fr, fg)

    def plain_precision(k: int) -> float:
        """Kynkaanniemi et al.: the share of generated samples inside some real sample's k-NN ball (itself excluded)."""
        radii = np.sort(real_to_real, axis=1)[:, k]  # column 0 is the sample itself
        return float((real_to_gen < radii[:, None]).any(axis=0).mean())

    got = {}
    for k in (1, 3, 10):
        doc = json.loads(run("score", gen, "--ref", ref, "--json", "-", "--metrics", "precision", "--pr-k", k,
                             *TINY).stdout)
        got[k] = doc["metrics"]["precision"]["value"]
        assert got[k] == pytest.approx(plain_precision(k), abs=1e-9)
    assert got[1] < got[3] < got[10]  # bigger balls hold more generated samples


def test_allow_unverified_weights_is_refused_for_an_extractor_without_pinned_downloads(image_arrays):
    gen, ref = image_arrays
    res = run("score", gen, "--ref", ref, "--allow-unverified-weights", *TINY)
    assert res.exit_code == 2 and "--allow-unverified-weights" in res.stderr
