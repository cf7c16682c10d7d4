"""`genbench ref import` of EDM2 statistics pickles and ADM reference batches (synthetic files)."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.stats.reference import get_reference


@pytest.fixture(autouse=True)
def stores(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _gaussian(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    feats = np.random.default_rng(seed).normal(size=(3 * d, d))
    return feats.mean(0), np.cov(feats, rowvar=False)


def _import(path, ref_id, extractor, preprocessing, *extra):
    return run("ref", "import", path, "--id", ref_id, "--dataset", "imagenet", "--split", "512", "--extractor",
               extractor, "--weights-sha256", "declared", "--layer", "x", "--preprocessing", preprocessing, *extra)


def test_edm2_pickle_both_spaces(stores):
    fid, dino = _gaussian(6, 0), _gaussian(5, 1)
    path = stores / "img512.pkl"
    with open(path, "wb") as fh:  # what EDM2's calculate_metrics.py save_stats writes
        pickle.dump({"num_images": 1281167, "fid": {"mu": fid[0], "sigma": fid[1]},
                     "fd_dinov2": {"mu": dino[0], "sigma": dino[1]}}, fh)
    res = _import(path, "img512-dino", "dinov2-vit-l14", "edm2")
    assert res.exit_code == 0, res.output
    entry = get_reference("img512-dino")
    saved = entry.load()
    assert entry.n == 1281167 and entry.preprocessing == "dinov2-torch-bicubic"  # EDM2's default, canonical name
    np.testing.assert_allclose(saved.stats.mean(), dino[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(saved.stats.cov(), dino[1], rtol=1e-10, atol=1e-12)
    assert saved.meta["imported_format"] == "edm2:fd_dinov2"
    res = _import(path, "img512-fid", "inception-v3", "tf1-bilinear")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(get_reference("img512-fid").load().stats.mean(), fid[0], atol=1e-12)
    res = _import(path, "other", "inception-v3", "tf1-bilinear", "--key", "kid")
    assert res.exit_code == 2 and "no statistics 'kid'" in res.output and "fd_dinov2, fid" in res.output


class Evil:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


def test_a_pickle_with_code_is_refused_without_running_it(stores):
    path = stores / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"num_images": 10, "fid": {"mu": Evil(), "sigma": np.eye(2)}}, fh)
    res = _import(path, "evil", "inception-v3", "tf1-bilinear")
    assert res.exit_code == 2
    assert "refuses to load" in res.output and "system" in res.output
    path2 = stores / "objects.pkl"
    with open(path2, "wb") as fh:
        pickle.dump({"fid": {"mu": np.array([1, "a"], dtype=object), "sigma": np.eye(2)}}, fh)
    res = _import(path2, "objects", "inception-v3", "tf1-bilinear")
    assert res.exit_code == 2 and "expected numbers" in res.output


def test_adm_reference_batch_reads_mu_sigma_and_counts_images(stores):
    mu, sigma = _gaussian(4, 2)
    path = stores / "VIRTUAL_tiny.npz"
    images = np.zeros((7, 8, 8, 3), dtype=np.uint8)
    np.savez(path, arr_0=images, mu=mu, sigma=sigma, mu_s=mu[:2], sigma_s=sigma[:2, :2])
    res = _import(path, "adm-tiny", "inception-v3", "tf1-bilinear")
    assert res.exit_code == 0, res.output
    entry = get_reference("adm-tiny")
    assert entry.n == 7
    np.testing.assert_allclose(entry.load().stats.mean(), mu, atol=1e-12)
    shown = json.loads(run("ref", "show", "adm-tiny").output)
    assert shown["extractor"] == "inception-v3"


def test_a_bad_covariance_in_an_edm2_file_is_refused(stores):
    path = stores / "bad.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"num_images": 10, "fid": {"mu": np.zeros(2), "sigma": np.array([[1.0, 0], [0, -1.0]])}}, fh)
    res = _import(path, "bad", "inception-v3", "tf1-bilinear")
    assert res.exit_code == 2 and "negative variance" in res.output


def test_stylegan_biased_statistics_are_converted_exactly_and_scored_divided_by_n(stores):
    """StyleGAN's FeatureStats divides by N; imported as such and scored under --protocol stylegan, FD uses /N on
    both sides: equal to the plain computation with np.cov(bias=True)."""
    from genbench.stats.io import FeatureFile, save_features

    rng = np.random.default_rng(3)
    real = rng.normal(size=(40, 6))
    mu_b, sigma_b = real.mean(0), np.cov(real, rowvar=False, bias=True)
    np.savez(stores / "stylegan.npz", mu=mu_b, sigma=sigma_b)
    res = _import(stores / "stylegan.npz", "ffhq-sg", "inception-v3", "tf1-bilinear", "--n", 40, "--covariance",
                  "biased", "--protocol", "stylegan")
    assert res.exit_code == 0, res.output
    entry = get_reference("ffhq-sg")
    saved = entry.load()
    assert np.allclose(saved.stats.cov(), np.cov(real, rowvar=False), rtol=1e-12, atol=1e-14)  # the same sums
    assert "multiplied by N/(N-1) with N=40" in saved.meta["covariance_import"] and saved.meta["protocol"] == "stylegan"

    gen = rng.normal(size=(30, 6)) * 1.2 + 0.1
    meta = {"extractor": "inception-v3", "layer": "x", "preprocessing": "tf1-bilinear", "weights_sha256": "declared",
            "feature_dim": 6, "protocol": "stylegan"}
    save_features(stores / "gen.npz", FeatureFile(gen.astype(np.float32), None, [str(i) for i in range(30)], None, meta))
    res = run("score", stores / "gen.npz", "--protocol", "stylegan", "--ref", "ffhq-sg", "--json", "-", "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    g = gen.astype(np.float32).astype(np.float64)
    s1, s2 = np.cov(g, rowvar=False, bias=True), sigma_b
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(w)) @ v.T
    expected = ((g.mean(0) - mu_b) ** 2).sum() + np.trace(s1 + s2) - 2 * np.sqrt(np.linalg.eigvalsh(root @ s2 @ root)).sum()
    assert doc["metrics"]["fid"]["value"] == pytest.approx(expected, rel=1e-9)
    assert doc["metrics"]["fid"]["covariance"] == "biased" and doc["provenance"]["protocol"] == "stylegan"
    assert doc["provenance"]["metric_options"]["covariance"] == "biased"
