"""Streaming statistics: merge equals one pass, batch size does not matter, numpy agrees."""
import numpy as np
import pytest

from genbench.errors import InputError
from genbench.stats.feature_stats import FeatureStats


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1000, 12)) * rng.uniform(0.5, 2, 12) + 3.0


def test_mean_and_unbiased_cov_match_numpy(features):
    stats = FeatureStats.from_features(features)
    np.testing.assert_allclose(stats.mean(), features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov(), np.cov(features, rowvar=False), rtol=1e-9, atol=1e-12)


def test_batch_size_does_not_change_result(features):
    results = []
    for batch in (1, 7, 100, 1000):
        stats = FeatureStats.empty(12)
        for i in range(0, len(features), batch):
            stats.update(features[i : i + batch])
        results.append((stats.mean(), stats.cov()))
    for mean, cov in results[1:]:
        np.testing.assert_allclose(mean, results[0][0], rtol=1e-12)
        np.testing.assert_allclose(cov, results[0][1], rtol=1e-10)


def test_merge_equals_one_pass_in_any_order(features):
    whole = FeatureStats.from_features(features)
    parts = [FeatureStats.from_features(features[i : i + 300]) for i in range(0, 1000, 300)]
    forward = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    backward = parts[3].merge(parts[2]).merge(parts[1].merge(parts[0]))
    for merged in (forward, backward):
        assert merged.n == whole.n
        np.testing.assert_allclose(merged.mean(), whole.mean(), rtol=1e-12)
        np.testing.assert_allclose(merged.cov(), whole.cov(), rtol=1e-10)


def test_round_trip_through_mean_and_cov(features):
    stats = FeatureStats.from_features(features)
    rebuilt = FeatureStats.from_mean_cov(stats.mean(), stats.cov(), stats.n)
    np.testing.assert_allclose(rebuilt.outer, stats.outer, rtol=1e-10)
    np.testing.assert_allclose(rebuilt.merge(stats).cov(), np.cov(np.vstack([features, features]), rowvar=False), rtol=1e-9)


def test_bad_input_is_refused():
    stats = FeatureStats.empty(3)
    with pytest.raises(InputError, match=r"\[B, 3\]"):
        stats.update(np.zeros((2, 4)))
    with pytest.raises(InputError, match="NaN"):
        stats.update(np.array([[np.nan, 0, 0]]))
    with pytest.raises(InputError, match="at least 2"):
        FeatureStats.from_features(np.zeros((1, 3))).cov()
