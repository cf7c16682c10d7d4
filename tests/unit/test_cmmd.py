"""CMMD: closed forms, the reference formula re-typed in numpy, and the metric's refusal outside its space."""
from __future__ import annotations

import math

import numpy as np
import pytest

from genbench.config import MetricOptions
from genbench.errors import ConfigError
from genbench.evaluate import Evaluated
from genbench.metrics import cmmd as cm
from genbench.metrics.registry import METRICS
from genbench.stats.feature_stats import FeatureStats


def reference_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """google-research cmmd/distance.py ``mmd`` line by line, in numpy float64 instead of JAX float32."""
    x_sqnorms = np.diag(x @ x.T)
    y_sqnorms = np.diag(y @ y.T)
    gamma = 1 / (2 * 10**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * (x @ x.T) + x_sqnorms[:, None] + x_sqnorms[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * (x @ y.T) + x_sqnorms[:, None] + y_sqnorms[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * (y @ y.T) + y_sqnorms[:, None] + y_sqnorms[None, :])))
    return 1000 * (k_xx + k_yy - 2 * k_xy)


def test_closed_forms():
    e = np.eye(4)
    assert cm.cmmd(e[:1], e[:1]) == 0.0
    # {e1} vs {e2}: k_xx = k_yy = 1, k_xy = exp(-2 / 200)
    assert cm.cmmd(e[:1], e[1:2]) == pytest.approx(1000 * (2 - 2 * math.exp(-0.01)), rel=1e-12)
    # {e1, e2} vs {e3}: mean K_xx = (2 + 2 exp(-0.01)) / 4, K_yy = 1, K_xy = exp(-0.01)
    expected = 1000 * ((2 + 2 * math.exp(-0.01)) / 4 + 1 - 2 * math.exp(-0.01))
    assert cm.cmmd(e[:2], e[2:3]) == pytest.approx(expected, rel=1e-12)
    # scaling a row does not change anything: rows are L2-normalised first
    assert cm.cmmd(3 * e[:2], 0.5 * e[2:3]) == pytest.approx(expected, rel=1e-12)


def test_equals_the_reference_formula_and_is_blockwise_exact(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(37, 16)), rng.normal(size=(23, 16)) + 0.3
    xn, yn = x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(y, axis=1, keepdims=True)
    expected = reference_mmd(xn, yn)
    assert expected > 0
    assert abs(cm.cmmd(x, y) - expected) <= 1e-9 * abs(expected)
    monkeypatch.setattr(cm, "_BLOCK", 5)  # many row blocks: the same sums
    assert abs(cm.cmmd(x, y) - expected) <= 1e-9 * abs(expected)


def test_zero_rows_are_refused():
    with pytest.raises(ValueError, match="non-zero norm"):
        cm.cmmd(np.zeros((2, 3)), np.ones((2, 3)))


def _ev(role: str, feats: np.ndarray, extractor: str, preprocessing: str) -> Evaluated:
    identity = {"extractor": extractor, "preprocessing": preprocessing, "feature_dim": feats.shape[1]}
    return Evaluated(role, role, identity, FeatureStats.from_features(feats), features=feats)


def test_metric_only_in_its_space():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 8)), rng.normal(size=(12, 8))
    spec = METRICS.get("cmmd")
    out = spec.compute(_ev("generated", x, "clip-vit-l14-336", "clip-cmmd"),
                       _ev("reference", y, "clip-vit-l14-336", "clip-cmmd"), MetricOptions())
    assert out["value"] == pytest.approx(cm.cmmd(x, y), rel=1e-12) and out["sigma"] == 10 and out["scale"] == 1000
    with pytest.raises(ConfigError, match="clip-vit-l14-336.*preprocessing='clip-tf1-bilinear'"):
        spec.compute(_ev("generated", x, "clip-vit-l14-336", "clip-tf1-bilinear"),
                     _ev("reference", y, "clip-vit-l14-336", "clip-tf1-bilinear"), MetricOptions())
    with pytest.raises(ConfigError, match="extractor='dinov2-vit-l14'"):
        spec.compute(_ev("generated", x, "dinov2-vit-l14", "dinov2-pil-bicubic"),
                     _ev("reference", y, "dinov2-vit-l14", "dinov2-pil-bicubic"), MetricOptions())


def test_plain_features_take_the_space_the_options_state_and_the_hint_given_works(tmp_path):
    """Feature files without metadata: the refusal says to state the space with --extractor clip-vit-l14-336
    --preprocessing clip-cmmd, and passing exactly that scores them (the number: the reference formula on the same
    rows), with the statement recorded under the inputs and every field still unchecked."""
    import json

    from click.testing import CliRunner

    from genbench.cli.app import main
    from genbench.stats.io import FeatureFile, save_features

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(40, 8)) + 0.2
    np.savez(tmp_path / "a.npz", features=x.astype(np.float32))
    np.savez(tmp_path / "b.npz", features=y.astype(np.float32))
    base = ["score", str(tmp_path / "a.npz"), "--ref", str(tmp_path / "b.npz"), "--metrics", "cmmd"]
    refused = CliRunner().invoke(main, base)
    assert refused.exit_code == 2
    hint = "say so with --extractor clip-vit-l14-336 --preprocessing clip-cmmd (recorded as stated, unchecked)"
    assert hint in refused.stderr
    scored = CliRunner().invoke(main, [*base, "--extractor", "clip-vit-l14-336", "--preprocessing", "clip-cmmd",
                                       "--json", str(tmp_path / "r.json"), "-q"])
    assert scored.exit_code == 0, scored.output
    doc = json.loads((tmp_path / "r.json").read_text())
    xs, ys = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    expected = reference_mmd(xs / np.linalg.norm(xs, axis=1, keepdims=True), ys / np.linalg.norm(ys, axis=1, keepdims=True))
    assert abs(doc["metrics"]["cmmd"]["value"] - expected) <= 1e-6 * abs(expected)
    prov = doc["provenance"]
    assert (prov["extractor"], prov["preprocessing"]) == ("clip-vit-l14-336", "clip-cmmd")
    stated = {"extractor": "clip-vit-l14-336", "preprocessing": "clip-cmmd"}
    assert prov["inputs"]["generated"]["stated"] == prov["inputs"]["reference"]["stated"] == stated
    assert all("preprocessing" in fields and "extractor" in fields for fields in prov["unchecked"].values())
    # A file that records its space is never restated: another preprocessing is refused, naming both values.
    meta = {"extractor": "clip-vit-l14-336", "preprocessing": "clip-tf1-bilinear", "feature_dim": 8}
    save_features(tmp_path / "c.npz", FeatureFile(x.astype(np.float32), None, [f"{i}" for i in range(30)], None, meta))
    clash = CliRunner().invoke(main, ["score", str(tmp_path / "c.npz"), "--ref", str(tmp_path / "b.npz"), "--metrics",
                                      "cmmd", "--extractor", "clip-vit-l14-336", "--preprocessing", "clip-cmmd"])
    assert clash.exit_code == 2 and "preprocessing='clip-tf1-bilinear'" in clash.stderr, clash.output
    recorded = CliRunner().invoke(main, ["score", str(tmp_path / "c.npz"), "--ref", str(tmp_path / "b.npz"),
                                         "--metrics", "cmmd"])
    assert recorded.exit_code == 2 and "extract the images again" in recorded.stderr, recorded.output
