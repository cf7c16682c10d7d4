"""FID, IS and KID equal torch-fidelity's and pytorch-fid's on the same features."""
import numpy as np
import pytest
import torch

from genbench.metrics.fid import frechet_distance
from genbench.metrics.inception_score import inception_score
from genbench.metrics.kid import kernel_inception_distance
from genbench.stats.feature_stats import FeatureStats

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((64, 64)) / 8
    # float64 so both libraries see exactly the same numbers (torch-fidelity keeps the input dtype).
    a = np.maximum(rng.standard_normal((600, 64)) @ mix + 0.1, 0)
    b = np.maximum(rng.standard_normal((500, 64)) @ mix * 1.2 + 0.15, 0)
    return a, b


def test_fid_equals_torch_fidelity_and_pytorch_fid(features):
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = features
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    ours = frechet_distance(sa.mean(), sa.cov(), sb.mean(), sb.cov())
    ta, tb = fid_features_to_statistics(torch.from_numpy(a)), fid_features_to_statistics(torch.from_numpy(b))
    theirs = fid_statistics_to_metric(ta, tb, verbose=False)["frechet_inception_distance"]
    assert ours == pytest.approx(theirs, rel=1e-9)
    pfid = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert ours == pytest.approx(pfid, rel=1e-8)


def test_is_equals_torch_fidelity(features):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(1).standard_normal((500, 20)).astype(np.float32) * 3
    theirs = isc_features_to_metric(torch.from_numpy(logits), splits=1, shuffle=False)
    ours = inception_score(logits, splits=1, seed=None)
    assert ours.mean == pytest.approx(theirs["inception_score_mean"], rel=1e-12)
    # Several contiguous splits use the same boundaries as the original code.
    theirs10 = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=False)
    ours10 = inception_score(logits, splits=10, seed=None)
    assert ours10.mean == pytest.approx(theirs10["inception_score_mean"], rel=1e-12)
    assert ours10.std == pytest.approx(theirs10["inception_score_std"], rel=1e-9)


def test_kid_with_one_subset_of_all_samples_equals_torch_fidelity(features):
    from torch_fidelity.metric_kid import kid_features_to_metric

    a, b = features[0][:400], features[1][:400]
    theirs = kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=1, kid_subset_size=400, verbose=False)
    ours, _ = kernel_inception_distance(a, b, subsets=1, subset_size=400, seed=0)
    assert ours.mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-10)
