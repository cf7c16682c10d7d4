"""Inception Score and KID against closed forms."""
import numpy as np
import pytest

from genbench.errors import ConfigError
from genbench.metrics.inception_score import inception_score
from genbench.metrics.kid import kernel_inception_distance, polynomial_mmd2


def test_is_of_confident_uniform_predictions_equals_class_count():
    k = 10
    logits = np.full((1000, k), -1e4)
    logits[np.arange(1000), np.arange(1000) % k] = 0.0
    spread = inception_score(logits, splits=1, seed=None)
    assert spread.mean == pytest.approx(k, rel=1e-9)


def test_is_of_identical_predictions_is_one():
    logits = np.tile(np.random.default_rng(0).standard_normal(7), (50, 1))
    assert inception_score(logits, splits=5).mean == pytest.approx(1.0, abs=1e-12)


def test_is_closed_form_for_two_classes():
    # Half the samples predict (p, 1-p), half (1-p, p): marginal is uniform,
    # so IS = exp(log 2 - H(p)) with H the binary entropy.
    p = 0.8
    row = np.log([p, 1 - p])
    logits = np.vstack([np.tile(row, (50, 1)), np.tile(row[::-1], (50, 1))])
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert inception_score(logits, splits=1).mean == pytest.approx(np.exp(np.log(2) - entropy), rel=1e-12)


def test_is_seed_is_deterministic_and_splits_checked():
    logits = np.random.default_rng(1).standard_normal((100, 5))
    assert inception_score(logits, 10, seed=3) == inception_score(logits, 10, seed=3)
    with pytest.raises(ConfigError, match="--is-splits"):
        inception_score(logits[:5], splits=10)


def test_mmd_matches_explicit_double_sum():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) + 0.5
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    same, _ = kernel_inception_distance(a, b, subsets=20, subset_size=200, seed=0)
    shifted, _ = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200, seed=0)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 10 * abs(same.mean)


def test_kid_seeded_and_checks_subset_size():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((50, 3)), rng.standard_normal((60, 3))
    assert kernel_inception_distance(a, b, 5, 20, seed=1)[0] == kernel_inception_distance(a, b, 5, 20, seed=1)[0]
    with pytest.raises(ConfigError, match="--kid-subset-size"):
        kernel_inception_distance(a, b, 5, 51)


def test_is_with_underflowing_probabilities_stays_finite():
    # Logits this far apart give probabilities of exactly 0 in float64; p log p -> 0 in the limit.
    logits = np.zeros((20, 4))
    logits[np.arange(20), np.arange(20) % 4] = 2000.0
    spread = inception_score(logits, splits=1, seed=None)
    assert spread.mean == pytest.approx(4.0, rel=1e-12)


def test_is_of_near_one_hot_logits_is_finite_and_matches_the_closed_form():
    """Logits so peaked that most probabilities underflow (as random Inception weights give): each split of m
    samples whose predicted classes are all different has IS = exp(log m) = m. A probability that survives as
    a denormal must not turn into p * inf when its mean over the split underflows."""
    from genbench.metrics.inception_score import inception_score

    n, k = 40, 1008
    logits = np.full((n, k), -800.0)
    logits[np.arange(n), np.arange(n)] = 0.0  # one class per sample, all different
    logits[0, n] = -744.0  # p = exp(-744) ~ 1e-323 (denormal); its split mean underflows to 0
    result = inception_score(logits, splits=4, seed=None)
    assert np.isfinite(result.mean)
    assert result.mean == pytest.approx(10.0, rel=1e-9) and result.std == pytest.approx(0.0, abs=1e-9)


def _kid_entry(gen: np.ndarray, ref: np.ndarray, **options) -> dict:
    from genbench.config import MetricOptions
    from genbench.metrics.inputs import Evaluated
    from genbench.metrics.registry import compute_plan
    from genbench.stats.feature_stats import FeatureStats

    def ev(role: str, x: np.ndarray) -> Evaluated:
        return Evaluated(role, f"{role} features", None, FeatureStats.from_features(x), features=x)

    return compute_plan([("kid", "kid")], ev("generated", gen), ev("reference", ref), MetricOptions(**options))["kid"]


def test_kid_over_subsets_that_are_the_whole_sets_warns_and_gives_no_interval():
    """Subsets as large as both sets are both sets, reordered: no spread, so no 95% interval (a zero-width one
    was reported before); KID is then the MMD^2 of the whole sets (the explicit double sum, computed here)."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4)) + 0.3
    with pytest.warns(RuntimeWarning, match=r"covers both sets \(30 generated, 30 reference\).*interval is left out"):
        entry = _kid_entry(x, y, kid_subset_size=30, kid_subsets=10, bootstrap=50)
    assert "ci95" not in entry and entry["interval"].startswith("omitted: the KID subset size (30)")
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    m = 30
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    assert entry["mean"] == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and entry["std"] < 1e-9 * abs(entry["mean"])


def test_kid_interval_is_kept_where_the_subsets_vary():
    import warnings

    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((40, 4)) + 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the reference subsets differ
        whole_generated = _kid_entry(x, y, kid_subset_size=30, kid_subsets=10, bootstrap=50)
        half = _kid_entry(x, y, kid_subset_size=15, kid_subsets=10, bootstrap=50)
    for entry in (whole_generated, half):
        lo, hi = entry["ci95"]
        assert lo < entry["mean"] < hi and "interval" not in entry
    with pytest.warns(RuntimeWarning, match="1 subset"):
        assert "ci95" not in _kid_entry(x, y, kid_subset_size=15, kid_subsets=1, bootstrap=50)


@pytest.mark.parametrize("n_gen, n_ref, size", [
    (10_000, 10_000, 1000),  # the default where both sets are larger
    (300, 1000, 300),  # the reference side still varies: kept (the leaderboard's -n 300 rows)
    (1000, 10_000, 1000),
    (1000, 1000, 500),  # would be the whole of both sets (cyclegan's row): half
    (999, 999, 499),
    (3, 3, 2),
])
def test_the_subset_size_a_verb_picks_gives_subsets_that_vary(n_gen, n_ref, size):
    from genbench.metrics.kid import spread_problem, spread_subset_size

    assert spread_subset_size(n_gen, n_ref, 1000) == size
    assert spread_problem(n_gen, n_ref, size, 100) is None
