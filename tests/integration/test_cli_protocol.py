"""``genbench score --protocol``: ADM's table from an ADM sample batch and reference batch (seeded random Inception
weights), checked against plain computations on the same features; and every refusal, with exit code 2."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genbench import protocols
from genbench.cli.app import main
from genbench.features.inception import build_inception, random_state_dict
from genbench.stats.feature_stats import FeatureStats
from genbench.stats.io import save_stats

N_GEN, N_REF = 5, 4


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "random-inception.pth"
    state = random_state_dict(17)
    state["fc.weight"] = state["fc.weight"] * 0.02  # softer predictions: an Inception Score away from 1
    torch.save(state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """An ADM sample batch and a reference batch (arr_0 + mu/sigma/mu_s/sigma_s) of small random images."""
    root = tmp_path_factory.mktemp("adm")
    rng = np.random.default_rng(5)
    gen = rng.integers(0, 256, (N_GEN, 24, 20, 3), dtype=np.uint8)
    ref = np.clip(rng.normal(120, 50, (N_REF, 24, 20, 3)), 0, 255).astype(np.uint8)
    stats = {}
    for key, dim in (("", 2048), ("_s", 2023)):
        a = rng.normal(size=(dim, 8)) * 0.3
        stats["mu" + key] = np.abs(rng.normal(size=dim)) * 0.5
        stats["sigma" + key] = a @ a.T + 0.05 * np.eye(dim)
    np.savez(root / "samples.npz", arr_0=gen)
    np.savez(root / "ref.npz", arr_0=ref, **stats)
    return root, gen, ref, stats


@pytest.fixture()
def small_adm(monkeypatch):
    """ADM's protocol with splits, k and reference size small enough for six images (registered for one test)."""
    name = "adm-test-small"
    monkeypatch.setitem(protocols.PROTOCOLS._entries, name, dataclasses.replace(
        protocols.get_protocol("adm"), name=name, is_split_size=3, pr_k=2, pr_reference_size=N_REF))
    return name


def _plain_fd(mu1, s1, mu2, s2) -> float:
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(root @ s2 @ root)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


@pytest.mark.slow
def test_adm_table_from_batches_equals_plain_computations(weights, batches, small_adm):
    root, gen, ref, stats = batches
    res = run("score", root / "samples.npz", "--protocol", small_adm, "--ref", root / "ref.npz", "--weights",
              weights[0], "--allow-unverified-weights", "--no-cache", "--json", root / "out.json", "-q")
    assert res.exit_code == 0, res.output
    labels = [line.split(":")[0] for line in res.stdout.strip().splitlines()]
    assert labels == ["Inception Score", "FID", "sFID", "Precision", "Recall"]
    doc = json.loads((root / "out.json").read_text())
    m, prov = doc["metrics"], doc["provenance"]
    assert prov["protocol"] == small_adm and prov["preprocessing"] == "tf1-bilinear" and prov["layer"] == "pool3"

    # The same network on the same images (NHWC -> NCHW), then every number computed plainly here.
    net = build_inception(weights=weights[0], allow_unverified=True, layer="pool3+spatial")
    out_g = net(torch.from_numpy(gen).permute(0, 3, 1, 2).contiguous())
    out_r = net(torch.from_numpy(ref).permute(0, 3, 1, 2).contiguous())
    fg, fr = out_g["features"].double().numpy(), out_r["features"].double().numpy()
    pool_g, spat_g, pool_r = fg[:, :2048], fg[:, 2048:], fr[:, :2048]
    fid = _plain_fd(pool_g.mean(0), np.cov(pool_g, rowvar=False), stats["mu"], stats["sigma"])
    sfid = _plain_fd(spat_g.mean(0), np.cov(spat_g, rowvar=False), stats["mu_s"], stats["sigma_s"])
    assert m["fid"]["value"] == pytest.approx(fid, rel=1e-6)
    assert m["sfid"]["value"] == pytest.approx(sfid, rel=1e-6)
    logits = out_g["logits"].double().numpy()  # pool3 @ W, no bias (ADM's _create_softmax_graph)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = [np.exp(np.mean(np.sum(part * (np.log(part) - np.log(part.mean(0, keepdims=True))), 1)))
              for part in (p[0:3], p[3:5])]  # split size 3: 3 + 2
    assert m["is"]["mean"] == pytest.approx(float(np.mean(scores)), rel=1e-6) and m["is"]["splits"] == 2
    assert m["is"]["mean"] > 1.001

    def sq(a, b):
        return ((a[:, None] - b[None]) ** 2).sum(-1)

    r_ref, r_gen = np.sort(sq(pool_r, pool_r), 1)[:, 2], np.sort(sq(pool_g, pool_g), 1)[:, 2]
    assert m["precision-adm"]["value"] == pytest.approx(float((sq(pool_g, pool_r) <= r_ref[None]).any(1).mean()))
    assert m["recall-adm"]["value"] == pytest.approx(float((sq(pool_r, pool_g) <= r_gen[None]).any(1).mean()))


def test_contradicting_option_is_refused_naming_both(weights, batches):
    root = batches[0]
    res = run("score", root / "samples.npz", "--protocol", "adm", "--ref", root / "ref.npz", "--preprocessing",
              "pil-bicubic", "--weights", weights[0], "--allow-unverified-weights", "-q")
    assert res.exit_code == 2
    assert "--preprocessing pil-bicubic contradicts --protocol adm" in res.stderr and "tf1-bilinear" in res.stderr


def test_fewer_samples_than_the_is_split_size_exit_2_before_extraction(weights, batches):
    root = batches[0]
    res = run("score", root / "samples.npz", "--protocol", "adm", "--ref", root / "ref.npz", "--weights", weights[0],
              "--allow-unverified-weights", "-q")
    assert res.exit_code == 2 and "at least 5000 generated samples" in res.stderr and f"has {N_GEN}" in res.stderr


@pytest.mark.parametrize("arrays, message", [
    ({"images_0": np.zeros((2, 4, 4, 3), np.uint8)}, "'arr_0'"),
    ({"arr_0": np.zeros((2, 4, 4, 3), np.float64)}, "dtype float64"),
    ({"arr_0": np.zeros((2, 3, 4, 4), np.uint8)}, "NHWC"),
])
def test_bad_sample_batch_exit_2(weights, batches, tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    res = run("score", tmp_path / "bad.npz", "--protocol", "adm", "--ref", batches[0] / "ref.npz", "--weights",
              weights[0], "--allow-unverified-weights", "-q")
    assert res.exit_code == 2 and message in res.stderr and "bad.npz" in res.stderr


def test_reference_made_under_another_protocol_is_refused(weights, batches, tmp_path):
    feats = np.random.default_rng(0).normal(size=(10, 2048))
    meta = {"extractor": "inception-v3", "weights_sha256": weights[1], "layer": "pool3",
            "preprocessing": "tf1-bilinear", "feature_dim": 2048, "precision": "float32", "protocol": "edm2"}
    save_stats(tmp_path / "edm2-stats.npz", FeatureStats.from_features(feats), meta)
    res = run("score", batches[0] / "samples.npz", "--protocol", "ttur", "--ref", tmp_path / "edm2-stats.npz",
              "--weights", weights[0], "--allow-unverified-weights", "-q")
    assert res.exit_code == 2
    assert "protocol='edm2'" in res.stderr and "protocol='ttur'" in res.stderr


# ----------------------------------------------------------------------------- catalogue references


def _adm64_batch(path, n=5):
    rng = np.random.default_rng(8)
    arrays = {"arr_0": rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)}
    for key, dim in (("", 2048), ("_s", 2023)):
        a = rng.normal(size=(dim, 4))
        arrays["mu" + key], arrays["sigma" + key] = rng.normal(size=dim), a @ a.T + np.eye(dim)
    np.savez(path, **arrays)
    return arrays


def test_catalogue_adm_batch_is_read_as_a_reference_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    arrays = _adm64_batch(tmp_path / "VIRTUAL_imagenet64_labeled.npz")
    res = run("ref", "fetch", "adm/VIRTUAL_imagenet64_labeled", "--from", tmp_path / "VIRTUAL_imagenet64_labeled.npz",
              "-q")
    assert res.exit_code == 0, res.output
    ref_in, layers, info = protocols._open_reference("adm/VIRTUAL_imagenet64_labeled", protocols.get_protocol("adm"),
                                                     protocols.ExtractOptions(progress=False))
    assert len(ref_in.source) == 5 and "adm_reference_batch" in info
    assert np.allclose(layers["pool3"].mean(), arrays["mu"]) and np.allclose(layers["spatial"].mean(), arrays["mu_s"])
    # made under adm: another protocol is refused, naming both, before anything is extracted
    res = run("score", tmp_path / "VIRTUAL_imagenet64_labeled.npz", "--protocol", "ttur", "--ref",
              "adm/VIRTUAL_imagenet64_labeled", "-q")
    assert res.exit_code == 2 and "protocol='adm'" in res.stderr and "protocol='ttur'" in res.stderr


# ----------------------------------------------------------------------------- EDM2: two feature spaces


def test_edm2_scores_both_feature_spaces_against_its_pickle(tmp_path, monkeypatch):
    """EDM2's plumbing with two fast stand-in networks: FID's space and FD_DINOv2's, each against its statistics
    in one EDM2 pickle ({'num_images', 'fid': {mu, sigma}, 'fd_dinov2': {mu, sigma}})."""
    import pickle

    from genbench.features.base import EXTRACTORS, MetricNames
    from genbench.metrics.fid import frechet_distance
    from tests.conftest import TinyExtractor, make_images

    class TinyB(TinyExtractor):
        name = "test-tiny-b"
        metric_names = MetricNames("fd_tinyb", "is_tinyb", "kid_tinyb")

    # registered for this test only (the registries are process-wide)
    monkeypatch.setitem(EXTRACTORS._entries, "test-tiny-b",
                        lambda weights=None, preprocessing=None, device="cpu": TinyB().to(device))
    name = "edm2-test-tiny"
    monkeypatch.setitem(protocols.PROTOCOLS._entries, name, dataclasses.replace(
        protocols.get_protocol("edm2"), name=name, extractor="test-tiny", preprocessing="avgpool8",
        second=("test-tiny-b", "avgpool8", "fd"), num_samples=None))
    images = make_images(40, seed=2)
    np.savez(tmp_path / "gen.npz", images=images)
    rng = np.random.default_rng(1)
    spaces = {}
    for key in ("fid", "fd_dinov2"):
        f = rng.normal(size=(50, 16)) * 0.2 + 0.3
        spaces[key] = {"mu": f.mean(0), "sigma": np.cov(f, rowvar=False)}
    with open(tmp_path / "img64.pkl", "wb") as fh:
        pickle.dump({"num_images": 50, **spaces}, fh)
    res = run("score", tmp_path / "gen.npz", "--protocol", name, "--ref", tmp_path / "img64.pkl", "--json",
              tmp_path / "out.json", "-q")
    assert res.exit_code == 0, res.output
    assert [line.split(":")[0] for line in res.stdout.strip().splitlines()] == ["FID", "FD_DINOv2"]
    doc = json.loads((tmp_path / "out.json").read_text())
    with torch.no_grad():
        feats = TinyExtractor()(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())["features"].double().numpy()
    for metric, key in (("fd_tiny", "fid"), ("fd_tinyb", "fd_dinov2")):
        expected = frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), spaces[key]["mu"], spaces[key]["sigma"])
        assert doc["metrics"][metric]["value"] == pytest.approx(expected, rel=1e-6), metric
    assert doc["provenance"]["protocol"] == name
    assert doc["provenance"]["second_feature_space"]["extractor"] == "test-tiny-b"


def test_sfid_against_a_reference_without_spatial_statistics_exit_2_before_extraction(weights, batches, tmp_path,
                                                                                     small_adm):
    feats = np.random.default_rng(0).normal(size=(10, 2048))
    meta = {"extractor": "inception-v3", "weights_sha256": weights[1], "layer": "pool3",
            "preprocessing": "tf1-bilinear", "feature_dim": 2048, "precision": "float32"}
    save_stats(tmp_path / "pool3.npz", FeatureStats.from_features(feats), meta)
    res = run("score", batches[0] / "samples.npz", "--protocol", small_adm, "--metrics", "fid,sfid", "--ref",
              tmp_path / "pool3.npz", "--weights", weights[0], "--allow-unverified-weights", "-q")
    assert res.exit_code == 2 and "spatial statistics" in res.stderr


# ----------------------------------------------------------------------------- the spatial layer on the CLI


@pytest.mark.slow
def test_extract_and_stats_of_the_spatial_layer_carry_it_and_are_not_mixed_with_pool3(weights, tmp_path):
    from genbench.stats.io import FeatureFile, load_features, load_stats, save_features

    images = np.random.default_rng(4).integers(0, 256, (3, 30, 30, 3), dtype=np.uint8)
    np.savez(tmp_path / "imgs.npz", images=images)
    common = ("--extractor", "inception-v3", "--layer", "spatial", "--weights", weights[0],
              "--allow-unverified-weights", "--no-cache", "-q")
    res = run("extract", tmp_path / "imgs.npz", "-o", tmp_path / "f.npz", *common)
    assert res.exit_code == 0, res.output
    ff = load_features(tmp_path / "f.npz")
    assert ff.features.shape == (3, 2023) and ff.logits is None
    assert ff.meta["layer"] == "spatial" and ff.meta["feature_dim"] == 2023
    res = run("stats", tmp_path / "imgs.npz", "-o", tmp_path / "s.npz", *common)
    assert res.exit_code == 0, res.output
    saved = load_stats(tmp_path / "s.npz")
    assert saved.meta["layer"] == "spatial" and np.allclose(saved.stats.mean(), ff.features.mean(0), atol=1e-5)
    pool3 = {**{k: ff.meta[k] for k in ("extractor", "weights_sha256", "preprocessing", "precision")},
             "layer": "pool3", "feature_dim": 2048}
    save_features(tmp_path / "g.npz", FeatureFile(np.random.default_rng(0).normal(size=(4, 2048)).astype(np.float32),
                                                 None, ["a", "b", "c", "d"], None, pool3))
    res = run("score", tmp_path / "g.npz", "--ref", tmp_path / "s.npz", "--metrics", "fd", "-q")
    assert res.exit_code == 2 and "layer='pool3'" in res.stderr and "layer='spatial'" in res.stderr


@pytest.mark.slow
def test_stats_under_adm_keep_the_spatial_statistics_and_serve_sfid(weights, batches, tmp_path, small_adm):
    from genbench.stats.io import load_stats

    root, gen, ref, _ = batches
    np.savez(tmp_path / "imgs.npz", images=ref)
    common = ("--protocol", small_adm, "--weights", weights[0], "--allow-unverified-weights", "--no-cache", "-q")
    res = run("stats", tmp_path / "imgs.npz", "-o", tmp_path / "s.npz", *common)
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        assert {"mu", "sigma", "mu_s", "sigma_s"} <= set(data.files)
        mu_s, sigma_s = data["mu_s"], data["sigma_s"]
    saved = load_stats(tmp_path / "s.npz")
    spatial = saved.meta["layers"]["spatial"]
    assert (spatial["layer"], spatial["feature_dim"], spatial["keys"]) == ("spatial", 2023, ["mu_s", "sigma_s"])
    assert spatial["protocol"] == small_adm and spatial["preprocessing"] == "tf1-bilinear"
    assert saved.meta["layer"] == "pool3" and saved.meta["protocol"] == small_adm and set(saved.layers) == {"spatial"}

    # the same network on the same images, computed plainly
    net = build_inception(weights=weights[0], allow_unverified=True, layer="pool3+spatial")
    f_ref = net(torch.from_numpy(ref).permute(0, 3, 1, 2).contiguous())["features"].double().numpy()
    f_gen = net(torch.from_numpy(gen).permute(0, 3, 1, 2).contiguous())["features"].double().numpy()
    scale = np.abs(f_ref[:, 2048:]).mean()
    assert np.abs(mu_s - f_ref[:, 2048:].mean(0)).max() <= 1e-4 * scale
    assert np.abs(sigma_s - np.cov(f_ref[:, 2048:], rowvar=False)).max() <= 1e-4 * scale ** 2

    res = run("score", root / "samples.npz", "--metrics", "fid,sfid", "--ref", tmp_path / "s.npz", "--json",
              tmp_path / "out.json", *common)
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "out.json").read_text())["metrics"]
    sg = f_gen[:, 2048:]
    assert m["sfid"]["value"] == pytest.approx(_plain_fd(sg.mean(0), np.cov(sg, rowvar=False), mu_s, sigma_s), rel=1e-5)
