"""Paper protocols: ADM's precision/recall and IS against plain re-implementations of ADM's evaluator code, the
protocol registry's refusals, ADM batch files, and the covariance conventions."""
from __future__ import annotations

import numpy as np
import pytest

from genbench.config import ExtractOptions, MetricOptions
from genbench.errors import ConfigError, InputError, ReferenceStatsError
from genbench.metrics.adm import adm_precision_recall, manifold_radii
from genbench.metrics.inception_score import inception_score_split_size
from genbench.metrics.registry import biased_cov
from genbench.protocols import PROTOCOLS, apply_extract_protocol, apply_metric_protocol, apply_metrics, get_protocol
from genbench.sources.adm import open_sample_batch
from genbench.stats.adm_batch import open_reference_batch
from genbench.stats.feature_stats import FeatureStats

# ----------------------------------------------------------------------------- ADM's math, written plainly


def _plain_adm_pr(ref: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    """ADM's ManifoldEstimator without batching: squared distances, radius = element k of the sorted row (self
    included at 0), membership <=; precision = samples in the reference manifold, recall = the converse."""
    def sq(a, b):
        return ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)

    r_ref = np.sort(sq(ref, ref), axis=1)[:, k]
    r_gen = np.sort(sq(gen, gen), axis=1)[:, k]
    precision = float(np.mean([(sq(g[None], ref)[0] <= r_ref).any() for g in gen]))
    recall = float(np.mean([(sq(r[None], gen)[0] <= r_gen).any() for r in ref]))
    return precision, recall


def _plain_adm_is(logits: np.ndarray, split_size: int) -> float:
    """ADM's compute_inception_score on softmax(logits), splits range(0, N, split_size)."""
    z = logits.astype(np.float64)
    preds = np.exp(z - z.max(1, keepdims=True))
    preds /= preds.sum(1, keepdims=True)
    scores = []
    for i in range(0, len(preds), split_size):
        part = preds[i:i + split_size]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores))


@pytest.mark.parametrize("k", [1, 3])
def test_adm_precision_recall_equals_the_plain_computation(k):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(700, 12)).astype(np.float32)  # more than one 512-row block
    gen = (rng.normal(size=(300, 12)) * 1.3 + 0.2).astype(np.float32)
    pr = adm_precision_recall(ref, gen, k)
    assert (pr.precision, pr.recall) == _plain_adm_pr(ref, gen, k)
    assert 0.05 < pr.precision < 0.99 and 0.05 < pr.recall < 0.99  # neither trivially 0 nor 1


def test_adm_radius_is_the_kth_neighbour_other_than_itself_and_ties_count_inside():
    pts = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    # squared distances from 0: 0, 1, 9, 36, 100 -> k=3: 36 (the third neighbour other than itself)
    assert manifold_radii(pts, 3)[0] == 36.0
    # a sample exactly on a radius is inside (<=): 6 is at squared distance 36 from 0
    assert adm_precision_recall(pts, np.array([[6.0], [20.0], [17.0], [30.0]]), 1).precision == 0.25
    with pytest.raises(ConfigError, match="more than 3"):
        manifold_radii(pts[:3], 3)


def test_adm_inception_score_equals_the_plain_computation_with_a_short_last_split():
    logits = np.random.default_rng(1).normal(size=(23, 9)) * 3
    spread, splits = inception_score_split_size(logits, 5)
    assert splits == 5  # 5, 5, 5, 5, 3
    assert spread.mean == pytest.approx(_plain_adm_is(logits, 5), rel=1e-12)
    with pytest.raises(ConfigError, match="at least 50"):
        inception_score_split_size(logits, 50)


def test_biased_covariance_divides_by_n():
    x = np.random.default_rng(2).normal(size=(40, 3))
    assert np.allclose(biased_cov(FeatureStats.from_features(x)), np.cov(x, rowvar=False, bias=True), atol=1e-12)


# ----------------------------------------------------------------------------- the registry and its refusals


def test_protocols_are_registered_with_their_published_choices():
    assert set(PROTOCOLS.names()) >= {"adm", "edm2", "clean-fid", "ttur", "stylegan"}
    adm = get_protocol("adm")
    assert (adm.is_split_size, adm.pr_k, adm.pr_reference_size, adm.covariance) == (5000, 3, 10000, "unbiased")
    assert adm.labels == ("Inception Score", "FID", "sFID", "Precision", "Recall")
    assert get_protocol("stylegan").covariance == "biased"
    assert get_protocol("clean-fid").preprocessing == "pil-bicubic"
    with pytest.raises(ConfigError, match="adm, clean-fid, edm2"):
        get_protocol("admm")


def test_a_contradicting_option_is_refused_naming_both():
    adm = get_protocol("adm")
    with pytest.raises(ConfigError, match=r"--preprocessing pil-bicubic contradicts --protocol adm.*tf1-bilinear"):
        apply_extract_protocol(adm, ExtractOptions(preprocessing="pil-bicubic"))
    with pytest.raises(ConfigError, match=r"--extractor fmnist-cnn contradicts --protocol adm"):
        apply_extract_protocol(adm, ExtractOptions(extractor="fmnist-cnn"))
    with pytest.raises(ConfigError, match=r"--pr-k 5 contradicts --protocol adm"):
        apply_metric_protocol(adm, MetricOptions(prdc_k_precision_recall=5))
    with pytest.raises(ConfigError, match=r"--is-splits 4 contradicts --protocol adm"):
        apply_metric_protocol(adm, MetricOptions(is_splits=4))
    with pytest.raises(ConfigError, match=r"--covariance biased contradicts --protocol ttur"):
        apply_metric_protocol(get_protocol("ttur"), MetricOptions(covariance="biased"))
    with pytest.raises(ConfigError, match=r"--metrics kid contradicts --protocol adm"):
        apply_metrics(adm, ["kid"])
    # the same value as the protocol's, or an alias of it, is no contradiction
    xo = apply_extract_protocol(adm, ExtractOptions(preprocessing="tf1-bilinear", extractor="inception-v3"))
    assert (xo.extractor, xo.preprocessing, xo.layer, xo.protocol) == ("inception-v3", "tf1-bilinear",
                                                                        "pool3+spatial", "adm")
    mo = apply_metric_protocol(adm, MetricOptions())
    assert (mo.is_split_size, mo.prdc_k_precision_recall) == (5000, 3)
    assert apply_metric_protocol(get_protocol("stylegan"), MetricOptions()).covariance == "biased"
    assert apply_metrics(adm, ["fid", "sfid"]) == ["fd", "sfid"]


# ----------------------------------------------------------------------------- ADM batch files


def test_sample_batch_is_read_as_nhwc_uint8(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (4, 7, 9, 3), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", arr_0=images)
    src = open_sample_batch(tmp_path / "s.npz")
    assert len(src) == 4 and np.array_equal(src.read_batch(0, 4), images.transpose(0, 3, 1, 2))
    np.savez_compressed(tmp_path / "c.npz", arr_0=images)  # a compressed member is read whole
    assert np.array_equal(open_sample_batch(tmp_path / "c.npz").read_batch(1, 3), images[1:3].transpose(0, 3, 1, 2))


@pytest.mark.parametrize("arrays, message", [
    ({"samples": np.zeros((2, 4, 4, 3), np.uint8)}, r"'arr_0'.*keys found: samples"),
    ({"arr_0": np.zeros((2, 4, 4, 3), np.float32)}, "dtype float32"),
    ({"arr_0": np.zeros((2, 3, 4, 4), np.uint8)}, r"\[N, H, W, 3\]"),
    ({"arr_0": np.zeros((2, 4, 4), np.uint8)}, r"\[N, H, W, 3\]"),
])
def test_bad_sample_batches_are_refused_naming_the_file(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=message) as info:
        open_sample_batch(tmp_path / "bad.npz")
    assert "bad.npz" in str(info.value)


def test_reference_batch_statistics(tmp_path):
    rng = np.random.default_rng(4)
    mu, a = rng.normal(size=2048), rng.normal(size=(2048, 4))
    sigma = a @ a.T + np.eye(2048)
    mu_s, b = rng.normal(size=2023), rng.normal(size=(2023, 4))
    sigma_s = b @ b.T + np.eye(2023)
    images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "ref.npz", arr_0=images, mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s)
    batch = open_reference_batch(tmp_path / "ref.npz")
    assert len(batch.images) == 5
    assert np.allclose(batch.pool3.mean(), mu) and np.allclose(batch.pool3.cov(), sigma, atol=1e-9)
    assert batch.spatial is not None and np.allclose(batch.spatial.cov(), sigma_s, atol=1e-9)
    np.savez(tmp_path / "wrong.npz", arr_0=images, mu=mu[:10], sigma=sigma[:10, :10])
    with pytest.raises(ReferenceStatsError, match="d = 2048"):
        open_reference_batch(tmp_path / "wrong.npz")


# ----------------------------------------------------------------------------- layering of the protocol code


def test_the_protocol_table_is_one_registry_below_the_engine():
    from genbench import protocols
    from genbench.stats import paper_protocols

    assert protocols.PROTOCOLS is paper_protocols.PROTOCOLS and protocols.get_protocol is paper_protocols.get_protocol


def test_the_engine_refuses_a_protocol_run_and_the_api_dispatches_it(monkeypatch):
    from genbench import api, evaluate, protocols

    with pytest.raises(ConfigError, match="score_protocol"):
        evaluate.score("gen", "ref", None, ExtractOptions(protocol="adm"), MetricOptions())
    seen = {}
    monkeypatch.setattr(protocols, "score_protocol", lambda *args: seen.setdefault("args", args) and "scored")
    assert api.run_score("gen", "ref", ["fd"], ExtractOptions(protocol="adm"), MetricOptions()) == "scored"
    assert seen["args"][:3] == ("gen", "ref", "adm") and seen["args"][-1] == ["fd"]


def test_a_statistics_file_keeps_a_spatial_layer_and_refuses_half_of_one(tmp_path):
    from genbench.stats.io import load_stats, save_stats

    rng = np.random.default_rng(3)
    pool, spatial = rng.normal(size=(6, 5)), rng.normal(size=(6, 4))
    save_stats(tmp_path / "s.npz", FeatureStats.from_features(pool), {"layer": "pool3"},
               layers={"spatial": FeatureStats.from_features(spatial)}, layer_identities={"spatial": {"x": 1}})
    saved = load_stats(tmp_path / "s.npz")
    np.testing.assert_allclose(saved.layers["spatial"].mean(), spatial.mean(0), atol=1e-12)
    np.testing.assert_allclose(saved.layers["spatial"].cov(), np.cov(spatial, rowvar=False), atol=1e-12)
    assert saved.meta["layers"]["spatial"] == {"x": 1, "layer": "spatial", "feature_dim": 4, "keys": ["mu_s", "sigma_s"]}
    with pytest.raises(ValueError, match="known layers: spatial"):
        save_stats(tmp_path / "t.npz", FeatureStats.from_features(pool), {}, layers={"conv": FeatureStats.from_features(spatial)})
    np.savez(tmp_path / "half.npz", mu=pool.mean(0), sigma=np.cov(pool, rowvar=False), mu_s=spatial.mean(0))
    with pytest.raises(ReferenceStatsError, match="needs both 'mu_s' and 'sigma_s'"):
        load_stats(tmp_path / "half.npz")
