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
