"""Per-sample table: columns against the metric functions and brute forces, the CSV, refusing to overwrite."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from genbench.config import MetricOptions
from genbench.errors import ConfigError
from genbench.metrics.inputs import Evaluated
from genbench.metrics.per_sample import per_sample_arrays, softmax_confidence
from genbench.results.per_sample import write_per_sample_csv
from genbench.stats.feature_stats import FeatureStats


def _ev(role: str, x: np.ndarray, files=None, logits=None) -> Evaluated:
    return Evaluated(role, role, None, FeatureStats.from_features(x), features=x, files=files, logits=logits)


def test_columns_and_csv(tmp_path) -> None:
    rng = np.random.default_rng(0)
    train = rng.standard_normal((80, 5))
    gen_x = rng.standard_normal((30, 5))
    gen_x[:4] = train[10:14]  # copies
    logits = rng.standard_normal((30, 10))
    gen = _ev("generated", gen_x, files=[f"g{i}.png" for i in range(30)], logits=logits)
    ref = _ev("reference", rng.standard_normal((60, 5)))
    tr = _ev("train", train, files=[f"t{i}.png" for i in range(80)])
    cols = per_sample_arrays(gen, ref, MetricOptions(), train=tr)
    d = cdist(gen_x, train)
    np.testing.assert_array_equal(cols["nearest_train_index"], d.argmin(1))
    np.testing.assert_allclose(cols["nearest_train_distance"], d.min(1), rtol=1e-12, atol=1e-15)
    assert list(cols["nearest_train_source"][:4]) == ["t10.png", "t11.png", "t12.png", "t13.png"]
    assert not cols["authentic"][:4].any()
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(cols["class_confidence"], p.max(1), rtol=1e-12)
    out = tmp_path / "samples.csv"
    write_per_sample_csv(out, cols)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30 and rows[2]["source"] == "g2.png" and rows[2]["authentic"] == "0"
    assert float(rows[7]["realism"]) == cols["realism"][7]  # exact round trip
    with pytest.raises(ConfigError, match="--overwrite"):
        write_per_sample_csv(out, cols)
    write_per_sample_csv(out, cols, overwrite=True)


def test_without_files_or_logits_and_without_features() -> None:
    rng = np.random.default_rng(1)
    gen, ref = _ev("generated", rng.standard_normal((10, 3))), _ev("reference", rng.standard_normal((20, 3)))
    cols = per_sample_arrays(gen, ref, MetricOptions())
    assert cols["source"][3] == "#3" and "class_confidence" not in cols and "nearest_train_source" not in cols
    stats_only = Evaluated("reference", "ref.npz", None, ref.stats)
    with pytest.raises(ConfigError, match="statistics file"):
        per_sample_arrays(gen, stats_only, MetricOptions())
    conf, cls = softmax_confidence(np.array([[1000.0, 0.0], [0.0, 0.0]]))  # stable for large logits
    np.testing.assert_allclose(conf, [1.0, 0.5])
    np.testing.assert_array_equal(cls, [0, 0])
